"""The session state machine. Pure: every function takes the state and ``now`` and returns a new state.
Lifecycle, frame reservation and settling: docs/sessions.md (closing rules, concurrency).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..challenges import Baseline, Measured, ReasonCode, StepCode, Thresholds
from ..faces import FaceComparison
from ..light.decision import LightThresholds
from ..light.mode import OFF
from ..limits import SessionLimits
from .chain import with_awaiting, with_verified
from .model import (
    Confirmation,
    FailureReason,
    FrameEvaluation,
    FrameRecord,
    PendingFrame,
    SamePersonCheck,
    Session,
    SessionStatus,
    Step,
    StepStatus,
    Verdict,
)


def new_session(
    session_id: str,
    owner: str,
    steps: tuple[StepCode, ...],
    *,
    mirrored: bool,
    analyzer: str,
    now: datetime,
    limits: SessionLimits,
    thresholds: Thresholds | None = None,
    light_mode: str = OFF,
    light_thresholds: LightThresholds | None = None,
) -> Session:
    return Session(
        session_id=session_id,
        owner=owner,
        steps=tuple(Step(code=code) for code in steps),
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=limits.session_ttl_seconds),
        mirrored=mirrored,
        analyzer=analyzer,
        limits=limits,
        thresholds=thresholds,
        light_mode=light_mode,
        light_thresholds=light_thresholds,
    )


def close_if_due(session: Session, now: datetime) -> Session:
    """EXPIRED past the session deadline, FAILED past the current step's time limit; else unchanged."""
    if not session.is_open:
        return session
    if now >= session.expires_at:
        return _bumped(_close(session, SessionStatus.EXPIRED, FailureReason.SESSION_EXPIRED, now), now)
    started = session.step.started_at
    if started is not None and now - started > timedelta(seconds=session.limits.step_time_limit_seconds):
        return _bumped(_close(session, SessionStatus.FAILED, FailureReason.STEP_TIMEOUT, now), now)
    return session


def reserve_frame(session: Session, now: datetime, frame: PendingFrame | None = None) -> tuple[Session, bool]:
    """Take one frame slot before the frame is analysed: ``(new state, True)``.

    ``(state, False)`` when the frame must not be analysed: the session is closed, a deadline has passed (the
    state returned is then the closed one, to be saved), or every slot of the session or of the current step is
    taken (by frames judged or still being analysed). The step timer of step 0 starts here, with the first
    frame's arrival."""
    due = close_if_due(session, now)
    if due is not session or not session.is_open or out_of_frames(session):
        return due, False
    step = replace(
        session.step, started_at=session.step.started_at or now, frames_received=session.step.frames_received + 1
    )
    pending = session.pending + ((replace(frame, step_index=session.current_step),) if frame is not None else ())
    reserved = _with_step(replace(session, frames_received=session.frames_received + 1, pending=pending), step)
    return _bumped(reserved, now), True


def out_of_frames(session: Session) -> bool:
    """Every frame slot of the session, or of its current step, is reserved."""
    limits = session.limits
    return session.frames_received >= limits.max_frames or session.step.frames_received >= limits.step_max_frames


def is_repeated(session: Session, sha256: str | None) -> bool:
    """The same upload bytes as a frame this session already judged (a frame NOT_JUDGED may be resent)."""
    return sha256 is not None and any(
        frame.sha256 == sha256 and frame.reason is not ReasonCode.NOT_JUDGED for frame in session.frames
    )


def settle_frame(
    session: Session, evaluation: FrameEvaluation, now: datetime, min_similarity: float
) -> tuple[Session, FrameRecord]:
    """Log a reserved frame's verdict in the fresh state: applied to the session if it is still open, else
    recorded as SESSION_CLOSED (it was analysed and archived, so the audit record must show it)."""
    if session.frames_received <= len(session.frames):
        raise ValueError("a frame must reserve its slot before it is settled")
    if session.is_open:
        due = close_if_due(session, now)
        if due is session:
            if evaluation.reason is ReasonCode.NOT_JUDGED:
                return _log_only(session, evaluation, ReasonCode.NOT_JUDGED, None, now)
            return apply_frame(session, evaluation, now, min_similarity)
        session = due
    reason = ReasonCode.NOT_JUDGED if evaluation.reason is ReasonCode.NOT_JUDGED else ReasonCode.SESSION_CLOSED
    similarity = evaluation.comparison.similarity if evaluation.comparison is not None else None
    return _log_only(session, evaluation, reason, similarity, now)


