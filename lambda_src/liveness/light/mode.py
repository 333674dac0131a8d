"""The light challenge's modes (LIGHT_CHALLENGE, CDK context ``liveness:lightChallenge``)."""

from __future__ import annotations

ENFORCE = "enforce"  # the step must pass: a response that does not follow fails it
SHADOW = "shadow"  # measured and recorded, the step passes whatever the verdict (except another person)
OFF = "off"  # no light step
LIGHT_MODES = (ENFORCE, SHADOW, OFF)
DEFAULT_MODE = ENFORCE
