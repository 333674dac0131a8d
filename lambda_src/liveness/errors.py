"""One error model for every route: a stable machine-readable ``code``, an HTTP status and a human message.

Routes and services raise ``LivenessError``; the handler turns it into
``{"code", "message", "requestId"}``. Nothing else about an exception ever reaches the client.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Stable codes clients can switch on. The value is the wire code; the status is the HTTP status."""

    def __new__(cls, value: str, status: int) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status  # type: ignore[attr-defined]
        return member

    # 400: the request itself is malformed
    INVALID_JSON = ("INVALID_JSON", 400)
    INVALID_REQUEST = ("INVALID_REQUEST", 400)
    INVALID_IMAGE = ("INVALID_IMAGE", 400)
    IMAGE_TOO_SMALL = ("IMAGE_TOO_SMALL", 400)
    IMAGE_TOO_COMPLEX = ("IMAGE_TOO_COMPLEX", 400)
    IMAGE_TRAILING_DATA = ("IMAGE_TRAILING_DATA", 400)
    # 401/403/404/405/409
    UNAUTHORIZED = ("UNAUTHORIZED", 401)
    NOT_FOUND = ("NOT_FOUND", 404)
    SESSION_NOT_FOUND = ("SESSION_NOT_FOUND", 404)
    SESSION_CLOSED = ("SESSION_CLOSED", 409)
    CONFLICT = ("CONFLICT", 409)
    # 413/415: size and type
    PAYLOAD_TOO_LARGE = ("PAYLOAD_TOO_LARGE", 413)
    UNSUPPORTED_MEDIA_TYPE = ("UNSUPPORTED_MEDIA_TYPE", 415)
    # 429: the user's attempt limits (sessions/attempts.py); Retry-After says when a new session may start
    TOO_MANY_SESSIONS = ("TOO_MANY_SESSIONS", 429)
    TOO_MANY_ATTEMPTS = ("TOO_MANY_ATTEMPTS", 429)
    # 422: the image is fine but the face rules are not met
    NO_FACE = ("NO_FACE", 422)
    MULTIPLE_FACES = ("MULTIPLE_FACES", 422)
    # 503: a dependency is throttling or down; the client should retry later
    ANALYZER_UNAVAILABLE = ("ANALYZER_UNAVAILABLE", 503)
    STORAGE_UNAVAILABLE = ("STORAGE_UNAVAILABLE", 503)
    # 500: a bug on our side; never carries the exception text
    INTERNAL_ERROR = ("INTERNAL_ERROR", 500)


RETRY_AFTER_SECONDS = 2
ECHO_MAX_CHARS = 64  # the most of any client-supplied text (a key, a media type) an error message repeats
MESSAGE_MAX_CHARS = 512  # and the most any message can be, whatever built it


def clip(text: str, limit: int = ECHO_MAX_CHARS) -> str:
    """Client input quoted in a message, bounded: a 500 KB key must not come back as a 500 KB answer."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


class LivenessError(Exception):
    """An expected failure with a client-facing code and message."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return int(self.code.status)  # type: ignore[attr-defined]

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}

    def body(self, request_id: str) -> dict[str, str]:
        return {"code": self.code.value, "message": clip(self.message, MESSAGE_MAX_CHARS), "requestId": request_id}


def unavailable(code: ErrorCode, what: str) -> LivenessError:
    """A 503 telling the client to retry after a short pause."""
    return LivenessError(code, f"{what} is temporarily unavailable; retry shortly.", retry_after=RETRY_AFTER_SECONDS)