def _log_only(
    session: Session, evaluation: FrameEvaluation, reason: ReasonCode, similarity: float | None, now: datetime
) -> tuple[Session, FrameRecord]:
    code = session.steps[evaluation.step_index].code
    return _finish_frame(session, _record(evaluation, code, reason, similarity, now), now)


def apply_frame(
    session: Session, evaluation: FrameEvaluation, now: datetime, min_similarity: float
) -> tuple[Session, FrameRecord]:
    """The next state after one analysed frame whose slot ``reserve_frame`` took. The caller has applied
    ``close_if_due`` first."""
    if not session.is_open:
        raise ValueError("a closed session takes no frames")
    if evaluation.step_index > session.current_step:
        raise ValueError("the frame was evaluated against a step that is not current yet")
    if evaluation.step_index < session.current_step:
        return _apply_superseded(session, evaluation, now, min_similarity)
    step = replace(session.step, started_at=session.step.started_at or now, attempts=session.step.attempts + 1)
    session = _with_step(session, step)
    reason, similarity = _frame_reason(session, evaluation, min_similarity)
    if reason is None:
        session = _accept(session, evaluation, now)
    elif _verified_in_transit(evaluation, reason, min_similarity):
        session = _count_comparison(session, evaluation.comparison)
        session = with_verified(session, evaluation.frame_id, evaluation.movement or Measured(), evaluation.link, now)
        confirmed = _confirmed_awaiting(session, evaluation, min_similarity)
        if confirmed is not None:  # a far frame of the step, the same person after all: the step is done
            reason = None
            session = _complete_step(replace(session, comparisons=session.comparisons + 1), confirmed.frame_id, now)
        else:
            session = _with_step(session, replace(session.step, reason=reason.value))
    elif reason is ReasonCode.FACE_MISMATCH:
        session = _with_step(session, replace(session.step, reason=reason.value))
        session = _fail_mismatch(session, now)
    elif reason is ReasonCode.FACE_NOT_COMPARABLE and _not_comparable_count(session) + 1 >= _not_comparable_limit(
        session
    ):
        session = _with_step(session, replace(session.step, reason=reason.value))
        session = replace(session, same_person_check=SamePersonCheck.FAILED)
        session = _close(session, SessionStatus.FAILED, FailureReason.SAME_PERSON_UNVERIFIED, now)
    else:
        session = _with_step(session, replace(session.step, reason=reason.value))
        if reason is ReasonCode.FACE_NOT_COMPARABLE and evaluation.awaiting:
            session = with_awaiting(session, evaluation.frame_id, evaluation.movement or Measured(), now)
    return _finish_frame(session, _record(evaluation, step.code, reason, similarity, now), now)


def _apply_superseded(
    session: Session, evaluation: FrameEvaluation, now: datetime, min_similarity: float
) -> tuple[Session, FrameRecord]:
    """A frame answering a step another frame already completed: recorded, never accepted for a later step.

    It was analysed, so it took a frame slot; it is no attempt at the current step. A comparison it
    carries that shows another person still fails the session: a swap is a swap, whatever the step."""
    comparison = evaluation.comparison
    if (
        comparison is not None
        and comparison.similarity is not None
        and comparison.similarity < min_similarity
        and _reliable(evaluation)
    ):
        reason, similarity = ReasonCode.FACE_MISMATCH, comparison.similarity
        session = _fail_mismatch(session, now)
    else:  # the score is kept: a swap attempt beyond the comparison range stays in the audit record
        reason = ReasonCode.STEP_ALREADY_COMPLETED
        similarity = comparison.similarity if comparison is not None else None
    code = session.steps[evaluation.step_index].code
    return _finish_frame(session, _record(evaluation, code, reason, similarity, now), now)


