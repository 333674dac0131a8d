"""The API's OpenAPI 3 document, generated from the route table (routes.py), the request schemas (schemas/), the
error codes (errors.py) and the step and reason codes (challenges.py).

One generator for every server: the local server serves its document at ``/openapi.json``, ``make synth`` (app.py)
writes the deployed one to ``cdk.out/openapi.json``. The two differ only by their ``ContractServer`` (where the
server is, and how it knows the caller); the limits come from the deployment's settings. The response shapes are
written here, next to nothing else: tests compare them with real answers, and Schemathesis runs the whole
document against the local server (tests/contract). Pure data: no AWS or CDK imports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .challenges import MAX_STEPS, ReasonCode, StepCode, max_steps
from .errors import ErrorCode
from .images.limits import MIN_SIDE_PX, ImageLimits
from .light.sequence import CAPTURE_OFFSETS_MS, SEQUENCE_LENGTH
from .limits import MAX_FRAMES_CAP
from .routes import METHOD_NOT_ALLOWED_CODE, ROUTES, STAGE, Route
from .schemas import load_schema
from .sessions.model import FailureReason
from .settings import Settings

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"

# Errors API Gateway (or, locally, the front that plays it) answers before the function runs, with the same
# {code, message, requestId} shape. code -> HTTP status.
GATEWAY_ERRORS: dict[str, int] = {
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    METHOD_NOT_ALLOWED_CODE: 405,  # no operation lists it: it answers the methods the document does not define
    "PAYLOAD_TOO_LARGE": 413,
    "THROTTLED": 429,
    "INTEGRATION_FAILURE": 502,
}

# Which error statuses each route can answer, besides those every route can (COMMON_STATUSES).
COMMON_STATUSES = (400, 401, 403, 413, 429, 500, 502, 503)
ROUTE_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/detect"): (415, 422),
    ("POST", "/sessions"): (409,),
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


def _response_schemas(settings: Settings) -> dict[str, Any]:
    step = _step_schema()
    return {
        **_code_schemas(),
        "Step": step,
        "SessionVerdict": _session_verdict_schema(),
        "SessionCreated": _session_created_schema(settings),
        "FrameAnswer": _frame_answer_schema(),
        "LightChallenge": _light_challenge_schema(),
        "SessionState": _session_state_schema(step, settings),
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


def _frame_budget(settings: Settings) -> dict[str, Any]:
    """The session's frame budget: this deployment's SESSION_MAX_FRAMES; a session keeps the one it started with."""
    limit = settings.session_limits.max_frames
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_FRAMES_CAP,
        "description": f"Frames a session may send, accepted and rejected alike (this deployment: {limit}).",
    }


def _session_created_schema(settings: Settings) -> dict[str, Any]:
    """POST /sessions."""
    limits = settings.session_limits
    return _obj(
        {
            "sessionId": _STR,
            "status": _ref("SessionStatus"),
            "steps": {"type": "array", "items": _ref("Step")},
            "currentStep": _INT,
            "expiresAt": {"type": "string", "format": "date-time"},
            "stepTimeLimitSeconds": {
                **_NUM,
                "minimum": 0,
                "description": f"Time for each step (this deployment: {limits.step_time_limit_seconds} s).",
            },
            "maxFrames": _frame_budget(settings),
            "stepMaxFrames": {
                **_INT,
                "minimum": 1,
                "description": f"Frames allowed per step (this deployment: {limits.step_max_frames}).",
            },
            "mirrored": _BOOL,
            "lightChallenge": {
                "type": "string",
                "enum": ["enforce", "shadow", "off"],
                "description": "The light step's mode (FOLLOW_LIGHT follows the neutral start unless off).",
            },
            "frameConstraints": _obj(
                {
                    "formats": {"type": "array", "items": _STR},
                    "maxBytes": {
                        **_INT,
                        "minimum": 1,
                        "description": f"The largest frame, decoded (this deployment: {settings.max_upload_bytes}).",
                    },
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
            "judgedBy": {
                **_STR,
                "description": "The analyzer whose measurement decided: `local-mesh` for a frame the pre-screen "
                "refused on the Rekognition path (no Rekognition call), otherwise the session's analyzer.",
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
            "judgedBy",
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


def _session_state_schema(step: dict[str, Any], settings: Settings) -> dict[str, Any]:
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
            "framesReceived": {**_INT, "minimum": 0, "maximum": MAX_FRAMES_CAP},
            "maxFrames": _frame_budget(settings),
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


# What the intake (images/intake.py) accepts as an image field: a PNG or JPEG data URL, or plain base64, whose
# payload is canonical base64 of at least one byte (the intake also tolerates line wrapping; the contract does not
# promise it). The data URL's prefix is case-insensitive for the intake; the contract writes it in lower case.
DATA_URL_PREFIXES = ("data:image/png;base64,", "data:image/jpeg;base64,")
IMAGE_PATTERN = (
    r"^(data:image/(png|jpeg);base64,)?(?:[A-Za-z0-9+/]{4})*"
    r"(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"
)
# store.is_session_id: a canonical (lower-case, hyphenated) UUID.
SESSION_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def image_field_max_length(limits: ImageLimits) -> int:
    """The longest image field the intake takes: the longest prefix, then the base64 of the largest upload."""
    return max(map(len, DATA_URL_PREFIXES)) + 4 * -(-limits.max_upload_bytes // 3)


def _image_field(schema: dict[str, Any], limits: ImageLimits) -> dict[str, Any]:
    megabytes = limits.max_upload_bytes / (1024 * 1024)
    return {
        **schema,
        "pattern": IMAGE_PATTERN,
        "minLength": 4,
        "maxLength": image_field_max_length(limits),
        "description": f"{schema.get('description', '')} At most {megabytes:g} MB once decoded (413 beyond); "
        f"{MIN_SIDE_PX}x{MIN_SIDE_PX} px to {limits.max_pixels:,} pixels. A string of this form that is not a "
        "readable PNG or JPEG is refused with 400 INVALID_IMAGE or 415 UNSUPPORTED_MEDIA_TYPE.".strip(),
    }


def _session_create_limits(schema: dict[str, Any], settings: Settings) -> None:
    """The deployment's STEP_COUNT is the least a client may ask; without expressions fewer steps exist."""
    least, without_expressions = settings.session_limits.step_count, max_steps(True)
    steps = schema["properties"]["steps"]
    steps.update(minimum=least, maximum=MAX_STEPS)
    steps["description"] = (
        f"How many steps after the neutral start: {least} (this deployment's STEP_COUNT, the default and minimum) "
        f"to {MAX_STEPS}, or to {without_expressions} with excludeExpressions."
    )
    if least > without_expressions:  # no session without expressions can have enough steps
        schema["properties"]["excludeExpressions"]["enum"] = [False]
    else:
        schema["not"] = {
            "description": f"excludeExpressions with more than {without_expressions} steps",
            "required": ["excludeExpressions", "steps"],
            "properties": {"excludeExpressions": {"enum": [True]}, "steps": {"minimum": without_expressions + 1}},
        }


