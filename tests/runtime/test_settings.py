"""The settings read from the environment: session limits and thresholds, their bounds, and disjoint step windows."""

from __future__ import annotations

import pytest
from liveness.challenges import Measured, StepCode, Thresholds, step_reason
from liveness.dependencies import Dependencies
from liveness.images.limits import MAX_PIXELS
from liveness.limits import SessionLimits
from liveness.settings import MAX_FRAMES_CAP, Settings


def test_settings_read_session_limits_and_thresholds_from_env() -> None:
    settings = Settings.from_env(
        {"STEP_COUNT": "4", "STEP_TIME_LIMIT_SECONDS": "15", "MIN_SIMILARITY": "95", "TURN_YAW_DEGREES": "30"}
    )
    assert settings.session_limits.step_count == 4 and settings.session_limits.step_time_limit_seconds == 15
    assert settings.thresholds.min_similarity == 95 and settings.thresholds.turn_yaw == 30
    assert Settings.from_env({}).session_limits == SessionLimits() and Settings.from_env({}).thresholds == Thresholds()
    assert Thresholds().expression_max_angle == 12.0
    with pytest.raises(ValueError):
        Settings.from_env({"STEP_COUNT": "6"})


@pytest.mark.parametrize(
    "env,message",
    [
        ({"SESSION_MAX_FRAMES": "101"}, "SESSION_MAX_FRAMES must be at most 100"),
        ({"SESSION_MAX_FRAMES": "0"}, "must be positive"),
        ({"EXPRESSION_MAX_ANGLE_DEGREES": "15"}, "EXPRESSION_MAX_ANGLE_DEGREES must be above 0 and below"),
        ({"TURN_YAW_DEGREES": "13"}, "TURN_YAW_DEGREES or TILT_PITCH_DEGREES must be above OFF_AXIS_MAX_DEGREES"),
        ({"TILT_PITCH_DEGREES": "10"}, "EXPRESSION_MAX_ANGLE_DEGREES must be above 0 and below"),
        ({"EXPRESSION_MAX_ANGLE_DEGREES": "0"}, "EXPRESSION_MAX_ANGLE_DEGREES must be above 0"),
        ({"TURN_YAW_DEGREES": "20", "OFF_AXIS_MAX_DEGREES": "20"}, "must be above OFF_AXIS_MAX_DEGREES"),
        ({"TILT_PITCH_DEGREES": "-15"}, "must be positive"),
    ],
)
def test_settings_refuse_unsafe_limits(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_settings_accept_the_bounds_themselves() -> None:
    assert Settings.from_env({"SESSION_MAX_FRAMES": str(MAX_FRAMES_CAP)}).session_limits.max_frames == 100
    assert Settings.from_env({"EXPRESSION_MAX_ANGLE_DEGREES": "14.9"}).thresholds.expression_max_angle == 14.9


def test_the_settings_refuse_every_threshold_set_whose_windows_overlap() -> None:
    """The converse: for refused sets with valid signs, an overlapping pose exists (the rule is not stricter
    than it needs to be, so the shipped defaults, tilt 15 below off-axis 20, stay valid)."""
    overlapping = Thresholds(turn_yaw=18.0, tilt_pitch=15.0, off_axis_max=20.0, expression_max_angle=12.0)
    both = Measured(yaw=19.0, pitch=16.0, roll=0.0)
    assert step_reason(StepCode.TURN_LEFT, both, overlapping) is None
    assert step_reason(StepCode.LOOK_UP, both, overlapping) is None
    with pytest.raises(ValueError, match="must be above OFF_AXIS_MAX_DEGREES"):
        Settings.from_env({"TURN_YAW_DEGREES": "18"})
    assert Settings.from_env({}).thresholds == Thresholds()  # 25 > 20 separates the defaults


def test_settings_read_the_new_limits_and_thresholds_from_env() -> None:
    settings = Settings.from_env({"STEP_MAX_FRAMES": "12", "NEUTRAL_MAX_DEGREES": "15", "COMPARE_MAX_DEGREES": "20"})
    assert settings.session_limits.step_max_frames == 12
    assert (settings.thresholds.neutral_max_angle, settings.thresholds.compare_max_angle) == (15.0, 20.0)
    defaults = Settings.from_env({})
    assert (defaults.session_limits.max_frames, defaults.session_limits.step_max_frames) == (60, 30)
    assert (defaults.thresholds.neutral_max_angle, defaults.thresholds.compare_max_angle) == (20.0, 25.0)


@pytest.mark.parametrize(
    "env,message",
    [
        ({"NEUTRAL_MAX_DEGREES": "0"}, "NEUTRAL_MAX_DEGREES and COMPARE_MAX_DEGREES must be positive"),
        ({"NEUTRAL_MAX_DEGREES": "-5"}, "NEUTRAL_MAX_DEGREES and COMPARE_MAX_DEGREES must be positive"),
        ({"COMPARE_MAX_DEGREES": "0"}, "NEUTRAL_MAX_DEGREES and COMPARE_MAX_DEGREES must be positive"),
        ({"COMPARE_MAX_DEGREES": "-30"}, "NEUTRAL_MAX_DEGREES and COMPARE_MAX_DEGREES must be positive"),
        ({"STEP_MAX_FRAMES": "0"}, "STEP_MAX_FRAMES must be positive"),
        ({"STEP_MAX_FRAMES": "-1"}, "STEP_MAX_FRAMES must be positive"),
    ],
)
def test_settings_refuse_non_positive_new_limits(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_the_light_challenge_is_enforced_unless_the_environment_says_otherwise() -> None:
    from liveness.light.decision import LightThresholds

    assert Settings.from_env({}).light_challenge == "enforce"
    assert Settings.from_env({"LIGHT_CHALLENGE": " Shadow "}).light_challenge == "shadow"
    assert Settings.from_env({"LIGHT_CHALLENGE": "off"}).light_challenge == "off"
    assert Settings.from_env({}).light_thresholds == LightThresholds()
    assert Settings.from_env({}).session_limits.light_max_attempts == 2


def test_settings_read_the_light_thresholds_and_attempts_from_env() -> None:
    settings = Settings.from_env(
        {"LIGHT_MIN_CORRELATION": "0.9", "LIGHT_MAX_FLATNESS": "0.8", "LIGHT_MAX_ATTEMPTS": "3"}
    )
    assert settings.light_thresholds.min_correlation == 0.9 and settings.light_thresholds.max_flatness == 0.8
    assert settings.session_limits.light_max_attempts == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIGHT_CHALLENGE": "maybe"}, "LIGHT_CHALLENGE"),
        ({"LIGHT_MAX_ATTEMPTS": "0"}, "LIGHT_MAX_ATTEMPTS"),
        ({"LIGHT_MIN_CORRELATION": "1.5"}, "LIGHT_MIN_CORRELATION"),
        ({"LIGHT_MIN_RESPONSE": "0"}, "LIGHT_MIN_RESPONSE"),
        ({"LIGHT_MIN_BACKGROUND_BALANCE": "2"}, "LIGHT_MIN_BACKGROUND_BALANCE"),
    ],
)
def test_settings_refuse_unusable_light_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_the_image_pixel_limit_is_a_camera_frame_unless_the_environment_says_otherwise() -> None:
    assert Settings.from_env({}).max_image_pixels == MAX_PIXELS == 10_000_000
    settings = Settings.from_env({"MAX_IMAGE_PIXELS": "2100000"})
    deps = Dependencies(settings=settings, analyzer=None, archive=None, session_store=None)  # type: ignore[arg-type]
    assert deps.image_limits.max_pixels == 2_100_000 and deps.image_limits.max_decode_bytes == 9 * 2_100_000
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS must be at least 6400"):
        Settings.from_env({"MAX_IMAGE_PIXELS": "6399"})