def _verified_in_transit(evaluation: FrameEvaluation, reason: ReasonCode, min_similarity: float) -> bool:
    """A head movement on its way, not meeting the step yet, shown to be the same person: a link for later."""
    comparison = evaluation.comparison
    return (
        evaluation.transit
        and evaluation.chained
        and reason is ReasonCode.POSE_NOT_MET
        and comparison is not None
        and comparison.similarity is not None
        and comparison.similarity >= min_similarity
    )


def _confirmed_awaiting(session: Session, evaluation: FrameEvaluation, min_similarity: float) -> Confirmation | None:
    """The awaiting far frame this verified frame matched, if it still awaits in the current step."""
    confirmation = evaluation.confirmation
    if confirmation is None or confirmation.similarity < min_similarity:
        return None
    waiting = any(
        frame.frame_id == confirmation.frame_id and frame.step_index == session.current_step
        for frame in session.awaiting
    )
    return confirmation if waiting else None


def _not_comparable_count(session: Session) -> int:
    return sum(frame.reason is ReasonCode.FACE_NOT_COMPARABLE for frame in session.frames)


def _not_comparable_limit(session: Session) -> float:
    """MAX_NOT_COMPARABLE as stored with the session (``Thresholds.from_json`` lifts it for sessions stored before
    it existed); the default for an item stored before thresholds were kept at all."""
    return (session.thresholds or Thresholds()).max_not_comparable


def _fail_mismatch(session: Session, now: datetime) -> Session:
    session = replace(session, same_person_check=SamePersonCheck.FAILED, comparisons=session.comparisons + 1)
    return _close(session, SessionStatus.FAILED, FailureReason.FACE_MISMATCH, now)


def _finish_frame(session: Session, record: FrameRecord, now: datetime) -> tuple[Session, FrameRecord]:
    """Append to the bounded frame log, apply the frame budgets, bump the version.

    A budget closes the session when every slot of the session (or of the still current step) is taken and this
    was the last of them to settle, so the frame that settles last is answered normally (and may still pass)."""
    frames = (session.frames + (record,))[-session.limits.max_frames :]
    pending = tuple(frame for frame in session.pending if frame.frame_id != record.frame_id)
    session = replace(session, frames=frames, pending=pending)
    if session.is_open and out_of_frames(session) and session.settled:
        session = _close(session, SessionStatus.FAILED, FailureReason.ATTEMPT_LIMIT, now)
    return _bumped(session, now), record


def _frame_reason(
    session: Session, evaluation: FrameEvaluation, min_similarity: float
) -> tuple[ReasonCode | None, float | None]:
    if evaluation.reason is not None:
        return _in_transit_reason(evaluation, min_similarity)
    if is_repeated(session, evaluation.sha256):  # an identical upload judged since this one's analysis began
        return ReasonCode.REPEATED_FRAME, None
    if session.reference_frame_id is None:
        return None, None  # this frame becomes the reference face
    if evaluation.comparison is None:
        raise ValueError("a frame that meets a step after the first must carry a face comparison")
    similarity = evaluation.comparison.similarity
    if similarity is not None and similarity < min_similarity:
        return (ReasonCode.FACE_MISMATCH if _reliable(evaluation) else ReasonCode.FACE_NOT_COMPARABLE), similarity
    return None, similarity


def _in_transit_reason(evaluation: FrameEvaluation, min_similarity: float) -> tuple[ReasonCode, float | None]:
    """A frame that did not meet its step keeps its reason, unless it was compared on its way (transit) and
    the reliable comparison shows another person: a swap is a swap, whatever the pose rules say."""
    assert evaluation.reason is not None
    comparison = evaluation.comparison
    if comparison is None or comparison.similarity is None:
        return evaluation.reason, None
    if comparison.similarity < min_similarity and _reliable(evaluation):
        return ReasonCode.FACE_MISMATCH, comparison.similarity
    return evaluation.reason, comparison.similarity


def _reliable(evaluation: FrameEvaluation) -> bool:
    """A low score means another person only against the reference within the comparison range: a link
    between two frames far from frontal can score low for the same person (looking up, 59 at 3 degrees apart)."""
    return evaluation.comparable and evaluation.link is None


