"""The web client coaches every reason code a frame answer can carry, in its own words."""

from __future__ import annotations

import re
from pathlib import Path

from liveness.challenges import ReasonCode

MESSAGES = Path(__file__).resolve().parents[2] / "web" / "messages.js"
# Frame-log only: the request that carries them is answered with an error (409 or 503), never a frame answer.
NOT_ANSWERED = {ReasonCode.SESSION_CLOSED, ReasonCode.NOT_JUDGED}


def _keys(table: str) -> set[str]:
    body = re.search(rf"const {table} = \{{(.*?)\n\}};", MESSAGES.read_text(), re.S)
    assert body, f"{table} not found in web/messages.js"
    return set(re.findall(r"^\s+([A-Z_]+):", body.group(1), re.M))


def test_every_reason_code_has_coaching() -> None:
    coached = _keys("COACHING") | ({"POSE_NOT_MET"} if _keys("POSE_COACHING") else set())
    expected = {code.value for code in ReasonCode} - {code.value for code in NOT_ANSWERED}
    assert expected <= coached, sorted(expected - coached)


def test_pose_coaching_names_every_head_step() -> None:
    from liveness.challenges import HEAD_MOVEMENTS, StepCode

    assert {code.value for code in (StepCode.LOOK_STRAIGHT, *HEAD_MOVEMENTS)} <= _keys("POSE_COACHING")


def test_every_failure_reason_is_explained() -> None:
    from liveness.sessions.model import FailureReason

    assert {reason.value for reason in FailureReason} <= _keys("FAILURES")
