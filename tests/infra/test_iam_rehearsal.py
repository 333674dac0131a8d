"""IAM proven by execution (docs/security.md: "The IAM rehearsal"): the runtime's main flows run under each
function's exact identity policy, read from the synthesized template, against moto with IAM enforcement on;
then each granted action is taken away in turn, and some flow must fail.

moto checks S3 and DynamoDB calls (signature, action and resource). Rekognition's answers come from botocore's
Stubber, so the Rekognition operations the runtime's analyzer calls are recorded and checked against the same
statements with moto's own policy evaluator. What the rehearsal cannot check is listed in the docs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from botocore.stub import Stubber
from liveness import expiry
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.archive import S3Archive
from liveness.faces import FaceComparison, FaceDetail, Frame
from liveness.sessions.keys import audit_key
from liveness.sessions.store import DynamoDbSessionStore
from liveness.settings import Settings
from moto import mock_aws
from moto.core.authorization import disable_iam_authentication, enable_iam_authentication
from moto.dynamodb.responses import DynamoHandler
from moto.iam.access_control import IAMPolicy, PermissionResult

from cdk_app.liveness_function import API_HANDLER, EXPIRY_HANDLER
from testkit.aws import BUCKET, FAKE_AWS_ENV, TABLE, create_aws_resources
from testkit.faces import face_for
from testkit.rekognition import detect_faces_response
from tests.infra.synth import synth_template
from tests.runtime.session_helpers import (
    Rig,
    S3PutWatch,
    build_rig,
    data_url,
    pass_light,
    start_session,
    step_codes,
    wrong_face_for,
)

pytestmark = pytest.mark.slow

REGION, ACCOUNT = "us-east-1", "123456789012"  # moto's default account
# What the Lambda service does with a function's role, not the function's code: it writes the function's logs,
# and polls the table's stream and writes failed batches for the expiry function's event source mapping.
SERVICE_ACTIONS = frozenset(
    {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:ListStreams",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "s3:ListBucket",
    }
)


# ---------------------------------------------------------------------------------------------------------
# The template: each function's policy and environment, with CloudFormation's functions resolved


@dataclass(frozen=True)
class Grant:
    action: str
    resource: str


@dataclass(frozen=True)
class FunctionIdentity:
    env: dict[str, str]
    grants: tuple[Grant, ...]  # every (action, resource) pair the template's statements allow

    def policy(self, without: Grant | None = None) -> dict[str, Any]:
        statements = [
            {"Effect": "Allow", "Action": grant.action, "Resource": grant.resource}
            for grant in self.grants
            if grant != without
        ]
        return {"Version": "2012-10-17", "Statement": statements}

    def code_grants(self) -> list[Grant]:
        """The grants the function's own code needs; the others are the Lambda service's (SERVICE_ACTIONS, and
        the expiry function's failed-batch destination)."""
        return [
            grant
            for grant in self.grants
            if grant.action not in SERVICE_ACTIONS
            and not (grant.action.startswith("s3:") and not grant.resource.startswith(f"arn:aws:s3:::{BUCKET}/"))
        ]


def _resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def _function(template: dict[str, Any], handler: str) -> dict[str, Any]:
    (found,) = [
        resource["Properties"]
        for resource in _resources(template).values()
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("Handler") == handler
    ]
    return found


class Resolver:
    """CloudFormation's Ref, Fn::GetAtt and Fn::Join, with the names the rehearsal gives the resources: the
    function's table and bucket are moto's; any other bucket gets a name of its own."""

    def __init__(self, template: dict[str, Any], table_id: str, bucket_id: str) -> None:
        self.types = {logical: resource["Type"] for logical, resource in _resources(template).items()}
        self.names = {table_id: TABLE, bucket_id: BUCKET}

    def name(self, logical: str) -> str:
        return self.names.get(logical, f"rehearsal-{logical.lower()}")

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "Ref" in node:
            return {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}.get(
                node["Ref"], self.name(node["Ref"])
            )
        if "Fn::Join" in node:
            separator, parts = node["Fn::Join"]
            return separator.join(self(part) for part in parts)
        if "Fn::GetAtt" in node:
            logical, attribute = node["Fn::GetAtt"]
            kind = self.types[logical]
            if kind == "AWS::DynamoDB::Table":
                table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self.name(logical)}"
                return table if attribute == "Arn" else f"{table}/stream/rehearsal"
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.name(logical)}"
            return f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{logical}"
        return {key: self(value) for key, value in node.items()}


