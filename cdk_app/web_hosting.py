"""The web client (web/) on CloudFront, and its sign-in with Cognito's managed login.

- A private S3 bucket (no public access, TLS only, SSE-S3, access logs) that only CloudFront can read, through
  origin access control.
- A CloudFront distribution: HTTP redirected to HTTPS, and a response-headers policy with a CSP that lets the
  page talk only to itself, the API and the Cognito domain, HSTS, ``X-Frame-Options: DENY``
  (``frame-ancestors 'none'``), ``nosniff`` and no referrer.
- ``config.json`` written at deploy time beside the page: the API URL, the user pool, the app client and the
  sign-in domain (and the retention the start screen states).
- A Cognito app client for the page (authorization-code grant, public client: the page sends a PKCE challenge)
  and a managed-login domain, with the distribution's URL as the only callback and sign-out URL.

The distribution's origin is known before the API is built, so the stack can add it to the API's CORS
allow-list; the API's origin is given later (``connect_api``), which completes the CSP.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct
from liveness.web_security import content_security_policy

from .archive import private_bucket
from .nag import acknowledge

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
HSTS_SECONDS = 2 * 365 * 24 * 3600


# Reasons shared by the cdk-nag acknowledgements below and checkov's skip list (cdk_app/checkov_skips.py).
NO_WAF_REASON = (
    "No WAF web ACL by default (an ACL and each rule cost a monthly fee): the distribution serves static "
    "files only, and the API behind it has its own authorizer, validation and throttling. Attach an "
    "existing web ACL if your organisation requires one (see docs/deploy.md)."
)
NO_STANDARD_LOGGING_REASON = (
    "CloudFront standard logging needs a bucket with ACLs enabled, which the stack's private buckets "
    "forbid; the distribution serves static files with no personal data, the bucket has S3 access logs and "
    "every API call is in the API's access log."
)
DEFAULT_CERTIFICATE_REASON = (
    "The distribution uses CloudFront's default *.cloudfront.net certificate, whose TLS policy CloudFront "
    "fixes; a custom domain with its own ACM certificate and TLSv1.2_2021 is the way to pin it (see docs/deploy.md)."
)


class WebHosting(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        user_pool: cognito.IUserPool | None,
        cognito_domain_url: str = "",
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_bucket(
            self, "Bucket", server_access_logs_bucket=access_logs, server_access_logs_prefix="web/"
        )
        # The page's files are rebuilt from the repo on every deploy; nothing in this bucket needs keeping.
        self.bucket.apply_removal_policy(cdk.RemovalPolicy.DESTROY)
        self.api_url = ""
        self.user_pool = user_pool
        self.client: cognito.UserPoolClient | None = None
        self.sign_in_url = cognito_domain_url
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="KYC liveness web client: CSP (self, the API, Cognito), HSTS, no framing",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    # Completed by connect_api() once the API exists (see content_security_policy).
                    content_security_policy=content_security_policy("", ""),
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.seconds(HSTS_SECONDS), include_subdomains=True, override=True
                ),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="KYC liveness web client",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        self.origin = self.url  # joins the API's CORS allow-list
        if user_pool is not None:
            self._add_sign_in(user_pool, cognito_domain_url)
        self._acknowledge_findings()

    def _add_sign_in(self, user_pool: cognito.IUserPool, existing_domain_url: str) -> None:
        """An app client for the page (code grant, PKCE from the page, no secret) and the managed login."""
        page = f"{self.url}/"
        self.client = cognito.UserPoolClient(
            self,
            "PageClient",
            user_pool=user_pool,
            generate_secret=False,  # a browser cannot keep one: PKCE protects the code instead
            prevent_user_existence_errors=True,
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[page],
                logout_urls=[page],
            ),
            id_token_validity=cdk.Duration.hours(1),
            access_token_validity=cdk.Duration.hours(1),
            refresh_token_validity=cdk.Duration.hours(12),
        )
        if existing_domain_url:  # an imported pool keeps its own domain
            self.sign_in_url = existing_domain_url.rstrip("/")
            return
        stack = cdk.Stack.of(self)
        domain = cognito.UserPoolDomain(
            self,
            "SignInDomain",
            user_pool=user_pool,
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=cdk.Fn.join("-", ["kyc-liveness", cdk.Aws.ACCOUNT_ID, stack.node.addr[:8]])
            ),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        cognito.CfnManagedLoginBranding(
            self,
            "SignInBranding",
            user_pool_id=user_pool.user_pool_id,
            client_id=self.client.user_pool_client_id,
            use_cognito_provided_values=True,
        )
        self.sign_in_url = domain.base_url()

    def connect_api(self, *, api_url: str, api_origin: str) -> None:
        """The API the page calls: its origin enters the CSP, its URL the page's config."""
        self.api_url = api_url
        self.csp = content_security_policy(api_origin, self.sign_in_url)
        policy = self.headers.node.default_child
        assert isinstance(policy, cloudfront.CfnResponseHeadersPolicy)
        policy.add_property_override(
            "ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy.ContentSecurityPolicy", self.csp
        )

    def publish(
        self, *, retention_days: int, audit_retention_days: int, return_origins: Sequence[str] = ()
    ) -> s3deploy.BucketDeployment:
        """Upload web/ and write config.json beside it (at deploy time, with the stack's real values).
        ``return_origins``: the apps a passed check may be handed back to (postMessage, ``?returnUrl=``)."""
        config: dict[str, Any] = {
            "apiUrl": self.api_url,
            "retentionDays": retention_days,
            "auditRetentionDays": audit_retention_days,
        }
        if return_origins:
            config["returnOrigins"] = list(return_origins)
        if self.client is not None:
            config.update(
                {
                    "region": cdk.Aws.REGION,
                    "userPoolId": self.user_pool.user_pool_id if self.user_pool is not None else "",
                    "userPoolClientId": self.client.user_pool_client_id,
                    "cognitoDomain": self.sign_in_url,
                    "redirectUri": f"{self.url}/",
                }
            )
        deployment = s3deploy.BucketDeployment(
            self,
            "Publish",
            destination_bucket=self.bucket,
            sources=[
                s3deploy.Source.asset(str(WEB_DIR), exclude=["config.json"]),
                s3deploy.Source.json_data("config.json", config),
            ],
            # Small files, changed on every deploy: browsers revalidate (ETag) rather than keep stale copies.
            cache_control=[s3deploy.CacheControl.from_string("no-cache")],
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
        )
        _acknowledge_deployment_handler(cdk.Stack.of(self), self.bucket)
        return deployment

    def _acknowledge_findings(self) -> None:
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "No geo restriction: the check is offered wherever the bank's customers are; sign-in and the API "
            "decide who may use it.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            NO_WAF_REASON,
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            NO_STANDARD_LOGGING_REASON,
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            DEFAULT_CERTIFICATE_REASON,
        )


