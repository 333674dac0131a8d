#!/usr/bin/env python3
"""The CDK app: one LivenessStack, checked by cdk-nag's AwsSolutions pack on every synth."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from cdk_app.checkov_skips import CheckovSkips
from cdk_app.config import LivenessConfig
from cdk_app.stack import LivenessStack


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


if __name__ == "__main__":
    build_app().synth()
