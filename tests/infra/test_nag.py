"""cdk-nag's AwsSolutions pack runs on every synth; the stack must have no unacknowledged finding."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from tests.infra.synth import cdk_json_context


def synth_with(outdir: Path, extra=None, **overrides) -> None:
    from cdk_app.application import build_app

    context = cdk_json_context(**overrides)
    context["aws:cdk:bundling-stacks"] = []
    app = cdk.App(context=context, outdir=str(outdir))
    build_app(app)
    if extra is not None:
        extra(app.node.find_child("KycLiveness"))
    app.synth()


def violations(outdir: Path) -> list[dict]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [violation for plugin in report["pluginReports"] for violation in plugin.get("violations", [])]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"liveness:cognitoUserPoolId": "eu-west-1_AbCdEf123", "liveness:cognitoDomain": "https://login.example.com"},
        {"liveness:disableAuthDemoOnly": True},
        {"liveness:analyzer": "local"},
        {"liveness:webClient": False},
    ],
    ids=["default", "imported-pool", "demo-no-auth", "local-analyzer", "no-web-client"],
)
def test_stack_has_no_unacknowledged_findings(tmp_path: Path, overrides: dict) -> None:
    synth_with(tmp_path, **overrides)  # raises on any unacknowledged error-level finding
    report_path = tmp_path / "validation-report.json"
    if report_path.exists():  # written whenever a plugin ran; warnings count as findings too
        assert violations(tmp_path) == []


def test_nag_really_rejects_an_unhardened_resource(tmp_path: Path) -> None:
    """The control: the same synth fails once a resource breaks the rules, so the test above can fail."""

    def add_open_bucket(stack: cdk.Stack) -> None:
        s3.Bucket(stack, "CarelessBucket")

    with pytest.raises(Exception, match="AwsSolutions-S1"):
        synth_with(tmp_path, extra=add_open_bucket)
    rule_ids = {violation["ruleName"] for violation in violations(tmp_path)}
    assert any("AwsSolutions-S1" in rule for rule in rule_ids), rule_ids
