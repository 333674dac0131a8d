"""Request helpers shared by every route: request id, caller identity, validated JSON bodies, error responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from .errors import ErrorCode, LivenessError, clip
from .schemas import load_schema


def request_id_of(event: APIGatewayProxyEvent, lambda_context: Any = None) -> str:
    """API Gateway's request id (what the client and the access log see), else the Lambda one."""
    return event.request_context.request_id or getattr(lambda_context, "aws_request_id", "") or "unknown"


def caller_id_of(event: APIGatewayProxyEvent, anonymous_caller: str = "") -> str:
    """The Cognito ``sub`` the authorizer verified; sessions belong to it.

    ``anonymous_caller`` is the shared identity of a demo deployment without an authorizer; then anyone who
    knows a session's (unguessable) id can use it."""
    claims = (event.request_context.authorizer.claims or {}) if event.request_context.authorizer else {}
    subject = (claims.get("sub") if isinstance(claims, dict) else None) or anonymous_caller
    if not subject:
        raise LivenessError(ErrorCode.UNAUTHORIZED, "The request carries no verified caller identity.")
    return str(subject)


def json_body_of(event: APIGatewayProxyEvent, schema_name: str) -> dict[str, Any]:
    """Parse and validate the body against the same JSON schema API Gateway enforces in AWS."""
    try:
        body = json.loads(event.decoded_body or "")
    # ValueError covers JSONDecodeError and integers longer than Python's digit limit; RecursionError, nesting
    # thousands deep. API Gateway's model does not catch these when the client sends another Content-Type.
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise LivenessError(ErrorCode.INVALID_JSON, "The request body must be a JSON object.") from None
    try:
        validator_for(schema_name)(body)
    except fastjsonschema.JsonSchemaValueException as error:
        raise LivenessError(ErrorCode.INVALID_REQUEST, _schema_message(error)) from None
    return body


@cache
def validator_for(schema_name: str) -> Callable[[Any], Any]:
    """Compiled once per cold start. fastjsonschema is the engine of Powertools' validation utility, whose
    ``validate()`` recompiles the schema on every call (about 1 ms a request)."""
    return fastjsonschema.compile(load_schema(schema_name))


def _schema_message(error: fastjsonschema.JsonSchemaValueException) -> str:
    # fastjsonschema names the field and the rule ("data.width must be integer"), never the value; but an
    # unknown property is named by the client ("must not contain {'<key>'} properties"), so it is bounded.
    if error.rule == "additionalProperties" and isinstance(error.value, dict):
        allowed = set((error.definition or {}).get("properties", {}))
        extra = [name for name in error.value if name not in allowed]
        where = (error.name or "data").replace("data", "body", 1)
        named = ", ".join(repr(clip(str(name))) for name in extra[:3]) + (
            f" and {len(extra) - 3} more" if len(extra) > 3 else ""
        )
        return f"Invalid request: {where} must not contain the properties {named}."
    detail = (error.message or "invalid request").replace("data.", "", 1).replace("data ", "body ", 1)
    return f"Invalid request: {clip(detail, 200)}."


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body), headers=headers or {}
    )
