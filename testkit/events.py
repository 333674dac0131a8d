"""What Lambda hands the handler: an API Gateway REST proxy event behind a Cognito authorizer, and a context."""

from __future__ import annotations

import json
import uuid
from typing import Any


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    origin: str | None = None,
    sub: str | None = "user-1",
    path_parameters: dict[str, str] | None = None,
    resource: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as Lambda receives it behind a Cognito authorizer."""
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    claims = {"sub": sub} if sub else None
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": text,
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": f"req-{uuid.uuid4()}",
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "authorizer": {"claims": claims} if claims else None,
            "identity": {"sourceIp": "203.0.113.10"},
        },
    }


class LambdaContext:
    function_name = "liveness"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:liveness"
    aws_request_id = "lambda-request-id"
