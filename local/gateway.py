"""What the deployed API Gateway does before the function runs: size limits, the caller's identity, request
body validation against each route's JSON schema, the CORS preflight, and its own error responses.

Everything here mirrors cdk_app/api.py; the differences are deliberate and listed in docs/local-mode.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import fastjsonschema
from liveness.errors import clip
from liveness.http import validator_for
from liveness.openapi import CallerHeader, ContractServer
from liveness.routes import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    METHOD_NOT_ALLOWED_CODE,
    METHOD_NOT_ALLOWED_MESSAGE,
    Route,
)

from .events import HttpReply

GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway REST: the largest payload it accepts
LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # a synchronous Lambda invocation: the whole event, body included

DEFAULT_USER = "local-dev-user"
USER_HEADER = "X-Local-User"
# What a Cognito "sub" could look like; anything else is refused like a bad token.
_USER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


@dataclass  # not frozen: raising sets attributes such as __traceback__ on the instance
class GatewayError(Exception):
    """An answer API Gateway gives itself, shaped by the stack's gateway responses: {code, message, requestId}."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def reply(self, request_id: str, cors: Cors) -> HttpReply:
        body = json.dumps({"code": self.code, "message": self.message, "requestId": request_id}).encode("utf-8")
        headers = [("Content-Type", "application/json"), *cors.gateway_response_headers(), *self.headers]
        return HttpReply(status=self.status, headers=headers, body=body)


