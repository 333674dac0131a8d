"""The session state machine. Pure: every function takes the state and ``now`` and returns a new state.

No clock, no storage, no analyzer here; that is what lets tests cover timeouts, races and replays
without sleeping. Each transition returns a copy with ``version + 1``; the store saves it only if the
stored version is still the one the transition started from.

Lifecycle: IN_PROGRESS -> PASSED | FAILED | EXPIRED, and the last three are final.
- EXPIRED: ``now >= expires_at`` (the whole session took too long).
- FAILED: the current step timed out (STEP_TIMEOUT), the session's or the current step's frame budget was used
  up (ATTEMPT_LIMIT), or a later frame showed a different person than the reference face (FACE_MISMATCH).

Step 0 is the neutral start (LOOK_STRAIGHT): its accepted frame becomes the reference face and its pose the
``baseline`` every later step is measured from.

A frame takes two transitions. ``reserve_frame`` takes one of the session's ``max_frames`` slots BEFORE any
analysis (so the cap bounds the analyzer calls and the archive, even for frames sent in parallel);
``settle_frame`` then logs its verdict. A frame is judged once, against the step that was current when it
arrived. If another frame completed that step first, this one is recorded as REJECTED (STEP_ALREADY_COMPLETED)
and never counts for the next step: one upload can advance at most one step. If the session closed meanwhile,
the frame is still logged (SESSION_CLOSED), so every analysed (and archived) frame is in the frame log.

``frames_received`` counts reserved slots; ``frames`` logs settled frames. The session is ``settled`` when
every reserved frame is logged: only then is a closed session's audit record written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from ..challenges import INSTRUCTIONS, Baseline, Measured, ReasonCode, StepCode, Thresholds
from ..faces import FaceComparison
from ..limits import SessionLimits


class SessionStatus(str, Enum):
    IN_PROGRESS = "IN_PROGRESS"
    PASSED = "PASSED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class StepStatus(str, Enum):
    PENDING = "PENDING"
    PASSED = "PASSED"
    FAILED = "FAILED"


class FailureReason(str, Enum):
    SESSION_EXPIRED = "SESSION_EXPIRED"
    STEP_TIMEOUT = "STEP_TIMEOUT"
    ATTEMPT_LIMIT = "ATTEMPT_LIMIT"
    FACE_MISMATCH = "FACE_MISMATCH"
    # Too many frames met their step but could not be compared with the reference (FACE_NOT_COMPARABLE).
    SAME_PERSON_UNVERIFIED = "SAME_PERSON_UNVERIFIED"


class SamePersonCheck(str, Enum):
    PENDING = "pending"  # no comparison yet
    PASSED = "passed"  # every comparison reached the similarity threshold
    FAILED = "failed"  # a comparison fell below it (the session failed)
    NOT_PERFORMED = "not_performed"  # the analyzer could not compare at least once: never a silent pass


class Verdict(str, Enum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Step:
    code: StepCode
    status: StepStatus = StepStatus.PENDING
    started_at: datetime | None = None  # when the step became current (step 0: at the first frame)
    completed_at: datetime | None = None
    attempts: int = 0
    frames_received: int = 0  # frame slots reserved while this step was current (its share of the budget)
    frame_id: str | None = None  # the accepted frame
    reason: str | None = None  # last rejection reason, or the failure reason


@dataclass(frozen=True)
class PendingFrame:
    """A reserved frame not settled yet: what its request will archive it under, so that if the request dies, the
    repair can log the frame with its archive key (the upload may already be in the archive)."""

    frame_id: str
    frame_key: str
    step_index: int


@dataclass(frozen=True)
class FrameRecord:
    """One analysed frame, as kept in the session's bounded frame log and the audit record."""

    frame_id: str
    received_at: datetime
    step_index: int
    step_code: StepCode
    verdict: Verdict
    reason: ReasonCode | None
    measured: dict[str, Any]
    similarity: float | None
    mirrored: bool
    frame_key: str  # where the uploaded frame is archived ("" if it never was: a frame not judged)
    sha256: str | None = None  # hex digest of the upload's bytes: REPEATED_FRAME; never the image itself


