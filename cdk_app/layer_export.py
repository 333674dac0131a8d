"""Publishes the OpenCV layer for functions outside this stack: a stack output and an SSM parameter.

The KYC app's next functions (reading an ID document, matching its photo with the selfie) need numpy and
OpenCV too. A consumer stack resolves the parameter at deploy time
(``ssm.StringParameter.value_for_string_parameter``), so it is not bound to this stack by a CloudFormation
export: this stack can publish a new layer version and the consumer picks it up on its next deploy.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from .layer import OpenCvLayer

# The stack output's name; the logical ID is pinned so that moving this construct never renames it.
OUTPUT_NAME = "OpenCvLayerArn"


class OpenCvLayerExport(Construct):
    """The layer version's ARN as an SSM String parameter and a stack output, both naming the runtime and the
    architecture a consumer function must use (a layer only works on those)."""

    def __init__(self, scope: Construct, construct_id: str, *, layer: OpenCvLayer, parameter_name: str) -> None:
        super().__init__(scope, construct_id)
        compatible = f"compatible runtime {layer.runtime.name}, architecture {layer.architecture.name}"
        self.parameter = ssm.StringParameter(
            self,
            "ArnParameter",
            parameter_name=parameter_name,
            string_value=layer.layer_version.layer_version_arn,
            description=f"ARN of the KYC OpenCV layer version (numpy, OpenCV, Powertools); {compatible}",
        )
        output = cdk.CfnOutput(
            self,
            "Arn",
            value=layer.layer_version.layer_version_arn,
            description=f"OpenCV layer version ARN ({compatible}); also in SSM parameter {parameter_name}",
        )
        output.override_logical_id(OUTPUT_NAME)
