"""The API's OpenAPI 3 document, generated from the route table (routes.py), the request schemas (schemas/), the
error codes (errors.py) and the step and reason codes (challenges.py).

One generator for every reader: the local server serves it at ``/openapi.json``, ``make synth`` (app.py) writes
``cdk.out/openapi.json`` beside the template, and a test fails when it drifts from the routes. The response
shapes are written here, next to nothing else: tests compare them with real answers of the local server.
Pure data: no AWS or CDK imports.
"""

from __future__ import annotations

import copy
from typing import Any

from .challenges import ReasonCode, StepCode
from .errors import ErrorCode
from .routes import ROUTES, STAGE, Route
from .schemas import load_schema
from .sessions.model import FailureReason

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"

# Errors API Gateway (or, locally, the front that plays it) answers before the function runs, with the same
# {code, message, requestId} shape. code -> HTTP status.
GATEWAY_ERRORS: dict[str, int] = {
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "PAYLOAD_TOO_LARGE": 413,
    "THROTTLED": 429,
    "INTEGRATION_FAILURE": 502,
}

# Which error statuses each route can answer, besides those every route can (COMMON_STATUSES).
COMMON_STATUSES = (400, 401, 403, 413, 429, 500, 502, 503)
ROUTE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/detect"): (415, 422),
    ("POST", "/sessions"): (),
    ("POST", "/sessions/{id}/frames"): (404, 409, 415),
    ("POST", "/sessions/{id}/light"): (404, 409),
    ("POST", "/sessions/{id}/light/frames"): (404, 409, 415),
    ("GET", "/sessions/{id}"): (404,),
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/detect"): {
        "operationId": "detectFace",
        "summary": "Describe the one face in a frame (the KYC workshop's livedetector contract).",
        "status": 200,
        "response": "DetectResponse",
    },
    ("POST", "/sessions"): {
        "operationId": "createSession",
        "summary": "Start a liveness session: the server draws the steps.",
        "description": "Each user is held to attempt limits: 429 TOO_MANY_SESSIONS (too many open, or started in "
        "the last minute) or TOO_MANY_ATTEMPTS (locked after too many failed checks), with Retry-After in seconds.",
        "status": 201,
        "response": "SessionCreated",
    },
    ("POST", "/sessions/{id}/frames"): {
        "operationId": "submitFrame",
        "summary": "Judge one webcam frame against the session's current step.",
        "description": "A frame that misses the step is a normal 200 with verdict REJECTED, a reasonCode and a "
        "coaching message. Send one frame at a time; honour Retry-After on 429 and 503.",
        "status": 200,
        "response": "FrameAnswer",
    },
    ("POST", "/sessions/{id}/light"): {
        "operationId": "startLightChallenge",
        "summary": "Start the light challenge of the FOLLOW_LIGHT step: the server draws and reveals the colours.",
        "description": "Only while the current step is FOLLOW_LIGHT and no challenge is running (else 409 CONFLICT). "
        "Show each colour full-screen for its durationMs, in order, and take one frame of frameWidth x frameHeight "
        "at each of captureOffsetsMs within each colour (>= 0: from the colour's start; < 0: from its end). Send "
        "them as one batch before submitBy. The step's timer restarts now.",
        "status": 201,
        "response": "LightChallenge",
    },
    ("POST", "/sessions/{id}/light/frames"): {
        "operationId": "submitLightFrames",
        "summary": "Judge the light challenge's frames as one batch: did the face reflect the drawn colours?",
        "description": "Answers like a frame (stepCode FOLLOW_LIGHT; measured.light holds the measured response and "
        "its outcome). REJECTED uses one of maxAttempts: start a new challenge; the last one fails the session "
        "(LIGHT_NOT_FOLLOWED or LIGHT_UNVERIFIED). A batch after submitBy is 409 CONFLICT and uses an attempt; a "
        "batch that does not hold one frame per colour and offset, or names another challenge, is 400.",
        "status": 200,
        "response": "FrameAnswer",
    },
    ("GET", "/sessions/{id}"): {
        "operationId": "getSession",
        "summary": "The session's status, each step's outcome, the verdict and, when PASSED, the reference face.",
        "status": 200,
        "response": "SessionState",
    },
}

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_NULL_STR = {"type": "string", "nullable": True}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    schema["required"] = list(properties) if required is None else required
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True} if "$ref" not in schema else {"allOf": [schema], "nullable": True}


