"""mkdocs hook: the tables that mirror code are written from the code at build time, so they cannot drift.

A page asks for a table with a marker such as ``<!-- generated:reason-codes -->`` on its own line; an unknown
marker, or a value with no meaning to show, fails the build.
"""

from __future__ import annotations

import inspect
import io
import re
import tokenize
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"^<!-- generated:([a-z-]+) -->$", re.MULTILINE)

# Meanings the code does not carry as a field comment (the rest come from the comments beside the fields).
FIELD_MEANINGS = {
    "step_count": "drawn steps when the request does not say (2-5), after the neutral start",
    "step_time_limit_seconds": "time per step; its timer starts with its first frame",
    "session_ttl_seconds": "session lifetime (`expiresAt`)",
}
SETTINGS_MEANINGS = {
    "ANALYZER": "`rekognition` (Amazon Rekognition) or `local` (the embedded analyzer)",
    "STORAGE": "`aws` (S3 and DynamoDB) or `file` (`DATA_DIR`, local mode)",
    "ARCHIVE_BUCKET": "the evidence bucket (AWS storage)",
    "SESSIONS_TABLE": "the DynamoDB sessions table (AWS storage)",
    "DATA_DIR": "where file storage keeps `archive/` and `sessions/`",
    "ALLOWED_ORIGINS": "comma-separated CORS allow-list of exact origins",
    "MAX_UPLOAD_BYTES": "the largest request body the function accepts",
    "MAX_IMAGE_PIXELS": "the most pixels an image may declare (a camera frame: 4K UHD is 8.3 MP); it also sets the "
    "decoding budget, 9 bytes a pixel ([Image intake](api.md#image-intake-what-is-refused-before-decoding))",
    "LIGHT_CHALLENGE": "the light step (`FOLLOW_LIGHT`): `enforce` (it must pass), `shadow` (measured and recorded, "
    "never decides) or `off` (no step); CDK context `liveness:lightChallenge`",
    "PRESCREEN": "`on` (the default) or `off`: on the Rekognition path, the embedded analyzer refuses the session "
    "frames that clearly cannot meet their step, with no Rekognition call; CDK context `liveness:prescreen` "
    "([The pre-screen](analyzers.md#the-pre-screen))",
    "ARCHIVE_SCREENED": "`off` (the default) or `on`: whether a frame the pre-screen refuses is archived as an image "
    "too; its record (digest, measurement, reason) is always kept; CDK context `liveness:archiveScreened` "
    "([What the archive keeps](analyzers.md#what-the-archive-keeps-of-a-refused-frame))",
    "ANONYMOUS_CALLER": "set only by the demo-only deployment without an authorizer: the identity every caller shares",
}
FAILURE_MEANINGS = {
    "SESSION_EXPIRED": "`expiresAt` passed (status `EXPIRED`)",
    "STEP_TIMEOUT": "the current step ran past `STEP_TIME_LIMIT_SECONDS`",
    "ATTEMPT_LIMIT": "the session's or the step's frame budget was used up",
    "FACE_MISMATCH": "a frame near the baseline scored below `MIN_SIMILARITY` against the reference face",
    "SAME_PERSON_UNVERIFIED": "`MAX_NOT_COMPARABLE` frames met their step but could not be compared",
    "LIGHT_NOT_FOLLOWED": "`LIGHT_MAX_ATTEMPTS` light challenges did not pass, and at least one response did not "
    "follow the colours (a recording, an animated photo, a print or a screen)",
    "LIGHT_UNVERIFIED": "`LIGHT_MAX_ATTEMPTS` light challenges did not pass and none could be judged (too bright, "
    "the face moved or was not seen, or the batch came after `submitBy`)",
}
ERROR_MEANINGS = {
    "INVALID_REQUEST": "The body is not JSON or breaks the route's JSON schema (missing or mistyped field), or an id "
    "has characters no id can have. In AWS, API Gateway answers this itself for `application/json` bodies, with "
    "the same shape.",
    "INVALID_JSON": "The body is not a JSON document, sent with another `Content-Type` (so only the function checks "
    "it), or nested or numbered beyond what a parser should accept.",
    "INVALID_IMAGE": "Not base64, empty, truncated, structurally malformed (a chunk or segment past the end of the "
    "upload, an insane PNG or JPEG header), holding less compressed data than the declared size needs, or "
    "undecodable.",
    "IMAGE_TOO_SMALL": "Under 80x80 px (Rekognition's minimum).",
    "IMAGE_TOO_COMPLEX": "Refused before decoding because decoding would cost too much: more than 64 JPEG scans, "
    "more than 4096 PNG chunks, a PNG metadata chunk over 256 KB, pixels x scans over 160 million, decoded bytes "
    "(counted from the bit depth and colour type) over 9 a pixel of `MAX_IMAGE_PIXELS`, or compressed beyond any "
    "camera frame (over 16 MB decoded at more than 64:1 for PNG, 512:1 for JPEG).",
    "IMAGE_TRAILING_DATA": "Bytes after the image's end marker (JPEG EOI, PNG IEND): an appended file or payload. "
    "Up to 4 KB of zero padding is tolerated and stripped.",
    "UNAUTHORIZED": "No or invalid Cognito token.",
    "MISSING_AUTHENTICATION_TOKEN": "No such path (API Gateway's answer for a resource the API does not define).",
    "METHOD_NOT_ALLOWED": "The path exists but not with this method (e.g. `PUT /sessions`); the `Allow` header "
    "lists the methods it accepts. API Gateway answers it from a mock integration; the function never runs.",
    "FORBIDDEN": "The authorizer denied the token.",
    "NOT_FOUND": "The function got a method and path it does not serve (API Gateway answers undefined paths "
    "with 403 and undefined methods with 405 itself, so in practice only when the two disagree).",
    "SESSION_NOT_FOUND": "No such session, or it belongs to someone else.",
    "SESSION_CLOSED": "The session is `PASSED`, `FAILED` or `EXPIRED`; nothing changed.",
    "CONFLICT": "Extreme contention on one session, or a frame whose request outlived the 15-minute repair margin "
    "(its slot was settled as abandoned meanwhile); retry (`Retry-After`).",
    "PAYLOAD_TOO_LARGE": "A body over API Gateway's 10 MB, an image over `MAX_IMAGE_PIXELS` (10 megapixels), or "
    "still over "
    "Rekognition's 5 MB after re-encoding.",
    "UNSUPPORTED_MEDIA_TYPE": "Not PNG or JPEG (by the bytes, or a data URL declaring another type); an animated "
    "PNG; a lossless, hierarchical or arithmetic-coded JPEG.",
    "NO_FACE": "Zero faces (KYC needs one person).",
    "MULTIPLE_FACES": "More than one face (KYC needs one person).",
    "THROTTLED": "Over the stage's throttling limits (API Gateway).",
    "TOO_MANY_SESSIONS": "`POST /sessions` only: the user already has `MAX_OPEN_SESSIONS` sessions open, or started "
    "`MAX_SESSIONS_PER_MINUTE` in the last minute; `Retry-After` says when one frees up.",
    "TOO_MANY_ATTEMPTS": "`POST /sessions` only: the user failed `MAX_FAILED_SESSIONS` checks within "
    "`FAILURE_WINDOW_SECONDS` and is locked; `Retry-After` says when the oldest counted failure leaves the window. "
    "An audit record is written when the lock is met.",
    "ANALYZER_UNAVAILABLE": "Rekognition throttled or failed after botocore's retries; `Retry-After: 2`.",
    "STORAGE_UNAVAILABLE": "S3 or DynamoDB throttled or failed after botocore's retries, or (local mode) the data "
    "folder is read-only, full or not a folder; `Retry-After: 2`.",
    "INTERNAL_ERROR": "A bug. The message never contains the exception; the traceback is in the function's log.",
    "INTEGRATION_FAILURE": "The function raised or returned something that is not a proxy response.",
}
REASON_MEANINGS = {
    "NO_FACE": "no face found",
    "MULTIPLE_FACES": "more than one face",
    "LOW_CONFIDENCE": "face confidence below `MIN_FACE_CONFIDENCE`",
    "FACE_TOO_SMALL": "face narrower than `MIN_FACE_WIDTH` of the frame: move closer",
    "LOW_QUALITY": "too dark or too blurry (or quality unknown)",
    "FACE_OCCLUDED": "mask, hand or hair over the face",
    "SUNGLASSES": "sunglasses on",
    "NOT_LOOKING_STRAIGHT": "the neutral start needs a face toward the camera, head level, and no expression",
    "POSE_NOT_MET": "the head movement was not reached (see `measured.movement`, the yaw, pitch and roll from the "
    "baseline)",
    "FLAT_FACE": "the pitch foreshortened the face like a tilted photo, not like a head",
    "EXPRESSION_NOT_MET": "the expression was not detected confidently, or the face was not toward the camera",
    "REPEATED_FRAME": "the very same upload bytes as a frame this session already judged: send a new frame",
    "PREVIOUS_STEP_HELD": "the frame also meets an earlier step (any, not only the previous one): release it first",
    "STEP_ALREADY_COMPLETED": "another frame completed the step this one answered; follow the current step",
    "FACE_NOT_COMPARABLE": "met the step, but too far from the baseline for the face to be matched: a little less "
    "far (the `MAX_NOT_COMPARABLE`-th fails the session)",
    "FACE_MISMATCH": "not the reference person: **fails the session**",
    "SESSION_CLOSED": "frame log only: the session closed while the frame was analysed (the request answered 409)",
    "LIGHT_NOT_FOLLOWED": "light step: the face's colour did not follow the drawn colours in timing and colour, or "
    "responded flat like a print or a screen (uses one of `LIGHT_MAX_ATTEMPTS`)",
    "LIGHT_TOO_BRIGHT": "light step: no measurable response (bright surroundings): abstain and coach (uses an attempt)",
    "LIGHT_FACE_MOVED": "light step: the face moved, was covered, or its regions left the frame (uses an attempt)",
    "NOT_JUDGED": "frame log only: the analysis or archiving failed after the slot was taken (the request answered "
    "the error)",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def field_comments(cls: type) -> dict[str, str]:
    """Each dataclass field's comment: the one on its line, else the comment lines just above it."""
    source = inspect.getsource(cls)
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    found: dict[str, str] = {}
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.match(r"\s+([a-z_]+): [^=]+=", line)
        if not match:
            continue
        if number in comments and not line.lstrip().startswith("#"):
            found[match.group(1)] = comments[number]
            continue
        above = []
        while number - 1 - len(above) in comments and source.splitlines()[number - 2 - len(above)].lstrip().startswith(
            "#"
        ):
            above.insert(0, comments[number - 1 - len(above)])
        if above:
            found[match.group(1)] = " ".join(above)
    return found


def _session_limits() -> type:
    try:
        from liveness.limits import SessionLimits
    except ImportError:  # before the limits module exists
        from liveness.sessions.state import SessionLimits
    return SessionLimits


def _failure_reason() -> type:
    try:
        from liveness.sessions.model import FailureReason
    except ImportError:  # before the session model is split out
        from liveness.sessions.state import FailureReason
    return FailureReason


def env_rows(env: dict[str, str], cls: type) -> list[tuple[str, Any, str]]:
    """(variable, default, meaning) for an env -> field mapping; a variable with no meaning fails the build."""
    defaults = cls()
    comments = field_comments(cls)
    rows = []
    for name, field_name in env.items():
        meaning = FIELD_MEANINGS.get(field_name) or comments.get(field_name)
        if not meaning:
            raise ValueError(f"{name} ({cls.__name__}.{field_name}) has no meaning: comment the field")
        rows.append((f"`{name}`", f"`{getattr(defaults, field_name)}`", meaning))
    return rows


def _meaning(meanings: dict[str, str], code: str, what: str) -> str:
    if code not in meanings:
        raise ValueError(f"{what} {code} has no meaning: add it to docs/hooks/generated_tables.py")
    return meanings[code]


def settings_env() -> str:
    """The variables ``Settings.from_env`` reads itself, each with the default an empty environment gets."""
    from liveness.settings import Settings

    found = re.findall(r'(\w+)=[^\n]*?env\.get\("([A-Z_]+)"', inspect.getsource(Settings.from_env))
    if not found:
        raise ValueError("no environment variable found in Settings.from_env")
    defaults = Settings.from_env({})
    rows = []
    for field_name, name in found:
        value = getattr(defaults, field_name)
        shown = f"`{value}`" if value not in ("", ()) else "(empty)"
        rows.append((f"`{name}`", shown, _meaning(SETTINGS_MEANINGS, name, "variable")))
    return _table(("variable", "default", "meaning"), rows)


def reason_codes() -> str:
    from liveness.challenges import COACHING, ReasonCode

    return _table(
        ("code", "meaning", "coaching message (the answer's `message`)"),
        [
            (f"`{code.value}`", _meaning(REASON_MEANINGS, code.value, "reason code"), COACHING[code])
            for code in ReasonCode
        ],
    )


def failure_reasons() -> str:
    return _table(
        ("`failureReason`", "when"),
        [
            (f"`{reason.value}`", _meaning(FAILURE_MEANINGS, reason.value, "failure reason"))
            for reason in _failure_reason()
        ],
    )


def error_codes() -> str:
    from liveness.openapi import error_codes as codes

    rows = sorted((status, code) for code, status in codes().items())
    return _table(
        ("status", "code", "when"),
        [(status, f"`{code}`", _meaning(ERROR_MEANINGS, code, "error code")) for status, code in rows],
    )


def session_env() -> str:
    from liveness.settings import SESSION_ENV

    return _table(("variable", "default", "meaning"), env_rows(SESSION_ENV, _session_limits()))


def attempt_env() -> str:
    from liveness.limits import AttemptLimits
    from liveness.settings import ATTEMPT_ENV

    return _table(("variable", "default", "meaning"), env_rows(ATTEMPT_ENV, AttemptLimits))


def threshold_env() -> str:
    from liveness.challenges import Thresholds
    from liveness.settings import THRESHOLD_ENV

    return _table(("variable", "default", "meaning"), env_rows(THRESHOLD_ENV, Thresholds))


def light_env() -> str:
    from liveness.light.decision import LightThresholds
    from liveness.settings import LIGHT_ENV

    return _table(("variable", "default", "meaning"), env_rows(LIGHT_ENV, LightThresholds))


def checkov_skips() -> str:
    from cdk_app.checkov_skips import CHECKOV_SKIPS

    return _table(
        ("check", "resource", "reason"),
        [(f"`{skip.check}`", f"`{skip.resource}`", skip.reason) for skip in CHECKOV_SKIPS],
    )


def openapi_operations() -> str:
    from liveness.openapi import openapi_document

    rows = []
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            statuses = ", ".join(sorted(operation["responses"]))
            rows.append((f"`{method.upper()}`", f"`{path}`", operation["summary"], statuses))
    return _table(("method", "path", "summary", "statuses"), rows)


TABLES: dict[str, Callable[[], str]] = {
    "reason-codes": reason_codes,
    "failure-reasons": failure_reasons,
    "error-codes": error_codes,
    "settings-env": settings_env,
    "session-env": session_env,
    "attempt-env": attempt_env,
    "threshold-env": threshold_env,
    "light-env": light_env,
    "checkov-skips": checkov_skips,
    "openapi-operations": openapi_operations,
}


def render(markdown: str) -> str:
    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise ValueError(f"unknown generated table {name!r}; known: {sorted(TABLES)}")
        return TABLES[name]()

    return MARKER.sub(table, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return render(markdown)