@dataclass(frozen=True)
class Session:
    session_id: str
    owner: str
    steps: tuple[Step, ...]
    created_at: datetime
    expires_at: datetime
    mirrored: bool
    analyzer: str
    limits: SessionLimits
    status: SessionStatus = SessionStatus.IN_PROGRESS
    current_step: int = 0
    version: int = 1
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    frames_received: int = 0
    frames: tuple[FrameRecord, ...] = field(default_factory=tuple)
    reference_frame_id: str | None = None
    comparisons: int = 0
    same_person_check: SamePersonCheck = SamePersonCheck.PENDING
    failure_reason: FailureReason | None = None
    # Set (on a closed session only) once the audit record is known to exist, so reads stop re-writing it.
    audit_written: bool = False
    # The thresholds in force when the session was created: every frame is judged with them and the audit
    # record carries them. None only for items stored before they were kept (the caller's settings then apply).
    thresholds: Thresholds | None = None
    # The person's own straight pose, from the accepted neutral frame; later steps are measured from it.
    baseline: Baseline | None = None
    # Reserved frames whose verdict is not logged yet (at most the frames in flight); see PendingFrame.
    pending: tuple[PendingFrame, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status is SessionStatus.IN_PROGRESS

    @property
    def settled(self) -> bool:
        """Every reserved frame has its verdict logged (none is still being analysed)."""
        return len(self.frames) >= self.frames_received

    @property
    def step(self) -> Step:
        return self.steps[self.current_step]


@dataclass(frozen=True)
class FrameEvaluation:
    """What the rules found in one frame against the step current when it arrived (computed by the service).

    ``comparison`` is set only when the frame met the step and the session already has a reference face;
    ``comparable`` says whether the frame's pose is close enough to the baseline for a low similarity to mean
    another person (``challenges.comparison_reliable``).
    """

    frame_id: str
    step_index: int
    reason: ReasonCode | None
    measured: Measured
    mirrored: bool
    frame_key: str
    comparison: FaceComparison | None = None
    sha256: str | None = None
    comparable: bool = True
    movement: Measured | None = None  # ``measured`` relative to the baseline (None before the baseline is set)


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
        and evaluation.comparable
    ):
        reason, similarity = ReasonCode.FACE_MISMATCH, comparison.similarity
        session = _fail_mismatch(session, now)
    else:  # the score is kept: a swap attempt beyond the comparison range stays in the audit record
        reason = ReasonCode.STEP_ALREADY_COMPLETED
        similarity = comparison.similarity if comparison is not None else None
    code = session.steps[evaluation.step_index].code
    return _finish_frame(session, _record(evaluation, code, reason, similarity, now), now)


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
        return evaluation.reason, None
    if is_repeated(session, evaluation.sha256):  # an identical upload judged since this one's analysis began
        return ReasonCode.REPEATED_FRAME, None
    if session.reference_frame_id is None:
        return None, None  # this frame becomes the reference face
    if evaluation.comparison is None:
        raise ValueError("a frame that meets a step after the first must carry a face comparison")
    similarity = evaluation.comparison.similarity
    if similarity is not None and similarity < min_similarity:
        return (ReasonCode.FACE_MISMATCH if evaluation.comparable else ReasonCode.FACE_NOT_COMPARABLE), similarity
    return None, similarity


def _accept(session: Session, evaluation: FrameEvaluation, now: datetime) -> Session:
    done = replace(session.step, status=StepStatus.PASSED, completed_at=now, frame_id=evaluation.frame_id, reason=None)
    session = _with_step(session, done)
    session = _count_comparison(session, evaluation.comparison)
    if session.reference_frame_id is None:
        session = replace(session, reference_frame_id=evaluation.frame_id)
    if done.code is StepCode.LOOK_STRAIGHT:
        session = replace(session, baseline=Baseline.of(evaluation.measured))
    if session.current_step + 1 == len(session.steps):
        return _pass(session, now)
    following = replace(session.steps[session.current_step + 1], started_at=now)
    return _with_step(replace(session, current_step=session.current_step + 1), following)


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
    )


def _measured_json(evaluation: FrameEvaluation) -> dict[str, Any]:
    """The measured values; with a baseline, also the movement from it, which is what the step rules judged."""
    measured: dict[str, Any] = evaluation.measured.to_json()
    if evaluation.movement is not None:
        movement = evaluation.movement.to_json()
        measured["movement"] = {axis: movement[axis] for axis in ("yaw", "pitch", "roll")}
    return measured


# ---------------------------------------------------------------------------------------------------------
# Plain-data form, shared by the stores (DynamoDB item, JSON file) and the audit record.


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def session_to_dict(session: Session) -> dict[str, Any]:
    return {
        "sessionId": session.session_id,
        "owner": session.owner,
        "status": session.status.value,
        "steps": [_step_to_dict(step) for step in session.steps],
        "currentStep": session.current_step,
        "version": session.version,
        "createdAt": _iso(session.created_at),
        "updatedAt": _iso(session.updated_at),
        "expiresAt": _iso(session.expires_at),
        "closedAt": _iso(session.closed_at),
        "mirrored": session.mirrored,
        "analyzer": session.analyzer,
        "limits": {
            "stepCount": session.limits.step_count,
            "stepTimeLimitSeconds": session.limits.step_time_limit_seconds,
            "sessionTtlSeconds": session.limits.session_ttl_seconds,
            "maxFrames": session.limits.max_frames,
            "stepMaxFrames": session.limits.step_max_frames,
            "retentionSeconds": session.limits.retention_seconds,
        },
        "framesReceived": session.frames_received,
        "frames": [frame_to_dict(frame) for frame in session.frames],
        "referenceFrameId": session.reference_frame_id,
        "comparisons": session.comparisons,
        "samePersonCheck": session.same_person_check.value,
        "failureReason": session.failure_reason.value if session.failure_reason else None,
        "auditWritten": session.audit_written,
        "thresholds": session.thresholds.to_json() if session.thresholds is not None else None,
        "baseline": session.baseline.to_json() if session.baseline is not None else None,
        "pending": [
            {"frameId": frame.frame_id, "frameKey": frame.frame_key, "stepIndex": frame.step_index}
            for frame in session.pending
        ],
    }