def _acknowledge_deployment_handler(stack: cdk.Stack, bucket: s3.Bucket) -> None:
    """BucketDeployment's handler is a singleton aws-cdk-lib creates at the stack's root; it runs only during
    deploys (copy the page from the CDK asset bucket, write config.json, invalidate the cache)."""
    for child in stack.node.children:
        if not child.node.id.startswith("Custom::CDKBucketDeployment"):
            continue
        acknowledge(
            child,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "aws-cdk-lib's BucketDeployment handler writes its own logs with the AWS-managed basic execution policy; "
            "it runs only while CloudFormation deploys the page.",
        )
        bucket_id = stack.resolve(stack.get_logical_id(bucket.node.default_child))  # type: ignore[arg-type]
        for finding in (
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            "Action::s3:Abort*",
            "Action::s3:DeleteObject*",
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
            f"Resource::<{bucket_id}.Arn>/*",
            "Resource::*",
        ):
            acknowledge(
                child,
                f"AwsSolutions-IAM5[{finding}]",
                "Generated by aws-cdk-lib's BucketDeployment for its deploy-time handler: read the page's asset from "
                "the CDK asset bucket, replace the web bucket's objects, and invalidate the distribution (CloudFront's "
                "invalidation actions take no resource ARN).",
            )
        acknowledge(
            child,
            "AwsSolutions-L1",
            "The BucketDeployment handler's runtime is pinned by aws-cdk-lib and moves with CDK upgrades; it runs "
            "only at deploy time and never sees a request or a selfie.",
        )


def api_origin_of(rest_api_id: str) -> str:
    """The API's origin from its id alone: the stage URL would depend on the deployment, which depends on the
    function, which depends on this distribution (through its CORS allow-list): a cycle."""
    return f"https://{rest_api_id}.execute-api.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"