def missing_authentication_token() -> GatewayError:
    # API Gateway's answer to a path the API does not define (DEFAULT_4XX in the stack).
    return GatewayError(403, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")


def method_not_allowed(allow: tuple[str, ...]) -> GatewayError:
    # The stack's ANY mock on a resource with routes (liveness.routes.allowed_methods): a method it does not define.
    return GatewayError(405, METHOD_NOT_ALLOWED_CODE, METHOD_NOT_ALLOWED_MESSAGE, (("Allow", ", ".join(allow)),))


def payload_too_large(size: int | None) -> GatewayError:
    if size is not None and size > GATEWAY_MAX_BODY_BYTES:
        return GatewayError(413, "PAYLOAD_TOO_LARGE", "Request Too Long")
    return GatewayError(
        413,
        "PAYLOAD_TOO_LARGE",
        f"The request exceeds the {LAMBDA_MAX_PAYLOAD_BYTES // (1024 * 1024)} MB payload limit of a synchronous Lambda invocation.",
    )


# The HTTP server's own refusals, before any route is matched (local mode only: in AWS, CloudFront and API
# Gateway answer these themselves).
_HTTP_ERRORS = {
    400: ("INVALID_REQUEST", "The HTTP request is malformed."),
    408: ("REQUEST_TIMEOUT", "The request was not received in time."),
    411: ("INVALID_REQUEST", "The request needs a Content-Length."),
    413: ("PAYLOAD_TOO_LARGE", "Request Too Long"),
    414: ("URI_TOO_LONG", "The request URI is too long."),
    431: ("HEADERS_TOO_LARGE", "The request headers are too large or too many."),
    501: ("NOT_IMPLEMENTED", "The HTTP method is not supported."),
    503: ("SERVER_BUSY", "The server has too many open connections; retry shortly."),
    505: ("HTTP_VERSION_NOT_SUPPORTED", "The HTTP version is not supported."),
}


def http_error(status: int) -> GatewayError:
    """An HTTP-level error as the API's JSON error: a stable code, a fixed message (never the request line)."""
    code, message = _HTTP_ERRORS.get(
        status,
        (
            "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST",
            "Internal error." if status >= 500 else "The HTTP request is malformed.",
        ),
    )
    return GatewayError(status, code, message)


def integration_failure() -> GatewayError:
    # What API Gateway answers when the function raises or returns a malformed proxy response.
    return GatewayError(502, "INTEGRATION_FAILURE", "Internal server error")


# ---------------------------------------------------------------------------------------------------------
# Identity: the Cognito authorizer, replaced by a development user picked per request.


# This server in its OpenAPI document: no authorizer, and the optional header that picks the caller (empty: the
# default user). The only differences from the deployed document (liveness/openapi.py: DEPLOYED).
LOCAL_CONTRACT_SERVER = ContractServer(
    url="/",
    description="This local server (no sign-in)",
    cognito=False,
    caller_header=CallerHeader(
        USER_HEADER,
        f"^({_USER_PATTERN.pattern})?$",
        f"Who the caller is (a Cognito sub in AWS); default {DEFAULT_USER}. Another form is 401 UNAUTHORIZED.",
    ),
)


def caller_sub(header_value: str | None) -> str:
    """The ``sub`` claim for this request: ``X-Local-User`` if given (so tests can act as two users), else
    the default development user."""
    if header_value is None or header_value == "":
        return DEFAULT_USER
    if not _USER_PATTERN.fullmatch(header_value):
        raise GatewayError(401, "UNAUTHORIZED", "Unauthorized")
    return header_value


# ---------------------------------------------------------------------------------------------------------
# Size


def check_declared_size(content_length: int | None) -> None:
    """Reject on the declared length alone, before reading the body: a body over Lambda's 6 MB payload can
    never fit in the event, and one over 10 MB never passes API Gateway."""
    if content_length is not None and content_length > LAMBDA_MAX_PAYLOAD_BYTES:
        raise payload_too_large(content_length)


def check_event_size(event: dict[str, Any]) -> None:
    """The event (headers, base64 expansion and all) must fit in the 6 MB invocation payload."""
    if len(json.dumps(event, separators=(",", ":")).encode("utf-8")) > LAMBDA_MAX_PAYLOAD_BYTES:
        raise payload_too_large(None)


# ---------------------------------------------------------------------------------------------------------
# Request validation: the route's model, as the stack's BodyValidator applies it.


def uses_json_model(content_type: str | None) -> bool:
    """API Gateway picks the model by Content-Type and assumes application/json when there is none; a body
    of another type has no model, so it reaches the function unvalidated (the function validates again)."""
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def validate_body(route: Route, content_type: str | None, body: bytes) -> None:
    """Raise the BAD_REQUEST_BODY answer (400 INVALID_REQUEST) if the body breaks the route's schema.

    Uses the function's own compiled validators (the same schema files the stack turns into models)."""
    if route.schema is None or not uses_json_model(content_type):
        return
    try:
        document = json.loads(body.decode("utf-8")) if body.strip() else {}
    # ValueError also covers numbers past Python's digit limit; RecursionError, arrays nested thousands deep.
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _invalid([f"Invalid JSON body: {_json_error(error)}"]) from None
    try:
        validator_for(route.schema)(document)
    except fastjsonschema.JsonSchemaValueException as error:
        raise _invalid([_validation_message(error)]) from None


def _invalid(messages: list[str]) -> GatewayError:
    # The stack's template: "Invalid request: $context.error.validationErrorString", a bracketed list.
    return GatewayError(400, "INVALID_REQUEST", f"Invalid request: [{', '.join(messages)}]")


def _json_error(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"  # a position, never the text itself
    if isinstance(error, UnicodeDecodeError):
        return "the body is not UTF-8"
    return "the document is nested too deeply or holds a number too long"


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def _json_type(value: Any) -> str:
    return next(name for kind, name in _JSON_TYPES if isinstance(value, kind))


def _validation_message(error: fastjsonschema.JsonSchemaValueException) -> str:
    """API Gateway's validator wording (json-schema-validator), plus where in the body, never the value itself
    (a value may be a selfie)."""
    rule, limit, value = error.rule, error.rule_definition, error.value
    where = (error.name or "data").replace("data", "", 1).replace(".", "/")
    if rule == "required":
        missing = [name for name in limit if not (isinstance(value, dict) and name in value)]
        text = f"object has missing required properties ({json.dumps(missing)})"
    elif rule == "additionalProperties":
        allowed = set((error.definition or {}).get("properties", {}))
        extra = sorted(name for name in value if name not in allowed) if isinstance(value, dict) else []
        # The names are the client's: each one, and how many, are bounded (API Gateway's own list is not).
        shown = [clip(name) for name in extra[:3]] + ([f"... {len(extra) - 3} more"] if len(extra) > 3 else [])
        text = f"object instance has properties which are not allowed by the schema: {json.dumps(shown)}"
    elif rule == "type":
        allowed = limit if isinstance(limit, list) else [limit]
        text = f"instance type ({_json_type(value)}) does not match any allowed primitive type (allowed: {json.dumps(allowed)})"
    elif rule == "minimum":
        text = f"numeric instance is lower than the required minimum (minimum: {limit}, found: {value})"
    elif rule == "maximum":
        text = f"numeric instance is greater than the required maximum (maximum: {limit}, found: {value})"
    elif rule == "minLength":
        text = f"string is too short (length: {len(value)}, required minimum: {limit})"
    elif rule == "maxLength":
        text = f"string is too long (length: {len(value)}, maximum allowed: {limit})"
    else:
        text = (error.message or "invalid").replace(error.name or "data", "instance", 1)
    return f"{text} (at {clip(where)})" if where else text


# ---------------------------------------------------------------------------------------------------------
# CORS


@dataclass(frozen=True)
class Cors:
    allowed_origins: tuple[str, ...]

    def preflight_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """The stack's preflight answer. An origin off the list gets no Allow-Origin at all (the deployed mock
        names the primary origin instead; a browser refuses both). Never Allow-Credentials."""
        headers = [
            ("Access-Control-Allow-Methods", ",".join(CORS_ALLOW_METHODS)),
            ("Access-Control-Allow-Headers", ",".join(CORS_ALLOW_HEADERS)),
            ("Access-Control-Max-Age", str(CORS_MAX_AGE_SECONDS)),
            ("Vary", "Origin"),
        ]
        if origin and origin in self.allowed_origins:
            headers.insert(0, ("Access-Control-Allow-Origin", origin))
        return headers

    def gateway_response_headers(self) -> list[tuple[str, str]]:
        """Like the stack's gateway responses: a gateway response cannot choose among origins, so it names
        the primary (first) one."""
        if not self.allowed_origins:
            return []
        return [
            ("Access-Control-Allow-Origin", self.allowed_origins[0]),
            ("Vary", "Origin"),
            ("Access-Control-Expose-Headers", ",".join(CORS_EXPOSE_HEADERS)),
        ]