def _step_to_dict(step: Step) -> dict[str, Any]:
    return {
        "code": step.code.value,
        "instruction": INSTRUCTIONS[step.code],
        "status": step.status.value,
        "startedAt": _iso(step.started_at),
        "completedAt": _iso(step.completed_at),
        "attempts": step.attempts,
        "framesReceived": step.frames_received,
        "frameId": step.frame_id,
        "reason": step.reason,
    }


def frame_to_dict(frame: FrameRecord) -> dict[str, Any]:
    return {
        "frameId": frame.frame_id,
        "receivedAt": _iso(frame.received_at),
        "stepIndex": frame.step_index,
        "stepCode": frame.step_code.value,
        "verdict": frame.verdict.value,
        "reasonCode": frame.reason.value if frame.reason else None,
        "measured": frame.measured,
        "similarity": frame.similarity,
        "mirrored": frame.mirrored,
        "frameKey": frame.frame_key,
        "sha256": frame.sha256,
    }


def session_from_dict(raw: dict[str, Any]) -> Session:
    limits = raw["limits"]
    return Session(
        session_id=raw["sessionId"],
        owner=raw["owner"],
        status=SessionStatus(raw["status"]),
        steps=tuple(_step_from_dict(step) for step in raw["steps"]),
        current_step=int(raw["currentStep"]),
        version=int(raw["version"]),
        created_at=_time(raw["createdAt"]),  # type: ignore[arg-type]
        updated_at=_time(raw.get("updatedAt")),
        expires_at=_time(raw["expiresAt"]),  # type: ignore[arg-type]
        closed_at=_time(raw.get("closedAt")),
        mirrored=bool(raw["mirrored"]),
        analyzer=raw["analyzer"],
        limits=SessionLimits(
            step_count=int(limits["stepCount"]),
            step_time_limit_seconds=int(limits["stepTimeLimitSeconds"]),
            session_ttl_seconds=int(limits["sessionTtlSeconds"]),
            max_frames=int(limits["maxFrames"]),
            # Items stored before the per-step budget had none: their session cap alone bounds each step.
            step_max_frames=int(limits.get("stepMaxFrames", limits["maxFrames"])),
            retention_seconds=int(limits["retentionSeconds"]),
        ),
        frames_received=int(raw["framesReceived"]),
        frames=tuple(_frame_from_dict(frame) for frame in raw.get("frames", [])),
        reference_frame_id=raw.get("referenceFrameId"),
        comparisons=int(raw.get("comparisons", 0)),
        same_person_check=SamePersonCheck(raw["samePersonCheck"]),
        failure_reason=FailureReason(raw["failureReason"]) if raw.get("failureReason") else None,
        audit_written=bool(raw.get("auditWritten", False)),
        thresholds=Thresholds.from_json(raw["thresholds"]) if raw.get("thresholds") else None,
        baseline=Baseline.from_json(raw["baseline"]) if raw.get("baseline") else None,
        pending=tuple(
            PendingFrame(frame_id=item["frameId"], frame_key=item["frameKey"], step_index=int(item["stepIndex"]))
            for item in raw.get("pending") or ()
        ),
    )


def _step_from_dict(raw: dict[str, Any]) -> Step:
    return Step(
        code=StepCode(raw["code"]),
        status=StepStatus(raw["status"]),
        started_at=_time(raw.get("startedAt")),
        completed_at=_time(raw.get("completedAt")),
        attempts=int(raw.get("attempts", 0)),
        frames_received=int(raw.get("framesReceived", 0)),
        frame_id=raw.get("frameId"),
        reason=raw.get("reason"),
    )


def _frame_from_dict(raw: dict[str, Any]) -> FrameRecord:
    return FrameRecord(
        frame_id=raw["frameId"],
        received_at=_time(raw["receivedAt"]),  # type: ignore[arg-type]
        step_index=int(raw["stepIndex"]),
        step_code=StepCode(raw["stepCode"]),
        verdict=Verdict(raw["verdict"]),
        reason=ReasonCode(raw["reasonCode"]) if raw.get("reasonCode") else None,
        measured=dict(raw.get("measured") or {}),
        similarity=float(raw["similarity"]) if raw.get("similarity") is not None else None,
        mirrored=bool(raw.get("mirrored", False)),
        frame_key=str(raw.get("frameKey", "")),
        sha256=raw.get("sha256"),
    )
