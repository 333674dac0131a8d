"""Alarms an operator needs on day one: function errors and API 5xx."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct


class LivenessMonitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, function: lambda_.IFunction, rest_api: apigw.RestApi
    ) -> None:
        super().__init__(scope, construct_id)
        self.function_errors = function.metric_errors(period=None).create_alarm(
            self,
            "FunctionErrors",
            threshold=1,
            evaluation_periods=1,
            alarm_description="The liveness function raised unhandled errors (bugs, not client mistakes).",
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.server_errors = rest_api.metric_server_error().create_alarm(
            self,
            "Api5xx",
            threshold=5,
            evaluation_periods=1,
            alarm_description="The API answered 5xx (including 503s while Rekognition throttles).",
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