def function_identity(template: dict[str, Any], handler: str, resolver: Resolver) -> FunctionIdentity:
    function = _function(template, handler)
    role = function["Role"]["Fn::GetAtt"][0]
    grants: list[Grant] = []
    for resource in _resources(template).values():
        properties = resource["Properties"] if resource["Type"] == "AWS::IAM::Policy" else None
        if properties is None or {"Ref": role} not in properties["Roles"]:
            continue
        for statement in resolver(properties["PolicyDocument"]["Statement"]):
            assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
            actions, targets = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for target in [targets] if isinstance(targets, str) else targets:
                    grants.append(Grant(action, target))
    env = {key: str(resolver(value)) for key, value in function["Environment"]["Variables"].items()}
    return FunctionIdentity(env=env, grants=tuple(grants))


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FunctionIdentity]:
    template = synth_template(tmp_path_factory.mktemp("cdk"))
    api_env = _function(template, API_HANDLER)["Environment"]["Variables"]
    resolver = Resolver(template, api_env["SESSIONS_TABLE"]["Ref"], api_env["ARCHIVE_BUCKET"]["Ref"])
    return {
        "api": function_identity(template, API_HANDLER, resolver),
        "expiry": function_identity(template, EXPIRY_HANDLER, resolver),
    }


# ---------------------------------------------------------------------------------------------------------
# moto with IAM enforcement


