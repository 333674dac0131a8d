"""The CDK app: one LivenessStack, checked by cdk-nag's AwsSolutions pack on every synth, and its OpenAPI file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from liveness.openapi import DEPLOYED, openapi_document
from liveness.settings import Settings

from .checkov_skips import CheckovSkips
from .config import LivenessConfig
from .stack import LivenessStack


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    config = LivenessConfig.from_context(app.node)
    stack = LivenessStack(
        app,
        "KycLiveness",
        config=config,
        description="Self-service KYC liveness backend (API Gateway, Lambda, Rekognition, S3)",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    cdk.Aspects.of(stack).add(CheckovSkips(stack))  # checkov's accepted findings, with their reasons
    return app


def deployed_openapi(config: LivenessConfig) -> dict[str, Any]:
    """The stack's contract: the Cognito authorizer (unless the demo-only liveness:disableAuth), and the limits the
    function reads from the environment the stack gives it (the session tuning)."""
    server = dataclasses.replace(DEPLOYED, cognito=False) if config.disable_auth else DEPLOYED
    return openapi_document(server, Settings.from_env(dict(config.session_tuning)))


def write_openapi(outdir: str | Path, config: LivenessConfig) -> Path:
    """The API's OpenAPI document beside the template (generated from the same route table and schemas)."""
    path = Path(outdir) / "openapi.json"
    document = deployed_openapi(config)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def main() -> None:
    app = build_app()
    app.synth()
    write_openapi(app.outdir, LivenessConfig.from_context(app.node))
