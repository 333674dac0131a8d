"""LivenessStack: wires the constructs, passes names and grants, and outputs what a frontend and other
functions need (the API, the user pool, the OpenCV layer)."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct
from liveness.constants import METRICS_NAMESPACE

from .api import LivenessApi
from .archive import EvidenceArchive
from .config import LivenessConfig, log_retention
from .identity import CallerIdentity
from .layer import OpenCvLayer
from .layer_export import OpenCvLayerExport
from .liveness_function import FunctionRuntime, LivenessFunction, SessionExpiryFunction
from .monitoring import LivenessMonitoring
from .nag import acknowledge
from .sessions_table import SessionsTable
from .web_hosting import WebHosting, api_origin_of

# With the authorizer switched off (demos only), every caller shares this identity.
DEMO_CALLER = "demo-anonymous"


class LivenessStack(cdk.Stack):
    """The liveness backend. ``opencv_layer`` is public so that another construct of this app can put a
    function on the same layer (``.layer_version``, ``.runtime``, ``.architecture``) without building it again."""

    opencv_layer: OpenCvLayer

    def __init__(self, scope: Construct, construct_id: str, *, config: LivenessConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        archive = EvidenceArchive(
            self,
            "Archive",
            retention_days=config.retention_days,
            audit_retention_days=config.audit_retention_days,
            access_log_retention_days=config.access_log_retention_days,
        )
        sessions = SessionsTable(self, "Sessions")
        # The face models: the embedded analyzer judges with them, or pre-screens for Rekognition.
        face_models = config.analyzer == "local" or config.prescreen
        self.opencv_layer = OpenCvLayer(self, "OpenCvLayer", include_face_models=face_models)
        OpenCvLayerExport(self, "OpenCvLayerExport", layer=self.opencv_layer, parameter_name=config.layer_arn_parameter)
        shared = FunctionRuntime(
            layer=self.opencv_layer.layer_version,
            runtime=self.opencv_layer.runtime,
            architecture=self.opencv_layer.architecture,
            log_retention_days=config.log_retention_days,
            environment={
                "STORAGE": "aws",
                "ARCHIVE_BUCKET": archive.bucket.bucket_name,
                "SESSIONS_TABLE": sessions.table.table_name,
                "POWERTOOLS_SERVICE_NAME": "liveness",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOGGER_LOG_EVENT": "false",  # the event carries the selfie
                "LIGHT_CHALLENGE": config.light_challenge,
                "PRESCREEN": "on" if config.prescreen else "off",
                "ARCHIVE_SCREENED": "on" if config.archive_screened else "off",
                **config.session_tuning,
            },
        )
        identity = (
            None
            if config.disable_auth
            else CallerIdentity(self, "Identity", existing_user_pool_id=config.cognito_user_pool_id)
        )
        # The web client (on by default; liveness:webClient=false leaves it out). Its CloudFront origin joins
        # the API's CORS allow-list FIRST: API Gateway's own error responses (401, 429, ...) can name one origin
        # only, and the hosted page must be able to read them (a 429's Retry-After above all).
        web = (
            WebHosting(
                self,
                "Web",
                user_pool=identity.user_pool if identity else None,
                cognito_domain_url=config.cognito_domain,
                access_logs=archive.access_logs,
            )
            if config.web_client
            else None
        )
        allowed_origins = (web.origin, *config.allowed_origins) if web else config.allowed_origins
        function = LivenessFunction(
            self,
            "Liveness",
            shared=shared,
            archive_bucket=archive.bucket,
            sessions_table=sessions.table,
            allowed_origins=allowed_origins,
            analyzer=config.analyzer,
            memory_mb=config.memory_mb,
            timeout_seconds=config.timeout_seconds,
            anonymous_caller=DEMO_CALLER if config.disable_auth else "",
            reserved_concurrency=config.reserved_concurrency,
            snap_start=config.snap_start,
        )
        expiry = SessionExpiryFunction(
            self,
            "SessionExpiry",
            shared=shared,
            archive_bucket=archive.bucket,
            table=sessions.table,
            access_logs=archive.access_logs,
            failure_retention_days=config.audit_retention_days,
        )
        archive.restrict_reads_to([function.role, *config.audit_reader_arns])
        api = LivenessApi(
            self,
            "Api",
            handler=function.alias,
            allowed_origins=allowed_origins,
            throttle_rate_limit=config.throttle_rate_limit,
            throttle_burst_limit=config.throttle_burst_limit,
            log_retention=log_retention(config.log_retention_days),
            user_pool=identity.user_pool if identity else None,
        )
        api.suppress_preflight_findings()
        if config.disable_auth:
            _acknowledge_demo_mode(api)
        LivenessMonitoring(
            self,
            "Monitoring",
            functions=[function.function, expiry.function],
            rest_api=api.rest_api,
            expiry_function=expiry.function,
        )
        self._suppress_api_gateway_account_role(api)
        if web:
            web.connect_api(api_url=api.rest_api.url, api_origin=api_origin_of(api.rest_api.rest_api_id))
            web.publish(
                retention_days=config.retention_days,
                audit_retention_days=config.audit_retention_days,
                return_origins=config.return_origins,
            )
            cdk.CfnOutput(self, "WebUrl", value=f"{web.url}/", description="The web client")
            if web.client is not None:
                cdk.CfnOutput(self, "WebSignInDomain", value=web.sign_in_url)
                cdk.CfnOutput(self, "WebClientId", value=web.client.user_pool_client_id)

        cdk.CfnOutput(self, "ApiUrl", value=api.rest_api.url, description="Base URL of the liveness API")
        if identity and identity.client:
            cdk.CfnOutput(self, "UserPoolId", value=identity.user_pool.user_pool_id)
            cdk.CfnOutput(self, "UserPoolClientId", value=identity.client.user_pool_client_id)

    def _suppress_api_gateway_account_role(self, api: LivenessApi) -> None:
        acknowledge(
            api.rest_api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level CloudWatch role must carry the AWS-managed AmazonAPIGatewayPushToCloudWatchLogs "
            "policy; only API Gateway can assume it.",
        )
        acknowledge(
            api.rest_api,
            "AwsSolutions-APIG3",
            "No WAF web ACL by default (an ACL and each rule cost a monthly fee); the API is protected by the Cognito "
            "authorizer, request validation and stage throttling. Associate an existing web ACL with the stage if "
            "your organisation requires one (see docs/deploy.md).",
        )


def _acknowledge_demo_mode(api: LivenessApi) -> None:
    reason = (
        "The deployer set liveness:disableAuthDemoOnly=true explicitly: the API is open for a demo. "
        "docs/deploy.md marks this flag as never for production."
    )
    for method in api.rest_api.methods:
        for rule_id in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(method, rule_id, reason)
