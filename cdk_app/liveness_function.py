"""The Lambda functions: arm64, the OpenCV layer, their own log groups, and roles that can do only their job.

- ``LivenessFunction`` serves the API (``/detect`` and the session routes).
- ``SessionExpiryFunction`` writes the audit record of a session nobody closed, when DynamoDB's TTL removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .archive import private_bucket
from .config import log_retention
from .nag import acknowledge

LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda_src"
API_HANDLER = "liveness.handler.lambda_handler"
EXPIRY_HANDLER = "liveness.expiry.lambda_handler"
DETECTIONS_PREFIX = "detections/"
SESSIONS_PREFIX = "sessions/"
AUDIT_PREFIX = "audit/"


@dataclass(frozen=True)
class FunctionRuntime:
    """What every function of the app shares: the code asset, the layer, and the runtime and architecture the
    layer was built for."""

    layer: lambda_.ILayerVersion
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    log_retention_days: int
    environment: dict[str, str]

    @staticmethod
    def code() -> lambda_.Code:
        return lambda_.Code.from_asset(str(LAMBDA_SRC), exclude=["**/__pycache__", "**/*.pyc"])


class _FunctionWithOwnRole(Construct):
    """A function, its own log group, and an explicit role with no managed policy: it may write only its logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: FunctionRuntime,
        handler: str,
        description: str,
        memory_mb: int,
        timeout_seconds: int,
        environment: dict[str, str],
        reserved_concurrency: int | None = None,
        snap_start: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention(shared.log_retention_days), removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=shared.runtime,
            architecture=shared.architecture,
            handler=handler,
            code=shared.code(),
            layers=[shared.layer],
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            description=description,
            environment={**shared.environment, **environment},
            reserved_concurrent_executions=reserved_concurrency,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            # A replaced version is deleted: with SnapStart, every version still there keeps its snapshot cached
            # (and billed), and only the alias's version is ever invoked.
            current_version_options=lambda_.VersionOptions(removal_policy=cdk.RemovalPolicy.DESTROY),
        )
        self.log_group.grant_write(self.role)
        if snap_start:
            cdk.Annotations.of(self.function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "The function publishes its current version, and the API calls it through an alias.",
            )

    def allow_archive(self, bucket: s3.IBucket, action: str, prefix: str) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=[action], resources=[bucket.arn_for_objects(f"{prefix}*")])
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::<{_logical_id(bucket)}.Arn>/{prefix}*]",
            f"Only under {prefix}: every object key holds a fresh random id (per request or per session), so "
            "the keys cannot be listed in advance.",
        )


class LivenessFunction(_FunctionWithOwnRole):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: FunctionRuntime,
        archive_bucket: s3.IBucket,
        sessions_table: dynamodb.ITable,
        allowed_origins: tuple[str, ...],
        analyzer: str,
        memory_mb: int,
        timeout_seconds: int,
        anonymous_caller: str = "",
        reserved_concurrency: int | None = None,
        snap_start: bool = False,
    ) -> None:
        environment = {"ANALYZER": analyzer, "ALLOWED_ORIGINS": ",".join(allowed_origins)}
        if anonymous_caller:
            environment["ANONYMOUS_CALLER"] = anonymous_caller
        super().__init__(
            scope,
            construct_id,
            shared=shared,
            handler=API_HANDLER,
            description="KYC liveness: analyses webcam frames and decides on the server",
            memory_mb=memory_mb,
            timeout_seconds=timeout_seconds,
            environment=environment,
            reserved_concurrency=reserved_concurrency,
            # SnapStart where Lambda supports it for the runtime (Python 3.12 and later, arm64 and x86_64).
            snap_start=snap_start and shared.runtime.supports_snap_start,
        )
        # The API calls this alias, which names the version published from the current code and configuration
        # (SnapStart snapshots published versions only; $LATEST always starts cold).
        self.alias = lambda_.Alias(self, "Live", alias_name="live", version=self.function.current_version)
        if analyzer == "rekognition":  # the private mode (ANALYZER=local) never calls Rekognition
            self._allow_face_analysis()
        self.allow_archive(archive_bucket, "s3:PutObject", DETECTIONS_PREFIX)
        self.allow_archive(archive_bucket, "s3:PutObject", SESSIONS_PREFIX)
        self.allow_archive(archive_bucket, "s3:PutObject", AUDIT_PREFIX)
        # Sessions read back the reference face crop (to compare later frames, and for GET /sessions/{id}).
        self.allow_archive(archive_bucket, "s3:GetObject", SESSIONS_PREFIX)
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


