"""Runtime settings, read once from the environment the CDK stack (or the local server) sets."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .challenges import MAX_STEPS, MIN_STEPS, Thresholds, threshold_problems
from .images.limits import MAX_PIXELS, MIN_SIDE_PX
from .light.decision import LightThresholds, light_threshold_problems
from .light.mode import DEFAULT_MODE, LIGHT_MODES
from .limits import MAX_FRAMES_CAP, AttemptLimits, SessionLimits

T = TypeVar("T")


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in raw.split(",") if origin.strip())


@dataclass(frozen=True)
class Settings:
    analyzer: str = "rekognition"  # "rekognition" | "local"
    storage: str = "aws"  # "aws" (S3 + DynamoDB) | "file" (local mode)
    archive_bucket: str = ""
    sessions_table: str = ""
    data_dir: Path = Path(".local-data")
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    max_upload_bytes: int = 6 * 1024 * 1024
    max_image_pixels: int = MAX_PIXELS
    session_limits: SessionLimits = field(default_factory=SessionLimits)
    attempt_limits: AttemptLimits = field(default_factory=AttemptLimits)
    thresholds: Thresholds = field(default_factory=Thresholds)
    light_challenge: str = DEFAULT_MODE  # "enforce" | "shadow" | "off" (light/mode.py)
    light_thresholds: LightThresholds = field(default_factory=LightThresholds)
    # The Rekognition path measures each session frame with the embedded analyzer first (sessions/prescreen.py).
    prescreen: bool = True
    # Whether the pre-screen's refusals keep their image in the archive too (their record is always kept).
    archive_screened: bool = False
    # Set only by the demo-only "no authorizer" deployment: the identity every unauthenticated caller shares.
    anonymous_caller: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        return cls(
            analyzer=env.get("ANALYZER", "rekognition").strip().lower(),
            storage=env.get("STORAGE", "aws").strip().lower(),
            archive_bucket=env.get("ARCHIVE_BUCKET", ""),
            sessions_table=env.get("SESSIONS_TABLE", ""),
            data_dir=Path(env.get("DATA_DIR", ".local-data")),
            allowed_origins=_origins(env.get("ALLOWED_ORIGINS", "")),
            max_upload_bytes=int(env.get("MAX_UPLOAD_BYTES", str(6 * 1024 * 1024))),
            max_image_pixels=image_pixels_from_env(env.get("MAX_IMAGE_PIXELS", "")),
            session_limits=session_limits_from_env(env),
            attempt_limits=attempt_limits_from_env(env),
            thresholds=thresholds_from_env(env),
            light_challenge=light_mode_from_env(env.get("LIGHT_CHALLENGE", DEFAULT_MODE)),
            light_thresholds=light_thresholds_from_env(env),
            prescreen=prescreen_from_env(env.get("PRESCREEN", "on")),
            archive_screened=switch_from_env("ARCHIVE_SCREENED", env.get("ARCHIVE_SCREENED", "off")),
            anonymous_caller=env.get("ANONYMOUS_CALLER", "").strip(),
        )


def prescreen_from_env(raw: str) -> bool:
    return switch_from_env("PRESCREEN", raw)


def switch_from_env(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"{name} must be 'on' or 'off', not {raw!r}")
    return value == "on"


# Environment variable -> SessionLimits field. Defaults live on the dataclass, so they are written once.
SESSION_ENV = {
    "STEP_COUNT": "step_count",
    "STEP_TIME_LIMIT_SECONDS": "step_time_limit_seconds",
    "SESSION_TTL_SECONDS": "session_ttl_seconds",
    "SESSION_MAX_FRAMES": "max_frames",
    "STEP_MAX_FRAMES": "step_max_frames",
    "SESSION_RETENTION_SECONDS": "retention_seconds",
    "LIGHT_MAX_ATTEMPTS": "light_max_attempts",
}
# Environment variable -> AttemptLimits field (the per-user attempt policy, sessions/attempts.py).
ATTEMPT_ENV = {
    "MAX_OPEN_SESSIONS": "max_open_sessions",
    "MAX_FAILED_SESSIONS": "max_failed_sessions",
    "FAILURE_WINDOW_SECONDS": "failure_window_seconds",
    "MAX_SESSIONS_PER_MINUTE": "max_sessions_per_minute",
}
# Environment variable -> Thresholds field.
THRESHOLD_ENV = {
    "MIN_FACE_CONFIDENCE": "min_face_confidence",
    "MIN_FACE_WIDTH": "min_face_width",
    "MIN_BRIGHTNESS": "min_brightness",
    "MIN_SHARPNESS": "min_sharpness",
    "OCCLUSION_CONFIDENCE": "occlusion_confidence",
    "SUNGLASSES_CONFIDENCE": "sunglasses_confidence",
    "TURN_YAW_DEGREES": "turn_yaw",
    "TILT_PITCH_DEGREES": "tilt_pitch",
    "OFF_AXIS_MAX_DEGREES": "off_axis_max",
    "EXPRESSION_CONFIDENCE": "expression_confidence",
    "EXPRESSION_MAX_ANGLE_DEGREES": "expression_max_angle",
    "MIN_SIMILARITY": "min_similarity",
    "NEUTRAL_MAX_DEGREES": "neutral_max_angle",
    "COMPARE_MAX_DEGREES": "compare_max_angle",
    "FLAT_FACE_SLOPE": "flat_face_slope",
    "MAX_NOT_COMPARABLE": "max_not_comparable",
    "LINK_MAX_DEGREES": "link_max_angle",
    "LINK_MAX_SECONDS": "link_max_seconds",
    "MAX_LINK_HOPS": "max_link_hops",
}


# Environment variable -> LightThresholds field (the light challenge's decision, light/decision.py).
LIGHT_ENV = {
    "LIGHT_MIN_CORRELATION": "min_correlation",
    "LIGHT_MIN_RESPONSE": "min_response",
    "LIGHT_MAX_FLATNESS": "max_flatness",
    "LIGHT_MIN_BACKGROUND_BALANCE": "min_background_balance",
    "LIGHT_CLEAR_RESPONSE": "clear_response",
    "LIGHT_PARTIAL_CORRELATION": "partial_correlation",
    "LIGHT_MAX_SWAY": "max_sway",
    "LIGHT_MIN_STILLNESS": "min_stillness",
}


def image_pixels_from_env(raw: str) -> int:
    pixels = int(raw) if raw.strip() else MAX_PIXELS
    if pixels < MIN_SIDE_PX * MIN_SIDE_PX:
        raise ValueError(f"MAX_IMAGE_PIXELS must be at least {MIN_SIDE_PX * MIN_SIDE_PX}, not {pixels}")
    return pixels


def light_mode_from_env(raw: str) -> str:
    mode = raw.strip().lower() or DEFAULT_MODE
    if mode not in LIGHT_MODES:
        raise ValueError(f"LIGHT_CHALLENGE must be one of {', '.join(LIGHT_MODES)}, not {raw!r}")
    return mode


def light_thresholds_from_env(env: dict[str, str]) -> LightThresholds:
    return _checked(LightThresholds(**_floats(env, LIGHT_ENV)), light_threshold_problems)


def session_limits_from_env(env: dict[str, str]) -> SessionLimits:
    values = {field_name: int(env[name]) for name, field_name in SESSION_ENV.items() if env.get(name, "").strip()}
    limits = SessionLimits(**values)
    if not MIN_STEPS <= limits.step_count <= MAX_STEPS:
        raise ValueError(f"STEP_COUNT must be between {MIN_STEPS} and {MAX_STEPS}, not {limits.step_count}")
    if min(limits.step_time_limit_seconds, limits.session_ttl_seconds, limits.max_frames, limits.step_max_frames) < 1:
        raise ValueError(
            "STEP_TIME_LIMIT_SECONDS, SESSION_TTL_SECONDS, SESSION_MAX_FRAMES and STEP_MAX_FRAMES must be positive"
        )
    if limits.light_max_attempts < 1:
        raise ValueError(f"LIGHT_MAX_ATTEMPTS must be at least 1, not {limits.light_max_attempts}")
    if limits.max_frames > MAX_FRAMES_CAP:
        raise ValueError(f"SESSION_MAX_FRAMES must be at most {MAX_FRAMES_CAP}, not {limits.max_frames}")
    return limits


def attempt_limits_from_env(env: dict[str, str]) -> AttemptLimits:
    values = {field_name: int(env[name]) for name, field_name in ATTEMPT_ENV.items() if env.get(name, "").strip()}
    limits = AttemptLimits(**values)
    too_small = [name for name, field_name in ATTEMPT_ENV.items() if getattr(limits, field_name) < 1]
    if too_small:
        raise ValueError(f"{', '.join(too_small)} must be at least 1")
    return limits


def thresholds_from_env(env: dict[str, str]) -> Thresholds:
    # Disjoint windows: no pose may count for two different steps (see challenges.threshold_problems).
    return _checked(Thresholds(**_floats(env, THRESHOLD_ENV)), threshold_problems)


def _floats(env: dict[str, str], names: dict[str, str]) -> dict[str, float]:
    """The fields whose environment variable is set, as numbers; the others keep their defaults."""
    return {field_name: float(env[name]) for name, field_name in names.items() if env.get(name, "").strip()}


def _checked(values: T, problems_of: Callable[[T], list[str]]) -> T:
    problems = problems_of(values)
    if problems:
        raise ValueError("; ".join(problems))
    return values