def error_codes() -> dict[str, int]:
    """Every code an error body can carry, with its status: the function's and the gateway's."""
    codes = {code.value: int(code.status) for code in ErrorCode}  # type: ignore[attr-defined]
    for code, status in GATEWAY_ERRORS.items():
        codes.setdefault(code, status)
    return dict(sorted(codes.items()))


def _response_schemas() -> dict[str, Any]:
    step = _step_schema()
    return {
        **_code_schemas(),
        "Step": step,
        "SessionVerdict": _session_verdict_schema(),
        "SessionCreated": _session_created_schema(),
        "FrameAnswer": _frame_answer_schema(),
        "LightChallenge": _light_challenge_schema(),
        "SessionState": _session_state_schema(step),
        "DetectResponse": _detect_response_schema(),
        **_error_schemas(),
    }


def _code_schemas() -> dict[str, Any]:
    """The enumerations: session statuses, step codes, reason codes, failure reasons."""
    return {
        "SessionStatus": {"type": "string", "enum": ["IN_PROGRESS", "PASSED", "FAILED", "EXPIRED"]},
        "StepCode": {
            "type": "string",
            "enum": [code.value for code in StepCode],
            "description": "Clients should show any step's instruction, including codes added later.",
        },
        "ReasonCode": {"type": "string", "enum": [code.value for code in ReasonCode]},
        "FailureReason": {
            "type": "string",
            "enum": [reason.value for reason in FailureReason],
        },
    }


def _step_schema() -> dict[str, Any]:
    return _obj({"index": _INT, "code": _ref("StepCode"), "instruction": _STR})


def _session_verdict_schema() -> dict[str, Any]:
    return _obj(
        {
            "status": _ref("SessionStatus"),
            "livenessPassed": _BOOL,
            "samePersonCheck": _STR,
            "samePersonVerified": _BOOL,
        }
    )


def _session_created_schema() -> dict[str, Any]:
    """POST /sessions."""
    return _obj(
        {
            "sessionId": _STR,
            "status": _ref("SessionStatus"),
            "steps": {"type": "array", "items": _ref("Step")},
            "currentStep": _INT,
            "expiresAt": {"type": "string", "format": "date-time"},
            "stepTimeLimitSeconds": _NUM,
            "maxFrames": _INT,
            "stepMaxFrames": {**_INT, "description": "Frames allowed per step, when the deployment sets one."},
            "mirrored": _BOOL,
            "lightChallenge": {
                "type": "string",
                "enum": ["enforce", "shadow", "off"],
                "description": "The light step's mode (FOLLOW_LIGHT follows the neutral start unless off).",
            },
            "frameConstraints": _obj(
                {
                    "formats": {"type": "array", "items": _STR},
                    "maxBytes": _INT,
                    "recommendedWidth": _INT,
                    "recommendedHeight": _INT,
                }
            ),
            "requestId": _STR,
        },
        required=[
            "sessionId",
            "status",
            "steps",
            "currentStep",
            "expiresAt",
            "stepTimeLimitSeconds",
            "maxFrames",
            "mirrored",
            "frameConstraints",
            "requestId",
        ],
    )


def _measured_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "In the user's point of view: yaw > 0 = turned to their own left; pitch > 0 = chin up. "
        "Once the neutral start set the baseline, `movement` is the pose relative to it, which the rules judge.",
        "properties": {
            "movement": {
                "type": "object",
                "properties": {"yaw": _NUM, "pitch": _NUM, "roll": _NUM},
                "description": "Degrees moved from the baseline.",
            },
            "light": {
                "type": "object",
                "description": "The light step only: the measured response (rho, alpha per region, flatness, "
                "stillness...) and its outcome (a LightOutcome, or the gate's reason code when no face could be "
                "used). Recorded in every mode; docs/sessions.md explains each value.",
                "properties": {"outcome": _STR, "mode": _STR},
                "additionalProperties": True,
            },
        },
        "additionalProperties": {"type": "number", "nullable": True},
    }