def _light_frames_limits(schema: dict[str, Any], settings: Settings) -> None:
    """One frame per colour and capture offset of the drawn sequence (light/sequence.py)."""
    frames = schema["properties"]["frames"]
    count = SEQUENCE_LENGTH * len(CAPTURE_OFFSETS_MS)
    frames.update(minItems=count, maxItems=count)
    item = frames["items"]["properties"]
    item["image"] = _image_field(item["image"], _image_limits(settings))
    item["colorIndex"]["maximum"] = SEQUENCE_LENGTH - 1
    item["offsetMs"]["enum"] = list(CAPTURE_OFFSETS_MS)


def _image_limits(settings: Settings) -> ImageLimits:
    return ImageLimits(max_upload_bytes=settings.max_upload_bytes)  # as Dependencies.image_limits


def _request_schema(name: str, settings: Settings) -> dict[str, Any]:
    """A draft-04 request schema as an OpenAPI 3.0 schema object (the two agree on everything these use), with the
    limits the function checks beyond the file (the gateway's model) written in from the deployment's settings."""
    schema = copy.deepcopy(load_schema(name))
    schema.pop("$schema", None)
    properties = schema["properties"]
    if name == "detect_request":
        properties["image_bytes"] = _image_field(properties["image_bytes"], _image_limits(settings))
    elif name == "session_frame":
        properties["image"] = _image_field(properties["image"], _image_limits(settings))
    elif name == "session_create":
        _session_create_limits(schema, settings)
    elif name == "light_frames":
        _light_frames_limits(schema, settings)
    return schema