class SessionExpiryFunction(_FunctionWithOwnRole):
    """Closes and audits sessions nobody finished: DynamoDB's TTL removal arrives on the table's stream.

    A batch that still fails after the retries is written, whole (the removed items included), to a private
    bucket, because the stream keeps records for 24 hours only and the items are gone: an operator can replay
    it through the same handler. Nothing accepted is lost."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: FunctionRuntime,
        archive_bucket: s3.IBucket,
        table: dynamodb.ITable,
        access_logs: s3.IBucket,
        failure_retention_days: int,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            shared=shared,
            handler=EXPIRY_HANDLER,
            description="KYC liveness: writes the audit record of sessions that expired unfinished",
            memory_mb=512,
            timeout_seconds=60,
            environment={},
        )
        self.allow_archive(archive_bucket, "s3:PutObject", AUDIT_PREFIX)
        self.failed_batches = private_bucket(
            self,
            "FailedBatches",
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="expiry-failures/",
            # The only copy of batches that could not be audited: versioned, so neither an overwrite nor a
            # deletion loses one before the audit retention ends.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(failure_retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(failure_retention_days),
                )
            ],
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "The stream event source needs dynamodb:ListStreams, which supports no resource-level permissions; "
            "reading the records is limited to the sessions table's stream.",
        )
        self.function.add_event_source(
            event_sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=20,
                bisect_batch_on_error=True,
                retry_attempts=10,
                report_batch_item_failures=True,
                on_failure=_WriteOnlyS3Destination(self.failed_batches),
                # Only the TTL's deletions: a removal by DynamoDB itself, never a user's or a modification.
                filters=[lambda_.FilterCriteria.filter(TTL_REMOVAL_PATTERN)],
            )
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::<{_logical_id(self.failed_batches)}.Arn>/*]",
            "Lambda names the failed-batch objects itself; the role may write them only into this dedicated bucket.",
        )


@jsii.implements(lambda_.IEventSourceDlq)
class _WriteOnlyS3Destination:
    """An S3 on-failure destination granting only what Lambda needs (s3:PutObject, s3:ListBucket), where CDK's
    S3OnFailureDestination grants read, write and delete."""

    def __init__(self, bucket: s3.IBucket) -> None:
        self._bucket = bucket

    def bind(
        self, _target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        target_handler.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[self._bucket.arn_for_objects("*")])
        )
        target_handler.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self._bucket.bucket_arn])
        )
        return lambda_.DlqDestinationConfig(destination=self._bucket.bucket_arn)


# What DynamoDB's TTL deletions carry on the stream (and what user deletions do not): a REMOVE event whose
# identity is the DynamoDB service itself.
TTL_REMOVAL_PATTERN = {
    "eventName": lambda_.FilterRule.is_equal("REMOVE"),
    "userIdentity": {
        "type": lambda_.FilterRule.is_equal("Service"),
        "principalId": lambda_.FilterRule.is_equal("dynamodb.amazonaws.com"),
    },
}


def _logical_id(bucket: s3.IBucket) -> str:
    """The bucket's CloudFormation logical id, which cdk-nag names in the finding it reports."""
    stack = cdk.Stack.of(bucket)
    return str(stack.resolve(stack.get_logical_id(bucket.node.default_child)))  # type: ignore[arg-type]
