"""The liveness Lambda function: arm64, the OpenCV layer, its own log group, and a role that can do only its job."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .config import log_retention
from .nag import acknowledge

LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda_src"
HANDLER = "liveness.handler.lambda_handler"
METRICS_NAMESPACE = "KycLiveness"
DETECTIONS_PREFIX = "detections/"
SESSIONS_PREFIX = "sessions/"


class LivenessFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer: lambda_.ILayerVersion,
        runtime: lambda_.Runtime,
        archive_bucket: s3.IBucket,
        sessions_table: dynamodb.ITable,
        session_tuning: dict[str, str],
        allowed_origins: tuple[str, ...],
        analyzer: str,
        memory_mb: int,
        timeout_seconds: int,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # An explicit role instead of the managed AWSLambdaBasicExecutionRole: it may write only its own logs.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=runtime,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(LAMBDA_SRC), exclude=["**/__pycache__", "**/*.pyc"]),
            layers=[layer],
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            description="KYC liveness: analyses webcam frames and decides on the server",
            environment={
                "ANALYZER": analyzer,
                "STORAGE": "aws",
                "ARCHIVE_BUCKET": archive_bucket.bucket_name,
                "SESSIONS_TABLE": sessions_table.table_name,
                "ALLOWED_ORIGINS": ",".join(allowed_origins),
                "POWERTOOLS_SERVICE_NAME": "liveness",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOGGER_LOG_EVENT": "false",  # the event carries the selfie
                **session_tuning,
            },
        )
        self.log_group.grant_write(self.role)
        if analyzer == "rekognition":  # the private mode (ANALYZER=local) never calls Rekognition
            self._allow_face_analysis()
        self._allow_archive_writes(archive_bucket, DETECTIONS_PREFIX)
        self._allow_archive_writes(archive_bucket, SESSIONS_PREFIX)
        self._allow_archive_reads(archive_bucket, SESSIONS_PREFIX)
        # Conditional PutItem for every state change, consistent GetItem to read: nothing else.
        sessions_table.grant(self.role, "dynamodb:GetItem", "dynamodb:PutItem")

    def _allow_face_analysis(self) -> None:
        statement = iam.PolicyStatement(
            actions=["rekognition:DetectFaces", "rekognition:CompareFaces"], resources=["*"]
        )
        self.role.add_to_principal_policy(statement)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Rekognition DetectFaces and CompareFaces support no resource-level permissions, so IAM requires '*'.",
        )

    def _allow_archive_reads(self, bucket: s3.IBucket, prefix: str) -> None:
        """Sessions read back the reference face crop (to compare later frames, and for GET /sessions/{id})."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}*")])
        )

    def _allow_archive_writes(self, bucket: s3.IBucket, prefix: str) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{prefix}*")])
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/{prefix}*]",
            f"Only under {prefix}: every object key holds a fresh random id (per request or per session), so "
            "the keys cannot be listed in advance.",
        )


def _logical_id(bucket: s3.IBucket) -> str:
    """The bucket's CloudFormation logical id, which cdk-nag names in the finding it reports."""
    stack = cdk.Stack.of(bucket)
    return str(stack.resolve(stack.get_logical_id(bucket.node.default_child)))  # type: ignore[arg-type]