def _error_response(status: int) -> dict[str, Any]:
    codes = [code for code, code_status in error_codes().items() if code_status == status]
    # The codes this status carries, so a client (and Schemathesis) can tell a code that does not match its status.
    schema = {"allOf": [_ref("Error"), {"properties": {"code": {"enum": codes}}}]} if codes else _ref("Error")
    response: dict[str, Any] = {
        "description": ", ".join(codes) if codes else "error",
        "content": {"application/json": {"schema": schema}},
    }
    if status in (409, 429, 503):
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": _INT}}
    return response


@dataclass(frozen=True)
class CallerHeader:
    """A request header that names the caller, where no authorizer does (local mode)."""

    name: str
    pattern: str
    description: str


@dataclass(frozen=True)
class ContractServer:
    """Where a server is and how it knows its caller: everything by which two servers' documents differ."""

    url: str
    description: str
    cognito: bool  # the Cognito authorizer checks the Authorization header
    caller_header: CallerHeader | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"url": self.url, "description": self.description}
        return {**entry, "variables": self.variables} if self.variables else entry


DEPLOYED = ContractServer(
    url="https://{restApiId}.execute-api.{region}.amazonaws.com/" + STAGE,
    description="The stack's ApiUrl output",
    cognito=True,
    variables={"restApiId": {"default": "abc123"}, "region": {"default": "eu-west-1"}},
)
COGNITO_SCHEME = {
    "cognito": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The Cognito ID token, as is (no 'Bearer' prefix).",
    }
}

# After createSession, the session's id feeds every session operation (OpenAPI links; Schemathesis follows them).
_SESSION_LINKS = ("getSession", "submitFrame", "startLightChallenge", "submitLightFrames")


def _links(operation_id: str) -> dict[str, Any]:
    if operation_id != "createSession":
        return {}
    return {
        target: {"operationId": target, "parameters": {"id": "$response.body#/sessionId"}} for target in _SESSION_LINKS
    }


def _success(spec: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": "OK" if spec["status"] == 200 else "Created",
        "content": {"application/json": {"schema": _ref(spec["response"])}},
    }
    links = _links(spec["operationId"])
    return {**response, "links": links} if links else response


def _parameters(route: Route, server: ContractServer) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": SESSION_ID_PATTERN},
            "description": "The sessionId createSession answered (another form is 400 INVALID_REQUEST).",
        }
        for name in route.path_parameters
    ]
    if server.caller_header is not None:
        header = server.caller_header
        parameters.append(
            {
                "name": header.name,
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": header.pattern},
                "description": header.description,
            }
        )
    return parameters


def _operation(route: Route, server: ContractServer) -> dict[str, Any]:
    key = (route.method, route.resource)
    spec = OPERATIONS[key]
    operation: dict[str, Any] = {
        "operationId": spec["operationId"],
        "summary": spec["summary"],
        "responses": {
            str(spec["status"]): _success(spec),
            **{
                str(status): _error_response(status)
                for status in sorted(set(COMMON_STATUSES) | set(ROUTE_STATUSES[key]))
            },
        },
    }
    if "description" in spec:
        operation["description"] = spec["description"]
    if parameters := _parameters(route, server):
        operation["parameters"] = parameters
    if route.schema is not None:
        title = load_schema(route.schema).get("title", route.schema)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(title)}},
        }
    if server.cognito:
        operation["security"] = [{"cognito": []}]
    return operation


def openapi_document(server: ContractServer = DEPLOYED, settings: Settings | None = None) -> dict[str, Any]:
    """The whole document for ``server`` (default: the deployed stage), with the limits of ``settings``
    (default: the runtime's defaults)."""
    settings = settings or Settings()
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.resource, {})[route.method.lower()] = _operation(route, server)
    schemas = _response_schemas(settings)
    for route in ROUTES:
        if route.schema is not None:
            schemas[load_schema(route.schema).get("title", route.schema)] = _request_schema(route.schema, settings)
    components: dict[str, Any] = {"schemas": dict(sorted(schemas.items()))}
    if server.cognito:
        components["securitySchemes"] = COGNITO_SCHEME
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "KYC liveness API",
            "version": API_VERSION,
            "description": "Server-side liveness sessions and single-frame face analysis. Every error has the "
            f"shape of the Error schema. Deployed under the stage /{STAGE}; locally at the server's root.",
        },
        "servers": [server.entry()],
        "paths": dict(sorted(paths.items())),
        "components": components,
    }