def _accept(session: Session, evaluation: FrameEvaluation, now: datetime) -> Session:
    session = _count_comparison(session, evaluation.comparison)
    if session.reference_frame_id is None:
        session = replace(session, reference_frame_id=evaluation.frame_id)
    if session.step.code is StepCode.LOOK_STRAIGHT:
        screened = evaluation.screen_measured
        session = replace(
            session,
            baseline=Baseline.of(evaluation.measured),
            screen_baseline=Baseline.of(screened) if screened is not None else None,
        )
    return _complete_step(session, evaluation.frame_id, now)


def _complete_step(session: Session, frame_id: str, now: datetime) -> Session:
    """The current step PASSED with this frame; the session moves to the next step, or passes."""
    done = replace(session.step, status=StepStatus.PASSED, completed_at=now, frame_id=frame_id, reason=None)
    session = _with_step(session, done)
    if session.current_step + 1 == len(session.steps):
        return _pass(session, now)
    following = replace(session.steps[session.current_step + 1], started_at=now)
    # A step's verified and awaiting frames link only that step's frames: the next one starts its own chain.
    return _with_step(replace(session, current_step=session.current_step + 1, verified=(), awaiting=()), following)


def _count_comparison(session: Session, comparison: FaceComparison | None) -> Session:
    if comparison is None:
        return session
    if comparison.available:
        return replace(session, comparisons=session.comparisons + 1)
    # Sticky: one comparison the analyzer could not make means the session cannot claim "same person".
    return replace(session, same_person_check=SamePersonCheck.NOT_PERFORMED)


def _pass(session: Session, now: datetime) -> Session:
    check = session.same_person_check
    if check is SamePersonCheck.PENDING:
        check = SamePersonCheck.PASSED if session.comparisons > 0 else SamePersonCheck.NOT_PERFORMED
    return replace(session, status=SessionStatus.PASSED, same_person_check=check, closed_at=now, updated_at=now)


def fail_session(session: Session, reason: FailureReason, now: datetime) -> Session:
    """The session FAILED for ``reason`` at its current step (not bumped: the caller's transition is)."""
    return _close(session, SessionStatus.FAILED, reason, now)


def _close(session: Session, status: SessionStatus, reason: FailureReason, now: datetime) -> Session:
    failed_step = replace(session.step, status=StepStatus.FAILED, completed_at=now, reason=reason.value)
    return replace(_with_step(session, failed_step), status=status, failure_reason=reason, closed_at=now)


def _bumped(session: Session, now: datetime) -> Session:
    return replace(session, version=session.version + 1, updated_at=now)


def _with_step(session: Session, step: Step) -> Session:
    steps = list(session.steps)
    steps[session.current_step] = step
    return replace(session, steps=tuple(steps))


def _record(
    evaluation: FrameEvaluation, code: StepCode, reason: ReasonCode | None, similarity: float | None, now: datetime
) -> FrameRecord:
    return FrameRecord(
        frame_id=evaluation.frame_id,
        received_at=now,
        step_index=evaluation.step_index,
        step_code=code,
        verdict=Verdict.ACCEPTED if reason is None else Verdict.REJECTED,
        reason=reason,
        measured=_measured_json(evaluation),
        similarity=similarity,
        mirrored=evaluation.mirrored,
        frame_key=evaluation.frame_key,
        sha256=evaluation.sha256,
        link=evaluation.link,
        confirms=evaluation.confirmation if reason is None else None,
        judged_by=evaluation.judged_by,
    )


def _measured_json(evaluation: FrameEvaluation) -> dict[str, Any]:
    """The measured values; with a baseline, also the movement from it, which is what the step rules judged."""
    measured: dict[str, Any] = evaluation.measured.to_json()
    if evaluation.light is not None:
        measured["light"] = evaluation.light
    if evaluation.movement is not None:
        movement = evaluation.movement.to_json()
        measured["movement"] = {axis: movement[axis] for axis in ("yaw", "pitch", "roll")}
    return measured
