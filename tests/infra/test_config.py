"""Context validation: a bad value stops the synth with a message naming the key."""

from __future__ import annotations

import pytest

from cdk_app.config import ConfigError, LivenessConfig


@pytest.mark.parametrize(
    "origin",
    ["https://kyc.example.com", "https://kyc.example.com:8443", "http://localhost:3000", "http://127.0.0.1:8000"],
)
def test_exact_origins_are_accepted(origin: str) -> None:
    assert LivenessConfig(allowed_origins=(origin,)).allowed_origins == (origin,)


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "https://*.example.com",
        "http://kyc.example.com",  # plain http off loopback
        "http://localhost.evil.example",  # a prefix match would let this through
        "http://127.0.0.1.attacker.example",
        "https://kyc.example.com/",  # an origin has no path
        "https://kyc.example.com/app",
        "https://user@kyc.example.com",
        "https://kyc.example.com:99999",
        "kyc.example.com",
    ],
)
def test_loose_origins_are_refused(origin: str) -> None:
    with pytest.raises(ConfigError, match="allowedOrigins"):
        LivenessConfig(allowed_origins=(origin,))


def test_an_empty_allow_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one origin"):
        LivenessConfig(allowed_origins=())


@pytest.mark.parametrize(
    ("tuning", "complaint"),
    [
        ({"EXPRESSION_MAX_ANGLE_DEGREES": "20"}, "EXPRESSION_MAX_ANGLE"),  # an expression frame could pass a tilt
        ({"TURN_YAW_DEGREES": "15", "TILT_PITCH_DEGREES": "15"}, "OFF_AXIS"),  # a turn frame could pass a tilt
        ({"SESSION_MAX_FRAMES": "500"}, "SESSION_MAX_FRAMES"),  # the item would outgrow DynamoDB's 400 KB
        ({"STEP_COUNT": "9"}, "STEP_COUNT"),
        ({"TURN_YAW_DEGREES": "many"}, "sessionTuning"),
        ({"MAX_FAILED_SESSIONS": "0"}, "MAX_FAILED_SESSIONS"),  # the attempt limits: at least 1 each
    ],
)
def test_tuning_is_checked_by_the_functions_own_rules_at_synth(tuning: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        LivenessConfig(allowed_origins=("https://kyc.example.com",), session_tuning=tuning)


def test_sound_tuning_is_accepted() -> None:
    tuning = {"TURN_YAW_DEGREES": "30", "STEP_COUNT": "4", "MIN_SIMILARITY": "95", "MAX_OPEN_SESSIONS": "2"}
    assert LivenessConfig(allowed_origins=("https://kyc.example.com",), session_tuning=tuning).session_tuning == tuning


@pytest.mark.parametrize(
    "name",
    [
        "",
        "kyc/opencv-layer/arn",  # not fully qualified: consumers could not name it the same way
        "/kyc liveness/arn",
        "/kyc/opencv-layer/arn/",
        "/aws/opencv-layer/arn",  # reserved prefixes
        "/SSM/opencv-layer/arn",
        "/a" * 16,  # more than 15 levels
    ],
)
def test_unusable_parameter_names_stop_the_synth(name: str) -> None:
    with pytest.raises(ConfigError, match="layerArnParameter"):
        LivenessConfig(allowed_origins=("https://kyc.example.com",), layer_arn_parameter=name)


def test_a_parameter_name_per_deployment_is_accepted() -> None:
    # Two copies of the stack in one account and region need two names: SSM names are unique there.
    config = LivenessConfig(
        allowed_origins=("https://kyc.example.com",), layer_arn_parameter="/kyc-staging/layer_v2.arn"
    )
    assert config.layer_arn_parameter == "/kyc-staging/layer_v2.arn"


@pytest.mark.parametrize("reserved", [-1, 1001])
def test_reserved_concurrency_is_bounded(reserved: int) -> None:
    with pytest.raises(ConfigError, match="reservedConcurrency"):
        LivenessConfig(allowed_origins=("https://kyc.example.com",), reserved_concurrency=reserved)


@pytest.mark.parametrize("timeout", [0, 30, 900])
def test_the_function_timeout_fits_api_gateways_29_seconds(timeout: int) -> None:
    with pytest.raises(ConfigError, match="timeoutSeconds"):
        LivenessConfig(allowed_origins=("https://kyc.example.com",), timeout_seconds=timeout)


@pytest.mark.parametrize("mode", ["enforce", "shadow", "off"])
def test_the_light_challenge_modes_are_accepted(mode: str) -> None:
    assert LivenessConfig(allowed_origins=("https://kyc.example.com",), light_challenge=mode).light_challenge == mode


def test_the_light_challenge_defaults_to_enforce_and_refuses_other_modes() -> None:
    assert LivenessConfig(allowed_origins=("https://kyc.example.com",)).light_challenge == "enforce"
    with pytest.raises(ConfigError, match="lightChallenge"):
        LivenessConfig(allowed_origins=("https://kyc.example.com",), light_challenge="sometimes")


def test_the_cdk_light_modes_are_the_runtimes() -> None:
    from liveness.light.mode import LIGHT_MODES

    from cdk_app.config import LIGHT_CHALLENGE_MODES

    assert LIGHT_CHALLENGE_MODES == LIGHT_MODES


def test_light_tuning_is_checked_by_the_functions_own_rules_at_synth() -> None:
    with pytest.raises(ConfigError, match="LIGHT_MIN_CORRELATION"):
        LivenessConfig(allowed_origins=("https://kyc.example.com",), session_tuning={"LIGHT_MIN_CORRELATION": "3"})