def _frame_answer_schema() -> dict[str, Any]:
    """POST /sessions/{id}/frames."""
    return _obj(
        {
            "sessionId": _STR,
            "frameId": _STR,
            "verdict": {"type": "string", "enum": ["ACCEPTED", "REJECTED"]},
            "reasonCode": _nullable(_ref("ReasonCode")),
            "message": _NULL_STR,
            "stepIndex": _INT,
            "stepCode": _ref("StepCode"),
            "measured": _measured_schema(),
            "similarity": {"type": "number", "nullable": True},
            "link": {
                **_nullable(_obj({"frameId": _STR, "hops": _INT, "gapDegrees": _NUM})),
                "description": "The verified frame of the step this one was compared with, instead of the reference "
                "face (the identity chain of the embedded analyzer): links back to a frame compared with the "
                "reference directly, and the pose gap in degrees.",
            },
            "status": _ref("SessionStatus"),
            "currentStep": _INT,
            "failureReason": _nullable(_ref("FailureReason")),
            "samePersonCheck": _STR,
            "baseline": {
                **_nullable(_obj({"yaw": _NUM, "pitch": _NUM, "roll": _NUM})),
                "description": "The pose measured at the neutral start, when the server records one.",
            },
            "sessionVerdict": _nullable(_ref("SessionVerdict")),
            "requestId": _STR,
        },
        required=[
            "sessionId",
            "frameId",
            "verdict",
            "reasonCode",
            "message",
            "stepIndex",
            "stepCode",
            "measured",
            "similarity",
            "status",
            "currentStep",
            "failureReason",
            "samePersonCheck",
            "sessionVerdict",
            "requestId",
        ],
    )


def _light_challenge_schema() -> dict[str, Any]:
    """POST /sessions/{id}/light."""
    colour = _obj(
        {
            "color": {"type": "string", "pattern": "^#[0-9a-f]{6}$"},
            "durationMs": {**_INT, "description": "How long to show it (450-750 ms)."},
        },
        required=["color", "durationMs"],
    )
    return _obj(
        {
            "sessionId": _STR,
            "challengeId": _STR,
            "colors": {"type": "array", "items": colour, "description": "In order; the first is dark."},
            "captureOffsetsMs": {
                "type": "array",
                "items": _INT,
                "description": "When to take a frame within each colour: >= 0 from its start, < 0 from its end.",
            },
            "frameWidth": _INT,
            "frameHeight": _INT,
            "submitBy": {"type": "string", "format": "date-time"},
            "attempt": {**_INT, "description": "This challenge's number, from 1."},
            "maxAttempts": {**_INT, "description": "Challenges that may fail before the session does."},
            "requestId": _STR,
        },
        required=[
            "sessionId",
            "challengeId",
            "colors",
            "captureOffsetsMs",
            "frameWidth",
            "frameHeight",
            "submitBy",
            "attempt",
            "maxAttempts",
            "requestId",
        ],
    )


def _session_state_schema(step: dict[str, Any]) -> dict[str, Any]:
    """GET /sessions/{id}."""
    return _obj(
        {
            "sessionId": _STR,
            "status": _ref("SessionStatus"),
            "failureReason": _nullable(_ref("FailureReason")),
            "samePersonCheck": _STR,
            "verdict": _ref("SessionVerdict"),
            "analyzer": _STR,
            "currentStep": _INT,
            "steps": {"type": "array", "items": {"type": "object", "properties": step["properties"]}},
            "createdAt": {"type": "string", "format": "date-time"},
            "expiresAt": {"type": "string", "format": "date-time"},
            "closedAt": {"type": "string", "format": "date-time", "nullable": True},
            "framesReceived": _INT,
            "maxFrames": _INT,
            "referenceFace": _nullable(
                _obj({"key": _STR, "contentType": _STR, "base64": {"type": "string", "format": "byte"}})
            ),
            "requestId": _STR,
        }
    )