@pytest.fixture
def enforcing_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with the table and bucket, IAM enforced from here on. moto authorises DynamoDB calls against the
    resource "*", which no table-scoped statement matches; the request's table ARN is what AWS checks, so the
    rehearsal tells moto that ARN."""

    def table_arn(handler: DynamoHandler) -> str:
        body = handler.body if isinstance(handler.body, dict) else json.loads(handler.body or "{}")
        table = body.get("TableName", "")
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}" if table else "*"

    monkeypatch.setattr(DynamoHandler, "_determine_resource", table_arn, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        admin = boto3.Session(region_name=REGION)
        create_aws_resources(admin.client("dynamodb"), admin.client("s3"))
        with enable_iam_authentication():
            yield admin


def session_with(policy: dict[str, Any]) -> boto3.Session:
    """A boto3 session whose calls moto authorises against ``policy`` only (an IAM user's access key)."""
    with disable_iam_authentication():
        iam = boto3.client("iam", region_name=REGION)
        user = f"rehearsal-{uuid.uuid4().hex[:12]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="function", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )


# ---------------------------------------------------------------------------------------------------------
# Rekognition, which moto cannot authorise: the real analyzer on a stubbed client, its operations recorded


class StubbedRekognition:
    """The runtime's RekognitionAnalyzer on a client answered by botocore's Stubber with what the scripted
    analyzer says (its faces, its similarity); every operation the analyzer calls is recorded, to be checked
    against the policy. The scripted analyzer stays the test's handle (``rig.analyzer.script``)."""

    name = RekognitionAnalyzer.name
    pose_robust_comparison = RekognitionAnalyzer.pose_robust_comparison

    def __init__(self, scripted: Any) -> None:
        self.scripted = scripted
        self.operations: set[str] = set()
        client = boto3.client("rekognition", region_name=REGION)
        client.meta.events.register("before-parameter-build.rekognition", self._record)
        self.stubber = Stubber(client)
        self.stubber.activate()
        self.analyzer = RekognitionAnalyzer(client)

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.add(model.name)

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        faces = self.scripted.detect_faces(frame)
        self.stubber.add_response("detect_faces", detect_faces_response(*(face.to_rekognition() for face in faces)))
        return self.analyzer.detect_faces(frame)

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        similarity = self.scripted.compare_faces(reference, candidate).similarity or 0.0
        self.stubber.add_response("compare_faces", {"FaceMatches": [{"Similarity": similarity}], "UnmatchedFaces": []})
        return self.analyzer.compare_faces(reference, candidate)

    def denied(self, policy: dict[str, Any]) -> list[str]:
        """The Rekognition actions the analyzer called that ``policy`` does not allow (moto's evaluator)."""
        evaluator = IAMPolicy(json.dumps(policy))
        called = (f"rekognition:{operation}" for operation in self.operations)
        return sorted(
            action for action in called if evaluator.is_action_permitted(action) != PermissionResult.PERMITTED
        )


# ---------------------------------------------------------------------------------------------------------
# The flows


@dataclass
class Rehearsal:
    admin: boto3.Session
    api: FunctionIdentity
    expiry: FunctionIdentity
    api_policy: dict[str, Any]
    expiry_policy: dict[str, Any]

    def api_rig(self) -> Rig:
        settings = Settings.from_env(self.api.env)  # the function's environment, as the template sets it
        aws = session_with(self.api_policy)
        store = DynamoDbSessionStore(aws.client("dynamodb"), settings.sessions_table)
        rig = build_rig("aws", store, S3Archive(aws.client("s3"), settings.archive_bucket), settings)
        rig.deps.analyzer = StubbedRekognition(rig.analyzer)  # the template's ANALYZER=rekognition
        rig.client = rig.as_user(f"person-{uuid.uuid4().hex[:8]}")  # each flow its own person (attempt limits)
        return rig

    def audited(self, session_id: str) -> dict[str, Any]:
        with disable_iam_authentication():
            body = self.admin.client("s3").get_object(Bucket=BUCKET, Key=audit_key(session_id))["Body"].read()
        return json.loads(body)

    def rekognition_denied(self, rig: Rig) -> list[str]:
        """The Rekognition actions the flow's analysis called that the API policy does not allow."""
        return rig.deps.analyzer.denied(self.api_policy)


def detect_flow(rehearsal: Rehearsal) -> None:
    rig = rehearsal.api_rig()
    rig.analyzer.script(face_for("LOOK_STRAIGHT"))
    reply = rig.client.call("POST", "/detect", {"image_bytes": data_url(1)})
    assert reply.status == 200, reply.body
    assert rehearsal.rekognition_denied(rig) == []


def genuine_session_flow(rehearsal: Rehearsal) -> None:
    """A person passes (the light step too, as the template enables it), then reads the result: the audit record
    is written, the reference face read back."""
    rig = rehearsal.api_rig()
    created = start_session(rig)
    session_id = created["sessionId"]
    for index, code in enumerate(step_codes(created)):
        rig.clock.advance(3)
        if code == "FOLLOW_LIGHT":
            pass_light(rig, session_id)
            continue
        rig.analyzer.script(face_for(code))
        reply = rig.client.frame(session_id, seed=index)
        assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body
    view = rig.client.get(session_id)
    assert view.status == 200 and view.body["status"] == "PASSED" and view.body["referenceFace"], view.body
    assert rehearsal.audited(session_id)["verdict"]["livenessPassed"] is True
    assert rehearsal.rekognition_denied(rig) == []


def expiry_flow(rehearsal: Rehearsal) -> None:
    """A session nobody finished; DynamoDB's TTL removes it and the expiry function audits it as EXPIRED."""
    rig = rehearsal.api_rig()
    session_id = start_session(rig)["sessionId"]
    rig.analyzer.script(wrong_face_for("LOOK_STRAIGHT"))
    assert rig.client.frame(session_id).status == 200
    with disable_iam_authentication():
        item = rehearsal.admin.client("dynamodb").get_item(TableName=TABLE, Key={"sessionId": {"S": session_id}})
    settings = Settings.from_env(rehearsal.expiry.env)
    aws = session_with(rehearsal.expiry_policy)
    archive = S3Archive(aws.client("s3"), settings.archive_bucket)
    runtime = expiry.ExpiryRuntime(archive=archive, thresholds=settings.thresholds)
    expiry.audit_removed_session(_ttl_removal(item["Item"]), runtime=runtime, request_id="ttl")
    assert rehearsal.audited(session_id)["status"] == "EXPIRED"


def storage_fault_flows(rehearsal: Rehearsal) -> None:
    """The fault paths' own calls: a frame whose upload fails is logged NOT_JUDGED; an audit write that fails at
    the close is written by the next read; /detect's archive failing is a 503."""
    rig = rehearsal.api_rig()
    created = start_session(rig)
    session_id = created["sessionId"]
    uploads = S3PutWatch(rig.deps.archive.client, "sessions/")
    uploads.failing = True
    rig.analyzer.script(face_for("LOOK_STRAIGHT"))
    reply = rig.client.frame(session_id, seed=1)
    assert reply.status == 503 and reply.body["code"] == "STORAGE_UNAVAILABLE", reply.body
    assert [frame.reason.value for frame in rig.store.get(session_id).frames] == ["NOT_JUDGED"]
    uploads.failing = False

    audit = S3PutWatch(rig.deps.archive.client, "audit/")
    audit.failing = True
    rig.clock.advance(SESSION_TTL_SECONDS + 1)
    assert rig.client.get(session_id).body["status"] == "EXPIRED"  # its audit write failed
    audit.failing = False
    assert rig.client.get(session_id).status == 200  # the read writes it
    assert rehearsal.audited(session_id)["status"] == "EXPIRED"

    detections = S3PutWatch(rig.deps.archive.client, "detections/")
    detections.failing = True
    rig.analyzer.script(face_for("LOOK_STRAIGHT"))
    assert rig.client.call("POST", "/detect", {"image_bytes": data_url(2)}).status == 503


SESSION_TTL_SECONDS = Settings().session_limits.session_ttl_seconds
FLOWS: dict[str, Callable[[Rehearsal], None]] = {
    "detect": detect_flow,
    "genuine session": genuine_session_flow,
    "expiry": expiry_flow,
    "storage faults": storage_fault_flows,
}


def _ttl_removal(item: dict[str, Any]) -> DynamoDBRecord:
    return DynamoDBRecord(
        {
            "eventID": uuid.uuid4().hex,
            "eventName": "REMOVE",
            "eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"sessionId": item["sessionId"]}, "OldImage": item, "StreamViewType": "OLD_IMAGE"},
            "userIdentity": dict(expiry.TTL_IDENTITY),
        }
    )


def failing_flows(rehearsal: Rehearsal) -> list[str]:
    failed = []
    for name, flow in FLOWS.items():
        try:
            flow(rehearsal)
        except Exception:  # noqa: BLE001 - an AccessDenied surfaces as an error, a 5xx or a missing record
            failed.append(name)
    return failed


# ---------------------------------------------------------------------------------------------------------
# The tests


def test_the_flows_pass_under_the_templates_exact_policies(
    identities: dict[str, FunctionIdentity], enforcing_moto: Any
) -> None:
    api, expiry_identity = identities["api"], identities["expiry"]
    rehearsal = Rehearsal(enforcing_moto, api, expiry_identity, api.policy(), expiry_identity.policy())
    for flow in FLOWS.values():
        flow(rehearsal)


def test_moto_enforces_the_policy_in_this_rehearsal(
    identities: dict[str, FunctionIdentity], enforcing_moto: Any
) -> None:
    """The rehearsal's own check: with no statement at all, the first write is refused."""
    api = identities["api"]
    nothing = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
    }
    rehearsal = Rehearsal(enforcing_moto, api, identities["expiry"], nothing, nothing)
    assert failing_flows(rehearsal) == list(FLOWS)


