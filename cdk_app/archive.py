"""The evidence archive: a private, encrypted, TLS-only, versioned bucket whose objects expire.

Selfies and crops (``detections/``, ``sessions/``) expire after ``retentionDays``; audit records (``audit/``)
carry no image and are kept for ``auditRetentionDays``, as KYC record-keeping rules usually require.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .nag import acknowledge


class EvidenceArchive(Construct):
    """Selfies and face crops. Only the liveness function can write; nothing outside it can read."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retention_days: int,
        audit_retention_days: int,
        access_log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = private_bucket(
            self,
            "AccessLogs",
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(access_log_retention_days))],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log target of the evidence bucket; logging it into itself would loop.",
        )
        self.bucket = private_bucket(
            self,
            "Bucket",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="evidence/",
            lifecycle_rules=[
                _expire("ExpireDetections", "detections/", retention_days),
                _expire("ExpireSessionEvidence", "sessions/", retention_days),
                _expire("ExpireAuditRecords", "audit/", audit_retention_days),
            ],
        )

    def restrict_reads_to(self, principals: list[iam.IRole | str]) -> None:
        """Deny object reads to everyone but these principals (the function, and any auditor roles).

        An explicit deny wins over any allow, so an account-wide s3:* grant still cannot read selfies."""
        arns = [principal if isinstance(principal, str) else principal.role_arn for principal in principals]
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheFunctionAndAuditorsRead",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": arns}},
            )
        )


def private_bucket(scope: Construct, construct_id: str, **extra: object) -> s3.Bucket:
    """A bucket nobody outside the account can reach: public access blocked, SSE-S3 (server access logging cannot
    deliver to SSE-KMS buckets), TLS only, ACLs off. Retained with the stack: evidence, audit records and logs
    must outlive a `cdk destroy` until their lifecycle expires them."""
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        **extra,
    )


def _expire(rule_id: str, prefix: str, days: int) -> s3.LifecycleRule:
    return s3.LifecycleRule(
        id=rule_id,
        prefix=prefix,
        expiration=cdk.Duration.days(days),
        # Versioning keeps overwritten or deleted copies; they must not outlive the retention either.
        noncurrent_version_expiration=cdk.Duration.days(1),
        abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
    )
