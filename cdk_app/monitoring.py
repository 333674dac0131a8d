"""Alarms an operator needs on day one: function errors, API 5xx, and expired sessions that could not be audited."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from liveness.constants import METRICS_NAMESPACE


class LivenessMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Sequence[lambda_.IFunction],
        rest_api: apigw.RestApi,
        expiry_function: lambda_.IFunction,
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
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="ExpiryAuditFailures",
                dimensions_map={"service": "liveness"},
                statistic="Sum",
            ).create_alarm(
                self,
                "ExpiryAuditFailures",
                threshold=1,
                evaluation_periods=1,
                alarm_description="An expired session's audit record could not be written (it is retried, then "
                "kept in the failed-batches bucket for replay).",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
        self.alarms.append(
            expiry_function.metric("IteratorAge", statistic="Maximum").create_alarm(
                self,
                "ExpiryStreamLag",
                threshold=60 * 60 * 1000,  # an hour behind: the stream keeps records for 24 hours
                evaluation_periods=1,
                alarm_description="The expiry function is falling behind the sessions table's stream.",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
