"""The web client's hosting and sign-in (cdk_app/web_hosting.py): private bucket behind CloudFront with origin
access control, security headers, deploy-time config.json, a code-grant app client, and the CORS allow-list."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from liveness import web_security

from tests.infra.synth import synth_template
from tests.infra.test_stack import resources_of, the_function


@pytest.fixture(scope="module")
def template_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth_template(tmp_path_factory.mktemp("cdk.out"))


def one(template_json: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    ((key, value),) = resources_of(template_json, resource_type).items()
    return key, value["Properties"]


def distribution_id(template_json: dict[str, Any]) -> str:
    return one(template_json, "AWS::CloudFront::Distribution")[0]


def test_the_page_is_served_from_a_private_bucket_through_origin_access_control(
    template_json: dict[str, Any],
) -> None:
    _, distribution = one(template_json, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    (origin,) = config["Origins"]
    assert "OriginAccessControlId" in origin and origin["S3OriginConfig"]["OriginAccessIdentity"] == ""
    bucket_id = origin["DomainName"]["Fn::GetAtt"][0]
    bucket = template_json["Resources"][bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (policy,) = [
        p["Properties"]
        for p in resources_of(template_json, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    readers = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in readers] == [{"Service": "cloudfront.amazonaws.com"}]
    assert "AWS:SourceArn" in json.dumps(readers[0]["Condition"])
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"


def test_security_headers_allow_only_the_api_and_cognito(template_json: dict[str, Any]) -> None:
    _, policy = one(template_json, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    (api_id,) = resources_of(template_json, "AWS::ApiGateway::RestApi")
    (domain_id,) = resources_of(template_json, "AWS::Cognito::UserPoolDomain")
    connect = csp.split("connect-src", 1)[1].split(";", 1)[0]
    assert "'self' https://" in connect and api_id in connect and domain_id in connect
    assert "amazoncognito.com" in connect and ".execute-api." in connect
    for directive in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "*" not in csp.replace("Ref", "")
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert all(header["Override"] for header in headers.values())


def test_the_deployed_headers_are_the_ones_the_local_front_sends(template_json: dict[str, Any]) -> None:
    """liveness/web_security.py is the single source; the stack spells two of its values with CDK enums."""
    _, policy = one(template_json, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["FrameOptions"]["FrameOption"] == web_security.FRAME_OPTIONS
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == web_security.REFERRER_POLICY
    assert headers["ContentTypeOptions"]["Override"] is True  # CloudFront's only value: nosniff
    fixed = web_security.content_security_policy("", "").split("connect-src 'self'")
    csp = json.dumps(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    assert all(part.strip("; ") in csp for part in fixed)


def test_the_page_client_uses_the_code_grant_with_the_distribution_as_callback(template_json: dict[str, Any]) -> None:
    clients = [c["Properties"] for c in resources_of(template_json, "AWS::Cognito::UserPoolClient").values()]
    (page,) = [c for c in clients if "DomainName" in json.dumps(c.get("CallbackURLs", []))]
    assert page["AllowedOAuthFlows"] == ["code"]  # no implicit grant: the page exchanges a code with PKCE
    assert page["GenerateSecret"] is False
    assert set(page["AllowedOAuthScopes"]) == {"openid", "email"}
    assert distribution_id(template_json) in json.dumps(page["CallbackURLs"])
    assert page["LogoutURLs"] == page["CallbackURLs"]
    _, domain = one(template_json, "AWS::Cognito::UserPoolDomain")
    assert domain["ManagedLoginVersion"] == 2  # managed login, not the classic hosted UI
    assert resources_of(template_json, "AWS::Cognito::ManagedLoginBranding")


def test_the_api_client_has_no_oauth_grant(template_json: dict[str, Any]) -> None:
    """The SRP client for your own frontend: CDK's OAuth defaults (implicit grant, every scope, an example.com
    callback) are switched off; only the page's client signs in through managed login."""
    clients = [c["Properties"] for c in resources_of(template_json, "AWS::Cognito::UserPoolClient").values()]
    (api_client,) = [c for c in clients if "CallbackURLs" not in c]
    assert api_client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert not api_client.get("AllowedOAuthFlows") and not api_client.get("AllowedOAuthFlowsUserPoolClient")
    assert "example.com" not in json.dumps(template_json)


