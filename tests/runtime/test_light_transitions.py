"""The light step's pure transitions: a challenge is single use, each non-pass uses an attempt, the last one fails
the session with the reason that says what happened."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from liveness.challenges import Measured, ReasonCode, StepCode, challenge
from liveness.faces import FaceComparison
from liveness.light.sequence import draw_sequence
from liveness.limits import SessionLimits
from liveness.sessions.codec import session_from_dict, session_to_dict
from liveness.sessions.light_transitions import (
    EXPIRED,
    expire_light,
    light_start_problem,
    open_light,
    settle_light,
)
from liveness.sessions.model import FailureReason, FrameEvaluation, Session, SessionStatus
from liveness.sessions.transitions import new_session, reserve_frame

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)


def at_light_step() -> Session:
    steps = challenge((StepCode.TURN_LEFT, StepCode.SMILE), light=True)
    session = new_session(
        "s", "o", steps, mirrored=False, analyzer="a", now=NOW, limits=SessionLimits(), light_mode="enforce"
    )
    done = replace(session.steps[0], status=session.steps[0].status.PASSED)
    return replace(session, steps=(done, *session.steps[1:]), current_step=1, reference_frame_id="ref")


def batch(session: Session, reason: ReasonCode | None, similarity: float = 99.0) -> FrameEvaluation:
    return FrameEvaluation(
        frame_id="b" + str(session.frames_received),
        step_index=session.current_step,
        reason=reason,
        measured=Measured(),
        mirrored=False,
        frame_key="k",
        comparison=FaceComparison(similarity=similarity, method="test"),
        light={"outcome": reason.value if reason else "PASSED"},
    )


def attempt(session: Session, reason: ReasonCode | None, now: datetime, similarity: float = 99.0) -> Session:
    sequence = draw_sequence()
    session = open_light(session, sequence, now)
    session, _ = reserve_frame(session, now)
    outcome = reason.value if reason else "PASSED"
    session, _record = settle_light(
        session, batch(session, reason, similarity), sequence.challenge_id, outcome, now, 90.0
    )
    return session


def test_opening_stores_the_sequence_restarts_the_timer_and_blocks_a_second_start() -> None:
    session = at_light_step()
    assert light_start_problem(session) is None
    sequence = draw_sequence()
    later = NOW + timedelta(seconds=3)
    opened = open_light(session, sequence, later)
    assert opened.light_challenge is not None and opened.light_challenge.sequence == sequence
    assert opened.step.started_at == later and opened.light_challenge.attempt == 1
    assert opened.light_challenge.submit_by == later + timedelta(milliseconds=sequence.total_ms, seconds=5)
    assert "already running" in (light_start_problem(opened) or "")
    assert session_from_dict(session_to_dict(opened)) == opened  # the open challenge survives the store


def test_no_light_challenge_outside_the_light_step() -> None:
    session = replace(at_light_step(), current_step=0)
    assert "LOOK_STRAIGHT" in (light_start_problem(session) or "")
    with pytest.raises(ValueError):
        open_light(session, draw_sequence(), NOW)


def test_a_passing_batch_moves_on_and_closes_the_challenge() -> None:
    session = attempt(at_light_step(), None, NOW)
    assert session.current_step == 2 and session.light_challenge is None
    assert [(a.outcome, a.accepted) for a in session.light_attempts] == [("PASSED", True)]


def test_a_rejected_batch_uses_an_attempt_and_the_last_one_fails_the_session() -> None:
    session = attempt(at_light_step(), ReasonCode.LIGHT_TOO_BRIGHT, NOW)
    assert session.is_open and session.current_step == 1 and session.light_challenge is None
    later = NOW + timedelta(seconds=6)
    session = attempt(session, ReasonCode.LIGHT_NOT_FOLLOWED, later)
    assert (session.status, session.failure_reason) == (SessionStatus.FAILED, FailureReason.LIGHT_NOT_FOLLOWED)
    assert [a.attempt for a in session.light_attempts] == [1, 2]


def test_attempts_that_could_not_be_judged_fail_as_unverified() -> None:
    session = attempt(at_light_step(), ReasonCode.LIGHT_FACE_MOVED, NOW)
    assert session.step.started_at == NOW  # the person gets the step's whole time again
    session = attempt(session, ReasonCode.NO_FACE, NOW + timedelta(seconds=1))
    assert session.failure_reason is FailureReason.LIGHT_UNVERIFIED


def test_another_person_fails_the_session_at_once() -> None:
    session = attempt(at_light_step(), None, NOW, similarity=20.0)
    assert session.failure_reason is FailureReason.FACE_MISMATCH


def test_an_expired_challenge_is_an_attempt() -> None:
    sequence = draw_sequence()
    opened = open_light(at_light_step(), sequence, NOW)
    expired = expire_light(opened, sequence.challenge_id, NOW + timedelta(seconds=9))
    assert expired.light_challenge is None and [a.outcome for a in expired.light_attempts] == [EXPIRED]
    assert expire_light(expired, sequence.challenge_id, NOW + timedelta(seconds=9)) is expired  # once only
    again = open_light(expired, draw_sequence(), NOW + timedelta(seconds=9))
    assert again.light_challenge is not None and again.light_challenge.attempt == 2
