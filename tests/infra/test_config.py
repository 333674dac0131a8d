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