def test_every_granted_action_is_needed_by_some_flow(
    identities: dict[str, FunctionIdentity], enforcing_moto: Any
) -> None:
    api, expiry_identity = identities["api"], identities["expiry"]
    needless = []
    for function, identity in (("api", api), ("expiry", expiry_identity)):
        for grant in identity.code_grants():
            rehearsal = Rehearsal(
                enforcing_moto,
                api,
                expiry_identity,
                api.policy(without=grant if function == "api" else None),
                expiry_identity.policy(without=grant if function == "expiry" else None),
            )
            if not failing_flows(rehearsal):
                needless.append(f"{function}: {grant.action} on {grant.resource}")
    assert needless == []


def test_the_only_grants_left_out_of_the_removals_are_the_lambda_services(
    identities: dict[str, FunctionIdentity],
) -> None:
    api, expiry_identity = identities["api"], identities["expiry"]
    assert {grant.action for grant in api.code_grants()} == {
        "rekognition:DetectFaces",
        "rekognition:CompareFaces",
        "s3:PutObject",
        "s3:GetObject",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    }
    assert [grant.action for grant in expiry_identity.code_grants()] == ["s3:PutObject"]
    left_out = {grant.action for identity in identities.values() for grant in identity.grants} - {
        grant.action for identity in identities.values() for grant in identity.code_grants()
    }
    assert left_out <= SERVICE_ACTIONS | {"s3:PutObject"}