def test_the_runtime_config_is_written_at_deploy_time(template_json: dict[str, Any]) -> None:
    _, deployment = one(template_json, "Custom::CDKBucketDeployment")
    markers = json.dumps(deployment["SourceMarkers"])
    (api_id,) = resources_of(template_json, "AWS::ApiGateway::RestApi")
    (pool_id,) = resources_of(template_json, "AWS::Cognito::UserPool")
    (domain_id,) = resources_of(template_json, "AWS::Cognito::UserPoolDomain")
    for reference in (api_id, pool_id, domain_id, "WebPageClient"):
        assert reference in markers, reference
    assert distribution_id(template_json) in json.dumps(deployment["DistributionId"])


def test_the_distribution_joins_the_api_cors_allow_list(template_json: dict[str, Any]) -> None:
    dist = distribution_id(template_json)
    origins = json.dumps(the_function(template_json)["Environment"]["Variables"]["ALLOWED_ORIGINS"])
    assert "http://localhost:8000" in origins and dist in origins
    preflights = [
        m["Properties"]
        for m in resources_of(template_json, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert preflights and all(dist in json.dumps(m["Integration"]) for m in preflights)


def test_outputs_the_page_url(template_json: dict[str, Any]) -> None:
    assert {"WebUrl", "WebSignInDomain", "WebClientId"} <= set(template_json["Outputs"])


def test_a_context_flag_turns_the_web_client_off(tmp_path) -> None:
    template_json = synth_template(tmp_path, **{"liveness:webClient": False})
    for resource_type in (
        "AWS::CloudFront::Distribution",
        "AWS::CloudFront::ResponseHeadersPolicy",
        "Custom::CDKBucketDeployment",
        "AWS::Cognito::UserPoolDomain",
    ):
        assert not resources_of(template_json, resource_type), resource_type
    assert len(resources_of(template_json, "AWS::Cognito::UserPoolClient")) == 1
    assert the_function(template_json)["Environment"]["Variables"]["ALLOWED_ORIGINS"] == (
        "http://localhost:8000,http://127.0.0.1:8000"
    )
    assert "WebUrl" not in template_json["Outputs"]


def test_without_auth_the_page_has_no_sign_in(tmp_path) -> None:
    template_json = synth_template(tmp_path, **{"liveness:disableAuthDemoOnly": True})
    assert resources_of(template_json, "AWS::CloudFront::Distribution")
    assert not resources_of(template_json, "AWS::Cognito::UserPoolClient")
    assert not resources_of(template_json, "AWS::Cognito::UserPoolDomain")


def test_an_imported_pool_needs_its_sign_in_domain(tmp_path) -> None:
    from cdk_app.config import ConfigError

    with pytest.raises(ConfigError, match="cognitoDomain"):
        synth_template(tmp_path, **{"liveness:cognitoUserPoolId": "eu-west-1_AbCdEf123"})
    template_json = synth_template(
        tmp_path,
        **{"liveness:cognitoUserPoolId": "eu-west-1_AbCdEf123", "liveness:cognitoDomain": "https://login.example.com"},
    )
    assert not resources_of(template_json, "AWS::Cognito::UserPoolDomain")
    _, policy = one(template_json, "AWS::CloudFront::ResponseHeadersPolicy")
    assert "https://login.example.com" in json.dumps(policy)


def test_api_gateway_errors_name_the_hosted_page_as_their_origin(template_json: dict[str, Any]) -> None:
    """A gateway response names one origin: the hosted page's, so it can read a 401 or a 429's Retry-After."""
    dist = distribution_id(template_json)
    for response in resources_of(template_json, "AWS::ApiGateway::GatewayResponse").values():
        origin = response["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert dist in json.dumps(origin)


def written_config_json(outdir) -> list[dict[str, Any]]:
    """config.json as synthesized; its deploy-time values are still CDK's markers (read here as null)."""
    return [
        json.loads(re.sub(r"<<marker:[^>]*>>", "null", path.read_text())) for path in outdir.glob("asset.*/config.json")
    ]


def test_the_apps_a_passed_check_returns_to_come_from_context(tmp_path) -> None:
    from cdk_app.config import ConfigError

    synth_template(tmp_path, **{"liveness:returnOrigins": ["https://app.example.com"]})
    assert [config.get("returnOrigins") for config in written_config_json(tmp_path)] == [["https://app.example.com"]]
    with pytest.raises(ConfigError, match="returnOrigins"):
        synth_template(tmp_path / "loose", **{"liveness:returnOrigins": ["https://*.example.com"]})


def test_without_return_origins_config_json_names_none(tmp_path) -> None:
    synth_template(tmp_path)
    (config,) = written_config_json(tmp_path)
    assert "returnOrigins" not in config and config["retentionDays"] == 30
