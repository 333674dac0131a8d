"""The two ways to reuse the OpenCV layer, as docs/layer-reuse.md shows them; the tests synthesize both.

- ``add_id_document_reader``: a second function in this app, on the layer ``LivenessStack`` already builds.
- ``IdDocumentStack``: a stack of another CDK app, resolving the layer's ARN from the SSM parameter at deploy time.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_app.stack import LivenessStack

# What the function imports from the layer; inline code keeps the example free of a source folder.
HANDLER_CODE = "import cv2\nimport numpy\n\ndef handler(event, context):\n    return {'opencv': cv2.__version__}\n"


def add_id_document_reader(scope: Construct, liveness: LivenessStack) -> lambda_.Function:
    """A function of this app (in ``liveness`` or in another stack of the app) on the stack's one layer."""
    opencv = liveness.opencv_layer
    return lambda_.Function(
        scope,
        "ReadIdDocument",
        runtime=opencv.runtime,
        architecture=opencv.architecture,
        layers=[opencv.layer_version],
        handler="index.handler",
        code=lambda_.Code.from_inline(HANDLER_CODE),
        # An explicit role: cdk-nag refuses the default one's AWS-managed policy (IAM4). A real function
        # would also get its own log group and the grants it needs, as in cdk_app/liveness_function.py.
        role=iam.Role(scope, "ReadIdDocumentRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")),
    )


# Another app does not import this repository: it names the parameter, and the layer's runtime and
# architecture, as docs/layer-reuse.md documents them.
OPENCV_LAYER_ARN_PARAMETER = "/kyc-liveness/opencv-layer/arn"


class IdDocumentStack(cdk.Stack):
    """A stack of another CDK app: the layer's ARN is read from SSM when CloudFormation deploys this stack."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        layer_arn = ssm.StringParameter.value_for_string_parameter(self, OPENCV_LAYER_ARN_PARAMETER)
        opencv = lambda_.LayerVersion.from_layer_version_arn(self, "OpenCvLayer", layer_arn)
        lambda_.Function(
            self,
            "ReadIdDocument",
            runtime=lambda_.Runtime.PYTHON_3_14,  # the layer's compatible runtime
            architecture=lambda_.Architecture.ARM_64,  # and architecture
            layers=[opencv],
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER_CODE),
        )
