"""checkov's findings on the synthesized template that this stack does not fix, each with its reason, in one list.

The list is applied to the template as checkov's own resource-level suppressions (``Metadata.checkov.skip``,
with the reason as the comment), so a plain ``checkov -f KycLiveness.template.json`` reports them as skipped,
and tests/infra/test_checkov.py fails on any other finding, or on an entry that no longer matches one. The
docs site's security page shows this list, generated from it when the site is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
import jsii
from constructs import IConstruct
from liveness.routes import allowed_methods

from .api import METHOD_NOT_ALLOWED_REASON
from .web_hosting import DEFAULT_CERTIFICATE_REASON, NO_STANDARD_LOGGING_REASON, NO_WAF_REASON


@dataclass(frozen=True)
class Skip:
    check: str
    resource: str  # construct path inside the stack, without "/Resource"
    reason: str


_LOG_GROUPS_KMS = (
    "The logs hold no image, body or token (tests check the logs of real requests); CloudWatch Logs already "
    "encrypts them at rest, and a customer-managed key would add a key policy and cost for no protection gained."
)
_NO_VPC = (
    "The functions reach only AWS APIs (S3, DynamoDB, Rekognition) and hold no network-reachable resource; a VPC "
    "would add NAT gateways or endpoints and cold-start cost, and no isolation for public AWS endpoints."
)
# CDK's BucketDeployment brings one shared, CDK-managed function that copies web/ into the web bucket.
_DEPLOY_HANDLER = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C256MiB"
_DEPLOY_ONLY = (
    "CDK's BucketDeployment handler runs only while CloudFormation deploys the web client (it copies web/ into "
    "the web bucket); it serves no request and sees no user data, and CDK owns its code and settings."
)
_ENV_KMS = (
    "The environment holds names and thresholds (bucket, table, origins, tuning), no secret; Lambda encrypts it "
    "at rest with its AWS-managed key."
)

CHECKOV_SKIPS: tuple[Skip, ...] = (
    Skip(
        "CKV_AWS_18",
        "Archive/AccessLogs",
        "This is the access-log bucket itself: logging it to itself would loop, and logging it elsewhere only moves "
        "the question.",
    ),
    Skip(
        "CKV_AWS_21",
        "Archive/AccessLogs",
        "Server access logs are written once by S3's logging service and expire after accessLogRetentionDays; "
        "nobody overwrites them, so versions would only keep copies past that retention.",
    ),
    Skip(
        "CKV_AWS_119",
        "Sessions/Table",
        "Encrypted with the AWS-managed KMS key (point-in-time recovery on); items hold no image, and a "
        "customer-managed key adds cost and a key policy to keep right, for no reader it would exclude.",
    ),
    Skip("CKV_AWS_158", "Liveness/Logs", _LOG_GROUPS_KMS),
    Skip("CKV_AWS_158", "SessionExpiry/Logs", _LOG_GROUPS_KMS),
    Skip("CKV_AWS_158", "Api/AccessLogs", _LOG_GROUPS_KMS),
    Skip(
        "CKV_AWS_116",
        "Liveness/Function",
        "Invoked synchronously by API Gateway only: a dead-letter queue applies to asynchronous invocations, and "
        "a failed request is answered to the client (and alarmed on), not retried.",
    ),
    Skip(
        "CKV_AWS_116",
        "SessionExpiry/Function",
        "Invoked by a DynamoDB stream event source, whose own on-failure destination (the versioned failed-batch "
        "bucket) keeps batches that still fail after 10 retries; a function DLQ never sees stream invocations.",
    ),
    Skip("CKV_AWS_117", "Liveness/Function", _NO_VPC),
    Skip("CKV_AWS_117", "SessionExpiry/Function", _NO_VPC),
    Skip("CKV_AWS_173", "Liveness/Function", _ENV_KMS),
    Skip("CKV_AWS_173", "SessionExpiry/Function", _ENV_KMS),
    Skip(
        "CKV_AWS_115",
        "SessionExpiry/Function",
        "A DynamoDB stream runs at most one batch per shard at a time (parallelization factor 1), which bounds it "
        "already; a reservation would take from the account's quota. The API function has one "
        "(liveness:reservedConcurrency).",
    ),
    Skip(
        "CKV_AWS_73",
        "Api/RestApi/DeploymentStage.v1",
        "X-Ray is off: JSON access logs and the function's structured logs carry the request id end to end, and "
        "traces would cost per request without answering a question those do not.",
    ),
    Skip(
        "CKV_AWS_120",
        "Api/RestApi/DeploymentStage.v1",
        "Every route is a per-user POST or a per-session read whose answer changes with each frame: a cache would "
        "serve stale or another caller's state.",
    ),
    Skip(
        "CKV_AWS_21",
        "Web/Bucket",
        "The web bucket holds only the built page, replaced from the repository on every deploy (the repository "
        "is its history); versions would keep stale copies of public files.",
    ),
    Skip("CKV_AWS_68", "Web/Distribution", NO_WAF_REASON),
    Skip("CKV_AWS_86", "Web/Distribution", NO_STANDARD_LOGGING_REASON),
    Skip("CKV_AWS_174", "Web/Distribution", DEFAULT_CERTIFICATE_REASON),
    Skip(
        "CKV_AWS_111",
        f"{_DEPLOY_HANDLER}/ServiceRole/DefaultPolicy",
        "CDK generates this policy for its BucketDeployment handler, scoped to the asset and web buckets; its "
        "unconstrained write actions are the handler's own. " + _DEPLOY_ONLY,
    ),
    Skip("CKV_AWS_116", _DEPLOY_HANDLER, _DEPLOY_ONLY),
    Skip("CKV_AWS_117", _DEPLOY_HANDLER, _DEPLOY_ONLY),
    Skip("CKV_AWS_115", _DEPLOY_HANDLER, _DEPLOY_ONLY),
    Skip("CKV_AWS_173", _DEPLOY_HANDLER, _DEPLOY_ONLY),
    Skip("CKV_AWS_158", f"{_DEPLOY_HANDLER}/LogGroup", _LOG_GROUPS_KMS),
    *(Skip("CKV_AWS_59", f"Api/RestApi/Default{path}/ANY", METHOD_NOT_ALLOWED_REASON) for path in allowed_methods()),
)


@jsii.implements(cdk.IAspect)
class CheckovSkips:
    """Writes each entry's suppression into its resource's ``Metadata.checkov.skip``."""

    def __init__(self, stack: cdk.Stack, skips: tuple[Skip, ...] = CHECKOV_SKIPS) -> None:
        self._prefix = stack.node.path + "/"
        self._skips = skips

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, cdk.CfnResource) or not node.node.path.startswith(self._prefix):
            return
        path = node.node.path[len(self._prefix) :].removesuffix("/Resource")
        found = [{"id": skip.check, "comment": skip.reason} for skip in self._skips if skip.resource == path]
        if found:
            node.add_metadata("checkov", {"skip": found})
