"""The light step's transitions (pure, like transitions.py): open a challenge, settle its batch, let it expire.

A challenge is single use: every batch judged against it, and every expiry, closes it and uses one of
LIGHT_MAX_ATTEMPTS. The protocol and the decision: docs/sessions.md ("The light step").
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ..challenges import StepCode
from ..light.sequence import LightSequence
from .model import FailureReason, FrameEvaluation, FrameRecord, LightAttempt, LightChallenge, Session, Verdict
from .transitions import close_if_due, fail_session, settle_frame

# A batch may arrive this long after the sequence's last colour: the upload of 12 small JPEGs on a slow link.
SUBMIT_MARGIN_SECONDS = 5
EXPIRED = "EXPIRED"  # a LightAttempt outcome: no batch before ``submit_by``


def light_start_problem(session: Session) -> str | None:
    """Why a light challenge cannot start now (a 409), or None."""
    if session.step.code is not StepCode.FOLLOW_LIGHT:
        return f"The current step is {session.step.code.value}, not FOLLOW_LIGHT: no light challenge now."
    if session.light_challenge is not None:
        return "A light challenge is already running: send its frames (or wait until it expires)."
    return None


def open_light(session: Session, sequence: LightSequence, now: datetime) -> Session:
    """Store the drawn sequence as the open challenge; the step's timer restarts at the reveal."""
    if light_start_problem(session) is not None or not session.is_open:
        raise ValueError("no light challenge can start now")
    challenge = LightChallenge(
        sequence=sequence,
        revealed_at=now,
        submit_by=now + timedelta(milliseconds=sequence.total_ms, seconds=SUBMIT_MARGIN_SECONDS),
        attempt=len(session.light_attempts) + 1,
    )
    session = _with_current_step_started(replace(session, light_challenge=challenge), now)
    return replace(session, version=session.version + 1, updated_at=now)


def expire_light(session: Session, challenge_id: str, now: datetime) -> Session:
    """A batch came after ``submit_by``: the challenge is used up (an attempt), and may fail the session."""
    due = close_if_due(session, now)
    if due is not session or not _is_open_challenge(session, challenge_id):
        return due
    assert session.light_challenge is not None
    attempt = LightAttempt(challenge_id, session.light_challenge.attempt, EXPIRED, False, now)
    session = _after_attempt(session, attempt, now)
    return replace(session, version=session.version + 1, updated_at=now)


def settle_light(
    session: Session, evaluation: FrameEvaluation, challenge_id: str, outcome: str, now: datetime, min_similarity: float
) -> tuple[Session, FrameRecord]:
    """Log the batch's verdict (settle_frame: the same budgets, comparison and closing rules as a frame), then
    close the challenge it answered and count the attempt."""
    session, record = settle_frame(session, evaluation, now, min_similarity)
    if not _is_open_challenge(session, challenge_id):
        return session, record
    assert session.light_challenge is not None
    accepted = record.verdict is Verdict.ACCEPTED
    attempt = LightAttempt(challenge_id, session.light_challenge.attempt, outcome, accepted, now)
    return _after_attempt(session, attempt, now), record


def light_failure(attempts: tuple[LightAttempt, ...]) -> FailureReason:
    followed_not = any(attempt.outcome == FailureReason.LIGHT_NOT_FOLLOWED.value for attempt in attempts)
    return FailureReason.LIGHT_NOT_FOLLOWED if followed_not else FailureReason.LIGHT_UNVERIFIED


def _after_attempt(session: Session, attempt: LightAttempt, now: datetime) -> Session:
    session = replace(session, light_challenge=None, light_attempts=session.light_attempts + (attempt,))
    if attempt.accepted or not session.is_open or session.step.code is not StepCode.FOLLOW_LIGHT:
        return session
    failed = [item for item in session.light_attempts if not item.accepted]
    if len(failed) >= session.limits.light_max_attempts:
        return fail_session(session, light_failure(session.light_attempts), now)
    return _with_current_step_started(session, now)  # the person gets the step's whole time to try again


def _is_open_challenge(session: Session, challenge_id: str) -> bool:
    return session.light_challenge is not None and session.light_challenge.sequence.challenge_id == challenge_id


def _with_current_step_started(session: Session, now: datetime) -> Session:
    steps = list(session.steps)
    steps[session.current_step] = replace(session.step, started_at=now)
    return replace(session, steps=tuple(steps))
