"""Typed settings read from CDK context (cdk.json, or ``-c key=value`` on the command line)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aws_cdk import aws_logs as logs
from constructs import Node

PREFIX = "liveness:"
# Session limits, step thresholds and attempt limits the runtime reads from its environment
# (lambda_src/liveness/settings.py: SESSION_ENV, THRESHOLD_ENV, LIGHT_ENV and ATTEMPT_ENV; a test keeps them equal).
SESSION_TUNING_KEYS = (
    "STEP_COUNT",
    "STEP_TIME_LIMIT_SECONDS",
    "SESSION_TTL_SECONDS",
    "SESSION_MAX_FRAMES",
    "STEP_MAX_FRAMES",
    "SESSION_RETENTION_SECONDS",
    "MIN_FACE_CONFIDENCE",
    "MIN_FACE_WIDTH",
    "MIN_BRIGHTNESS",
    "MIN_SHARPNESS",
    "OCCLUSION_CONFIDENCE",
    "SUNGLASSES_CONFIDENCE",
    "TURN_YAW_DEGREES",
    "TILT_PITCH_DEGREES",
    "OFF_AXIS_MAX_DEGREES",
    "EXPRESSION_CONFIDENCE",
    "EXPRESSION_MAX_ANGLE_DEGREES",
    "MIN_SIMILARITY",
    "NEUTRAL_MAX_DEGREES",
    "COMPARE_MAX_DEGREES",
    "FLAT_FACE_SLOPE",
    "MAX_NOT_COMPARABLE",
    "LINK_MAX_DEGREES",
    "LINK_MAX_SECONDS",
    "MAX_LINK_HOPS",
    "LIGHT_MAX_ATTEMPTS",
    "LIGHT_MIN_CORRELATION",
    "LIGHT_MIN_RESPONSE",
    "LIGHT_MAX_FLATNESS",
    "LIGHT_MIN_BACKGROUND_BALANCE",
    "LIGHT_CLEAR_RESPONSE",
    "LIGHT_PARTIAL_CORRELATION",
    "LIGHT_MAX_SWAY",
    "LIGHT_MIN_STILLNESS",
    "MAX_OPEN_SESSIONS",
    "MAX_FAILED_SESSIONS",
    "FAILURE_WINDOW_SECONDS",
    "MAX_SESSIONS_PER_MINUTE",
)
ANALYZERS = ("rekognition", "local")
LIGHT_CHALLENGE_MODES = ("enforce", "shadow", "off")  # liveness.light.mode.LIGHT_MODES (a test keeps them equal)
# Where the stack publishes the OpenCV layer's ARN for other stacks (cdk_app/layer_export.py).
DEFAULT_LAYER_ARN_PARAMETER = "/kyc-liveness/opencv-layer/arn"
# SSM's rules for a fully qualified name: /-separated segments of these characters, at most 15 levels, at
# most 1011 characters (an upper bound: SSM counts the parameter's ARN too), and no aws or ssm prefix.
_SSM_PARAMETER_NAME = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
_SSM_MAX_LEVELS = 15
_SSM_MAX_NAME_LENGTH = 1011
API_GATEWAY_TIMEOUT_SECONDS = 29
# The stage's default burst (20 requests at once): every request it lets through finds an environment, and no
# more than 20 x 1 GB environments (and their Rekognition calls) ever run at once. A frame takes well under a
# second, so 20 environments also serve the default 10 requests/s with room to spare.
DEFAULT_RESERVED_CONCURRENCY = 20
MAX_RESERVED_CONCURRENCY = 1000  # Lambda's default account quota; a reservation must leave 100 unreserved


# CloudWatch Logs accepts only these retention periods (days -> CDK enum member).
_RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    if days not in _RETENTION_DAYS:
        raise ConfigError(f"{PREFIX}logRetentionDays must be one of {sorted(_RETENTION_DAYS)}, not {days}")
    return _RETENTION_DAYS[days]


class ConfigError(ValueError):
    """A context value is missing or malformed; synth stops with a message naming the key."""


@dataclass(frozen=True)
class LivenessConfig:
    allowed_origins: tuple[str, ...]
    retention_days: int = 30
    audit_retention_days: int = 1827
    audit_reader_arns: tuple[str, ...] = ()
    access_log_retention_days: int = 90
    log_retention_days: int = 30
    throttle_rate_limit: int = 10
    throttle_burst_limit: int = 20
    cognito_user_pool_id: str = ""
    disable_auth: bool = False
    analyzer: str = "rekognition"
    memory_mb: int = 1024
    timeout_seconds: int = 20
    # At most this many environments of the API function run at once (None: no reservation). See docs/deploy.md.
    reserved_concurrency: int | None = DEFAULT_RESERVED_CONCURRENCY
    session_tuning: dict[str, str] = field(default_factory=dict)
    layer_arn_parameter: str = DEFAULT_LAYER_ARN_PARAMETER
    web_client: bool = True
    cognito_domain: str = ""
    # SnapStart for the API function (docs/operations.md: "Cold starts and SnapStart").
    snap_start: bool = True
    # The embedding apps a passed check may be handed back to (docs/web-client.md: "Handing the result back").
    return_origins: tuple[str, ...] = ()
    # The light challenge (issue 19; docs/sessions.md "The light step"): LIGHT_CHALLENGE in the function.
    light_challenge: str = "enforce"
    # The pre-screen on the Rekognition path (docs/analyzers.md "The pre-screen"): PRESCREEN in the function.
    prescreen: bool = True
    # Whether the pre-screen's refusals are archived as images too: ARCHIVE_SCREENED in the function.
    archive_screened: bool = False

    def __post_init__(self) -> None:
        if not self.allowed_origins:
            raise ConfigError(
                f"{PREFIX}allowedOrigins must list at least one origin (for example https://app.example.com)"
            )
        for origin in self.allowed_origins:
            if not _is_allowed_origin(origin):
                raise ConfigError(
                    f"{PREFIX}allowedOrigins: {origin!r} is not allowed; use explicit https://host[:port] origins "
                    "(http only for localhost and 127.0.0.1), no wildcard, path or trailing slash"
                )
        for origin in self.return_origins:
            if not _is_allowed_origin(origin):
                raise ConfigError(
                    f"{PREFIX}returnOrigins: {origin!r} is not allowed; use explicit https://host[:port] origins "
                    "(http only for localhost and 127.0.0.1), no wildcard, path or trailing slash"
                )
        if self.analyzer not in ANALYZERS:
            raise ConfigError(f"{PREFIX}analyzer must be one of {ANALYZERS}, not {self.analyzer!r}")
        if self.light_challenge not in LIGHT_CHALLENGE_MODES:
            raise ConfigError(
                f"{PREFIX}lightChallenge must be one of {LIGHT_CHALLENGE_MODES}, not {self.light_challenge!r}"
            )
        if self.retention_days < 1:
            raise ConfigError(f"{PREFIX}retentionDays must be at least 1")
        if self.audit_retention_days < self.retention_days:
            raise ConfigError(f"{PREFIX}auditRetentionDays must be at least retentionDays")
        for arn in self.audit_reader_arns:
            if not arn.startswith("arn:") or ":iam::" not in arn:
                raise ConfigError(f"{PREFIX}auditReaderArns: {arn!r} is not an IAM principal ARN")
        log_retention(self.log_retention_days)  # fails early on a value CloudWatch Logs rejects
        if not 1 <= self.timeout_seconds <= API_GATEWAY_TIMEOUT_SECONDS:
            # API Gateway cuts every request at 29 s: a longer function would only run on after its answer, and
            # the session repair (sessions/repair.py) counts on no request living longer.
            raise ConfigError(f"{PREFIX}timeoutSeconds must be between 1 and {API_GATEWAY_TIMEOUT_SECONDS}")
        if self.reserved_concurrency is not None and not 1 <= self.reserved_concurrency <= MAX_RESERVED_CONCURRENCY:
            raise ConfigError(
                f"{PREFIX}reservedConcurrency must be between 1 and {MAX_RESERVED_CONCURRENCY}, or 0/null for none"
            )
        unknown = set(self.session_tuning) - set(SESSION_TUNING_KEYS)
        if unknown:
            raise ConfigError(f"{PREFIX}sessionTuning: unknown keys {sorted(unknown)}; known: {SESSION_TUNING_KEYS}")
        _check_tuning_with_the_runtime(self.session_tuning)
        _check_ssm_parameter_name(self.layer_arn_parameter, "layerArnParameter")
        if self.cognito_domain and not _is_allowed_origin(self.cognito_domain):
            raise ConfigError(f"{PREFIX}cognitoDomain must be an https:// origin, like https://login.example.com")
        if self.web_client and self.cognito_user_pool_id and not self.disable_auth and not self.cognito_domain:
            raise ConfigError(
                f"{PREFIX}cognitoUserPoolId imports a pool: also set {PREFIX}cognitoDomain to its sign-in domain "
                f"(https://<prefix>.auth.<region>.amazoncognito.com) for the web client, or {PREFIX}webClient=false"
            )

    @classmethod
    def from_context(cls, node: Node) -> LivenessConfig:
        def value(key: str, default: Any) -> Any:
            raw = node.try_get_context(PREFIX + key)
            return default if raw is None else raw

        return cls(
            allowed_origins=tuple(_as_list(value("allowedOrigins", []))),
            retention_days=_as_int(value("retentionDays", 30), "retentionDays"),
            audit_retention_days=_as_int(value("auditRetentionDays", 1827), "auditRetentionDays"),
            audit_reader_arns=tuple(_as_list(value("auditReaderArns", []))),
            access_log_retention_days=_as_int(value("accessLogRetentionDays", 90), "accessLogRetentionDays"),
            log_retention_days=_as_int(value("logRetentionDays", 30), "logRetentionDays"),
            throttle_rate_limit=_as_int(value("throttleRateLimit", 10), "throttleRateLimit"),
            throttle_burst_limit=_as_int(value("throttleBurstLimit", 20), "throttleBurstLimit"),
            cognito_user_pool_id=str(value("cognitoUserPoolId", "")),
            disable_auth=_as_bool(value("disableAuthDemoOnly", False)),
            analyzer=str(value("analyzer", "rekognition")).lower(),
            memory_mb=_as_int(value("memoryMb", 1024), "memoryMb"),
            timeout_seconds=_as_int(value("timeoutSeconds", 20), "timeoutSeconds"),
            reserved_concurrency=_as_optional_count(
                node.try_get_context(PREFIX + "reservedConcurrency"), "reservedConcurrency"
            ),
            session_tuning=_as_tuning(value("sessionTuning", {})),
            layer_arn_parameter=str(value("layerArnParameter", DEFAULT_LAYER_ARN_PARAMETER)),
            web_client=_as_bool(value("webClient", True)),
            cognito_domain=str(value("cognitoDomain", "")).rstrip("/"),
            snap_start=_as_bool(value("snapStart", True)),
            return_origins=tuple(_as_list(value("returnOrigins", []))),
            light_challenge=str(value("lightChallenge", "enforce")).strip().lower(),
            prescreen=_as_switch(value("prescreen", "on"), "prescreen"),
            archive_screened=_as_switch(value("archiveScreened", "off"), "archiveScreened"),
        )


def _as_switch(raw: object, name: str) -> bool:
    """``on`` or ``off`` (a JSON boolean too)."""
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value not in ("on", "off"):
        raise ConfigError(f"{PREFIX}{name} must be on or off, not {raw!r}")
    return value == "on"


_LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def _is_allowed_origin(origin: str) -> bool:
    """An exact origin: https (or http on loopback only), a host, an optional port, nothing else."""
    parsed = urlsplit(origin)
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    if origin != f"{parsed.scheme}://{parsed.netloc}" or not parsed.hostname or "*" in origin or "@" in origin:
        return False
    return parsed.scheme == "https" or (parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS)


def _as_list(raw: Any) -> list[str]:
    # -c on the command line gives strings: accept a JSON list or a comma-separated list.
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip().startswith("[") else raw.split(",")
    return [str(item).strip() for item in raw if str(item).strip()]


def _check_tuning_with_the_runtime(tuning: dict[str, str]) -> None:
    """Apply the function's own validation at synth time (windows that overlap, out-of-range counts), so a bad
    value stops the deploy instead of failing every cold start."""
    from liveness.settings import (
        attempt_limits_from_env,
        light_thresholds_from_env,
        session_limits_from_env,
        thresholds_from_env,
    )

    try:
        session_limits_from_env(tuning)
        attempt_limits_from_env(tuning)
        thresholds_from_env(tuning)
        light_thresholds_from_env(tuning)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{PREFIX}sessionTuning: {error}") from None


def _check_ssm_parameter_name(name: str, key: str) -> None:
    """Refuse at synth a name SSM would refuse at deploy time, after the layer was already uploaded."""
    levels = name.count("/")
    if (
        not _SSM_PARAMETER_NAME.match(name)
        or levels > _SSM_MAX_LEVELS
        or len(name) > _SSM_MAX_NAME_LENGTH
        or name.lower().startswith(("/aws", "/ssm"))
    ):
        raise ConfigError(
            f"{PREFIX}{key}: {name!r} is not a usable SSM parameter name; use a path like "
            f"{DEFAULT_LAYER_ARN_PARAMETER} (letters, digits, _ . -; at most {_SSM_MAX_LEVELS} levels; "
            "not under /aws or /ssm)"
        )


def _as_tuning(raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        raw = json.loads(raw or "{}")
    if not isinstance(raw, dict):
        raise ConfigError(f'{PREFIX}sessionTuning must be an object like {{"TURN_YAW_DEGREES": 30}}')
    return {str(key): str(value) for key, value in raw.items()}


def _as_int(raw: Any, key: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{PREFIX}{key} must be an integer, not {raw!r}") from None


def _as_optional_count(raw: Any, key: str) -> int | None:
    """Absent: the default. ``null``, ``0`` or ``"none"``: no reservation (accounts whose concurrency quota is
    still the new-account default of 10 cannot reserve any)."""
    if raw is None:
        return DEFAULT_RESERVED_CONCURRENCY
    if isinstance(raw, str) and raw.strip().lower() in ("", "0", "none", "null"):
        return None
    count = _as_int(raw, key)
    return count or None


def _as_bool(raw: Any) -> bool:
    return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes")