def _detect_response_schema() -> dict[str, Any]:
    """POST /detect, in the workshop's shape plus additions."""
    rekognition_bool = _nullable(_obj({"Value": _BOOL, "Confidence": _NUM}))
    return _obj(
        {
            "gender": _nullable(_obj({"Value": _STR, "Confidence": _NUM})),
            "smile": rekognition_bool,
            "eyesOpen": rekognition_bool,
            "agerange": _nullable(_obj({"low": _INT, "high": _INT})),
            "pose": _nullable(_obj({"roll": _NUM, "yaw": _NUM, "pitch": _NUM})),
            "mouthOpen": rekognition_bool,
            "encoded_face_image": {"type": "string", "format": "byte"},
            "boundingBox": _obj({"Width": _NUM, "Height": _NUM, "Left": _NUM, "Top": _NUM}),
            "confidence": _NUM,
            "quality": _nullable(_obj({"Brightness": _NUM, "Sharpness": _NUM})),
            "faceCount": _INT,
            "faceImage": _obj({"width": _INT, "height": _INT}),
            "image": _obj({"width": _INT, "height": _INT}),
            "archive": {"type": "object"},
            "requestId": _STR,
        }
    )


def _error_schemas() -> dict[str, Any]:
    return {
        "ErrorCode": {"type": "string", "enum": list(error_codes())},
        "Error": _obj(
            {"code": _ref("ErrorCode"), "message": _STR, "requestId": _STR},
            description="Every error, from the function or from API Gateway, has this shape.",
        ),
    }


def _request_schema(name: str) -> dict[str, Any]:
    """A draft-04 request schema as an OpenAPI 3.0 schema object (the two agree on everything these use)."""
    schema = copy.deepcopy(load_schema(name))
    schema.pop("$schema", None)
    return schema


def _error_response(status: int) -> dict[str, Any]:
    codes = [code for code, code_status in error_codes().items() if code_status == status]
    response: dict[str, Any] = {
        "description": ", ".join(codes) if codes else "error",
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if status in (409, 429, 503):
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": _INT}}
    return response


def _operation(route: Route, *, secured: bool) -> dict[str, Any]:
    key = (route.method, route.resource)
    spec = OPERATIONS[key]
    operation: dict[str, Any] = {
        "operationId": spec["operationId"],
        "summary": spec["summary"],
        "responses": {
            str(spec["status"]): {
                "description": "OK" if spec["status"] == 200 else "Created",
                "content": {"application/json": {"schema": _ref(spec["response"])}},
            },
            **{
                str(status): _error_response(status)
                for status in sorted(set(COMMON_STATUSES) | set(ROUTE_STATUSES[key]))
            },
        },
    }
    if "description" in spec:
        operation["description"] = spec["description"]
    if route.path_parameters:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": _STR} for name in route.path_parameters
        ]
    if route.schema is not None:
        title = load_schema(route.schema).get("title", route.schema)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(title)}},
        }
    if secured:
        operation["security"] = [{"cognito": []}]
    return operation


DEPLOYED_SERVER = {
    "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/" + STAGE,
    "description": "The stack's ApiUrl output",
    "variables": {"restApiId": {"default": "abc123"}, "region": {"default": "eu-west-1"}},
}


def openapi_document(server: dict[str, Any] | None = None, *, secured: bool = True) -> dict[str, Any]:
    """The whole document. ``server``: where the API is (default: the deployed stage URL, with variables)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.resource, {})[route.method.lower()] = _operation(route, secured=secured)
    schemas = _response_schemas()
    for route in ROUTES:
        if route.schema is not None:
            schemas[load_schema(route.schema).get("title", route.schema)] = _request_schema(route.schema)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "KYC liveness API",
            "version": API_VERSION,
            "description": "Server-side liveness sessions and single-frame face analysis. Every error has the "
            f"shape of the Error schema. Deployed under the stage /{STAGE}; locally at the server's root.",
        },
        "servers": [server or DEPLOYED_SERVER],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "cognito": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The Cognito ID token, as is (no 'Bearer' prefix). Not used in local mode.",
                }
            },
        },
    }
