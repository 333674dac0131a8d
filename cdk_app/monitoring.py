"""Alarms an operator needs on day one: function errors, API 5xx, and expiry batches that could not be audited."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class LivenessMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Sequence[lambda_.IFunction],
        rest_api: apigw.RestApi,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms = [
            function.metric_errors().create_alarm(
                self,
                f"FunctionErrors{index}",
                threshold=1,
                evaluation_periods=1,
                alarm_description=f"{function.node.path} raised unhandled errors (bugs, not client mistakes).",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for index, function in enumerate(functions)
        ]
        self.alarms.append(
            rest_api.metric_server_error().create_alarm(
                self,
                "Api5xx",
                threshold=5,
                evaluation_periods=1,
                alarm_description="The API answered 5xx (including 503s while Rekognition throttles).",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        self.alarms.append(
            dead_letters.metric_approximate_number_of_messages_visible().create_alarm(
                self,
                "ExpiryFailures",
                threshold=1,
                evaluation_periods=1,
                alarm_description="Expired sessions could not be audited; replay the batches in the queue.",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
