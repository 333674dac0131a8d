"""The REST API: Cognito authorizer, JSON-schema request validation, throttling, JSON access logs, CORS, and
405 with Allow for a method a route's resource does not define.

API Gateway's own errors (validation, auth, throttling, size) use the Lambda's error shape
``{"code", "message", "requestId"}``, so clients handle one format.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from liveness.routes import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    METHOD_NOT_ALLOWED_CODE,
    METHOD_NOT_ALLOWED_MESSAGE,
    ROUTES,
    STAGE,
    allowed_methods,
)

from .json_schema import load_schema, to_api_gateway
from .nag import acknowledge

# Gateway-generated errors mapped onto the runtime's codes.
_GATEWAY_ERRORS = {
    apigw.ResponseType.BAD_REQUEST_BODY: (
        "INVALID_REQUEST",
        '"Invalid request: $util.escapeJavaScript($context.error.validationErrorString)"',
    ),
    apigw.ResponseType.REQUEST_TOO_LARGE: ("PAYLOAD_TOO_LARGE", "$context.error.messageString"),
    apigw.ResponseType.UNAUTHORIZED: ("UNAUTHORIZED", "$context.error.messageString"),
    apigw.ResponseType.ACCESS_DENIED: ("FORBIDDEN", "$context.error.messageString"),
    apigw.ResponseType.THROTTLED: ("THROTTLED", "$context.error.messageString"),
    apigw.ResponseType.DEFAULT_4_XX: ("$context.error.responseType", "$context.error.messageString"),
    apigw.ResponseType.DEFAULT_5_XX: ("$context.error.responseType", "$context.error.messageString"),
}


class LivenessApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        allowed_origins: tuple[str, ...],
        throttle_rate_limit: int,
        throttle_burst_limit: int,
        log_retention: logs.RetentionDays,
        user_pool: cognito.IUserPool | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.allowed_origins = allowed_origins
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="KYC liveness API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,  # API Gateway needs an account-level role to write execution logs
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.DESTROY,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=throttle_rate_limit,
                throttling_burst_limit=throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # data traces would log request bodies, i.e. selfies
                metrics_enabled=True,
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=list(allowed_origins),
                allow_methods=list(CORS_ALLOW_METHODS),
                allow_headers=list(CORS_ALLOW_HEADERS),
                expose_headers=list(CORS_EXPOSE_HEADERS),
                allow_credentials=False,
                max_age=cdk.Duration.seconds(CORS_MAX_AGE_SECONDS),
            ),
        )
        self.validator = self.rest_api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        self.authorizer = (
            apigw.CognitoUserPoolsAuthorizer(self, "Authorizer", cognito_user_pools=[user_pool]) if user_pool else None
        )
        self.integration = apigw.LambdaIntegration(handler, proxy=True)
        self._add_gateway_responses()
        for route in ROUTES:
            self.add_route(route.resource, route.method, schema_name=route.schema)
        for path, allow in allowed_methods().items():
            self._refuse_other_methods(path, allow)

    def add_route(self, path: str, method: str, *, schema_name: str | None = None) -> apigw.Method:
        """A Lambda-proxy route behind the authorizer and, when it has a body, the JSON-schema validator."""
        resource = self.rest_api.root.resource_for_path(path)
        models = {"application/json": self._model(schema_name)} if schema_name else None
        return resource.add_method(
            method,
            self.integration,
            authorizer=self.authorizer,
            authorization_type=apigw.AuthorizationType.COGNITO if self.authorizer else apigw.AuthorizationType.NONE,
            request_validator=self.validator,
            request_models=models,
        )

    def _refuse_other_methods(self, path: str, allow: tuple[str, ...]) -> apigw.Method:
        """ANY on a resource with routes: API Gateway prefers the defined methods and the OPTIONS preflight, so ANY
        answers only the others, with 405 and Allow from a mock integration (no code runs, no data is read)."""
        headers = {**self._error_headers(), "Allow": f"'{', '.join(allow)}'"}
        body = json.dumps({"code": METHOD_NOT_ALLOWED_CODE, "message": METHOD_NOT_ALLOWED_MESSAGE})
        template = body[:-1] + ', "requestId": "$context.requestId"}'
        integration = apigw.MockIntegration(
            # Any body, of any type: with no selection pattern, this one integration response answers every request.
            request_templates={"application/json": '{"statusCode": 405}'},
            integration_responses=[
                apigw.IntegrationResponse(
                    status_code="405",
                    response_parameters={f"method.response.header.{name}": value for name, value in headers.items()},
                    response_templates={"application/json": template},
                )
            ],
        )
        return self.rest_api.root.resource_for_path(path).add_method(
            "ANY",
            integration,
            authorization_type=apigw.AuthorizationType.NONE,
            method_responses=[
                apigw.MethodResponse(
                    status_code="405",
                    response_parameters={f"method.response.header.{name}": True for name in headers},
                )
            ],
        )

    def _model(self, schema_name: str) -> apigw.IModel:
        model_id = "".join(part.capitalize() for part in schema_name.split("_")) + "Model"
        existing = self.rest_api.node.try_find_child(model_id)
        if existing is not None:
            return existing  # type: ignore[return-value]
        return self.rest_api.add_model(
            model_id, content_type="application/json", schema=to_api_gateway(load_schema(schema_name))
        )

    def _error_headers(self) -> dict[str, str]:
        # A gateway response cannot pick among several origins, so it names the primary (first) one;
        # "Vary: Origin" keeps caches from mixing them up.
        return {
            "Access-Control-Allow-Origin": f"'{self.allowed_origins[0]}'",
            "Vary": "'Origin'",
            "Access-Control-Expose-Headers": f"'{','.join(CORS_EXPOSE_HEADERS)}'",
        }

    def _add_gateway_responses(self) -> None:
        headers = self._error_headers()
        for response_type, (code, message) in _GATEWAY_ERRORS.items():
            code_json = f'"{code}"'
            template = f'{{"code": {code_json}, "message": {message}, "requestId": "$context.requestId"}}'
            self.rest_api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                response_headers=headers,
                templates={"application/json": template},
            )

    def suppress_preflight_findings(self) -> None:
        """Call after all routes exist: the CORS preflights and the 405 mocks are the only methods without the
        authorizer."""
        reasons = {"OPTIONS": _PREFLIGHT_REASON, "ANY": METHOD_NOT_ALLOWED_REASON}
        for method in self.rest_api.methods:
            if method.http_method in reasons:
                for rule_id in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                    acknowledge(method, rule_id, reasons[method.http_method])


_PREFLIGHT_REASON = (
    "CORS preflight (OPTIONS) is a mock integration that browsers send without credentials, so it cannot carry a "
    "Cognito token; every other method uses the Cognito user-pool authorizer."
)
# Shared by the cdk-nag acknowledgements above and checkov's skip list (cdk_app/checkov_skips.py).
METHOD_NOT_ALLOWED_REASON = (
    "ANY on a resource answers only the methods the resource does not define, with 405 and Allow from a mock "
    "integration: it runs no code and reads no data, so there is nothing to authorize."
)
