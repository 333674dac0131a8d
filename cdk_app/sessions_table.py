"""The liveness-session table: on-demand, point-in-time recovery, KMS encryption, TTL a little after expiry."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

PARTITION_KEY = "sessionId"
TTL_ATTRIBUTE = "ttl"  # epoch seconds; the runtime sets it to the session's expiry plus SESSION_RETENTION_SECONDS


class SessionsTable(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=TTL_ATTRIBUTE,
            # The TTL's deletions reach SessionExpiryFunction, which audits sessions nobody finished.
            stream=dynamodb.StreamViewType.OLD_IMAGE,
            # Session state is short-lived working data; the evidence and audit records live in S3.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
