"""Who the caller is: the Cognito sub, or, only in the demo deployment without an authorizer, a shared identity."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from liveness.errors import ErrorCode, LivenessError
from liveness.http import caller_id_of

from testkit.events import api_event


def test_the_verified_sub_is_the_caller() -> None:
    event = APIGatewayProxyEvent(api_event("GET", "/sessions/x", sub="alice"))
    assert caller_id_of(event) == "alice"
    assert caller_id_of(event, anonymous_caller="demo-anonymous") == "alice"  # a real identity always wins


def test_no_identity_is_401_unless_the_deployment_is_a_demo() -> None:
    event = APIGatewayProxyEvent(api_event("GET", "/sessions/x", sub=None))
    with pytest.raises(LivenessError) as raised:
        caller_id_of(event)
    assert raised.value.code is ErrorCode.UNAUTHORIZED and raised.value.status == 401
    assert caller_id_of(event, anonymous_caller="demo-anonymous") == "demo-anonymous"
