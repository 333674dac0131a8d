"""Session orchestration: the I/O around the pure state machine.

One frame: check the session is open -> decode -> analyzer.detect_faces -> archive the upload (once, under
its own frame id) -> gates and the current step's rule -> compare with the reference face -> pure transition
-> conditional save. The frame is judged ONCE, against the step current when it arrived. On a conflict
(another frame of the same session saved first) the fresh state is read and the same judgement applied to it:
if the step it answered is still current, as before; if another frame completed that step meanwhile, the
frame is recorded as REJECTED (STEP_ALREADY_COMPLETED). So concurrent frames advance a step exactly once, no
frame's attempt is lost, and one upload never advances two steps.

Archive layout (write-once keys, see archive.py):
- ``sessions/<id>/frames/<frameId>.<jpg|png>``: every analysed upload, as received.
- ``sessions/<id>/frames/<frameId>-face.jpg``: the face crop of a frame that may become the reference.
  It is written BEFORE the conditional save, so a reader that sees the reference id can always fetch it.
- ``sessions/<id>/reference-face.jpg``: copy of the winning crop, written after the save.
- ``audit/sessions/<id>.json``: written once when the session closes (audit.py); never overwritten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

import cv2
import numpy as np
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from .archive import ArchiveConflict
from .audit import write_audit
from .challenges import (
    COACHING,
    Measured,
    ReasonCode,
    StepCode,
    draw_steps,
    gate_faces,
    max_steps,
    measure,
    step_reason_after,
)
from .constants import METRICS_NAMESPACE
from .errors import ErrorCode, LivenessError, unavailable
from .faces import FaceComparison, FaceDetail, Frame
from .images import MIN_SIDE_PX, crop_face, encode_jpeg, load_frame, parse_image_field, sniff_content_type
from .session_keys import face_crop_key, frame_key, reference_face_key
from .session_store import SessionConflict, SessionStore, is_session_id
from .sessions import (
    FrameEvaluation,
    FrameRecord,
    Session,
    SessionLimits,
    SessionStatus,
    apply_frame,
    close_if_due,
    new_session,
)
from .wiring import Dependencies

logger = Logger(service="liveness")  # shares the handler's configuration; never given image data

# Each failed conditional save means another frame of this session committed, so N concurrent frames
# need at most N-1 retries. Frames are capped per session, so this bound is never the limiting factor.
MAX_SAVE_ATTEMPTS = 64

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------
# POST /sessions


def create_session(body: dict[str, Any], deps: Dependencies, owner: str) -> Session:
    limits = deps.settings.session_limits
    exclude = bool(body.get("excludeExpressions", False))
    # The count is the only say a client has; which steps, and their order, come from the CSPRNG.
    steps = draw_steps(_step_count(body.get("steps"), limits, exclude), exclude_expressions=exclude)
    mirrored = bool(body.get("mirrored", False))
    session = new_session(
        str(uuid.uuid4()), owner, steps, mirrored=mirrored, analyzer=deps.analyzer.name, now=deps.clock(), limits=limits
    )
    try:
        _store(deps).create(session)
    except SessionConflict:  # a uuid4 collision: practically impossible, but never overwrite
        raise LivenessError(ErrorCode.CONFLICT, "Please retry.") from None
    logger.info("Session created", extra={"sessionId": session.session_id, "stepCount": len(steps)})
    return session


def _step_count(asked: int | None, limits: SessionLimits, exclude_expressions: bool) -> int:
    """STEP_COUNT is the operator's minimum: a client may ask for more steps, never fewer."""
    least, most = limits.step_count, max_steps(exclude_expressions)
    pool = " without expressions" if exclude_expressions else ""
    if least > most:
        raise LivenessError(
            ErrorCode.INVALID_REQUEST,
            f"Invalid request: this deployment requires at least {least} steps, but only {most} are available{pool}.",
        )
    count = least if asked is None else asked
    if count < least:
        raise LivenessError(
            ErrorCode.INVALID_REQUEST, f"Invalid request: steps must be at least {least} (this deployment's minimum)."
        )
    if count > most:
        raise LivenessError(ErrorCode.INVALID_REQUEST, f"Invalid request: at most {most} steps are available{pool}.")
    return count


# ---------------------------------------------------------------------------------------------------------
# GET /sessions/{id}


@dataclass(frozen=True)
class SessionView:
    session: Session
    reference_face: bytes | None  # only for PASSED sessions


def read_session(session_id: str, deps: Dependencies, owner: str, request_id: str) -> SessionView:
    session = _owned(deps, session_id, owner)
    # A client polling an abandoned session sees it EXPIRED (and that is persisted), not IN_PROGRESS forever.
    session = _commit_due(deps, session, deps.clock(), request_id)
    if not session.is_open:
        # Repair: the closing request may have failed to write the audit record (an S3 outage). The item says
        # whether it exists, so a read of an audited session costs no PutObject.
        session = _ensure_audit(deps, session, request_id)
    reference = None
    if session.status is SessionStatus.PASSED and session.reference_frame_id:
        # Fall back to the crop if the copy is missing (a crash between the save and the copy).
        reference = deps.archive.get(reference_face_key(session_id))
        reference = reference or deps.archive.get(face_crop_key(session_id, session.reference_frame_id))
    return SessionView(session=session, reference_face=reference)


# ---------------------------------------------------------------------------------------------------------
# POST /sessions/{id}/frames


@dataclass(frozen=True)
class FrameResult:
    session: Session
    record: FrameRecord


@dataclass(frozen=True)
class _JudgedFrame:
    """One analysed frame's judgement, made once; ``face_crop`` is set if it may become the reference face."""

    evaluation: FrameEvaluation
    face_crop: bytes | None


def submit_frame(session_id: str, body: dict[str, Any], deps: Dependencies, owner: str, request_id: str) -> FrameResult:
    now = deps.clock()  # one instant per frame: the time it arrived, whatever the analysis takes
    session = _owned(deps, session_id, owner)
    _check_mirroring(body, session)
    session = _commit_due(deps, session, now, request_id)
    _ensure_open(session)  # checked before decoding: a closed session costs no analysis
    judged = _judge(body, session, deps)
    min_similarity = deps.settings.thresholds.min_similarity
    commit = _commit(deps, session, lambda current: _frame_transition(current, judged.evaluation, now, min_similarity))
    if commit.value is None:  # the session closed while this frame was being analysed
        _after_close(deps, commit, request_id)
        _ensure_open(commit.after)
    assert commit.value is not None  # an open session after the transition means the frame was applied
    after = _after_frame(deps, commit, judged, request_id)
    return FrameResult(session=after, record=commit.value)


def _check_mirroring(body: dict[str, Any], session: Session) -> None:
    """Mirroring is fixed when the session is created. A per-frame choice would let a client pick the direction
    of a turn after seeing the steps: a right turn sent as "mirrored" would pass TURN_LEFT."""
    if "mirrored" in body and bool(body["mirrored"]) is not session.mirrored:
        declared = "true" if session.mirrored else "false"
        raise LivenessError(
            ErrorCode.INVALID_REQUEST,
            f"Invalid request: mirrored is fixed when the session is created (this session: {declared}); "
            "send frames as declared then, or start a new session.",
        )


def _frame_transition(
    session: Session, evaluation: FrameEvaluation, now: datetime, min_similarity: float
) -> tuple[Session, FrameRecord | None]:
    due = close_if_due(session, now)
    if due is not session or not session.is_open:
        return due, None
    return apply_frame(session, evaluation, now, min_similarity)


def _judge(body: dict[str, Any], session: Session, deps: Dependencies) -> _JudgedFrame:
    """Analyse and archive the upload, then judge it against the session's current step."""
    frame, faces, frame_id, key = _analyse_and_archive(body, session, deps)
    face = faces[0] if len(faces) == 1 else None
    measured = measure(face, session.mirrored) if face else Measured()
    thresholds = deps.settings.thresholds
    reason = gate_faces(faces, thresholds) or step_reason_after(
        session.step.code, _previous_step(session), measured, thresholds
    )
    comparison, crop = None, None
    if reason is None and session.reference_frame_id is not None:
        comparison = _compare_with_reference(deps, session, frame)
    elif reason is None and face is not None:
        # This frame may become the reference face: its crop must exist before the save that says so.
        crop = face_crop_jpeg(frame, face)
        deps.archive.put_new(face_crop_key(session.session_id, frame_id), crop, "image/jpeg")
    evaluation = FrameEvaluation(
        frame_id=frame_id,
        step_index=session.current_step,
        reason=reason,
        measured=measured,
        mirrored=session.mirrored,
        frame_key=key,
        comparison=comparison,
    )
    return _JudgedFrame(evaluation=evaluation, face_crop=crop)


def _analyse_and_archive(
    body: dict[str, Any], session: Session, deps: Dependencies
) -> tuple[Frame, list[FaceDetail], str, str]:
    upload = parse_image_field(body.get("image"), limits=deps.image_limits)
    frame = load_frame(upload, limits=deps.image_limits)
    faces = deps.analyzer.detect_faces(frame)
    frame_id = str(uuid.uuid4())
    content_type = sniff_content_type(upload)  # the frame may have been re-encoded; archive the original
    key = frame_key(session.session_id, frame_id, content_type)
    deps.archive.put_new(key, upload, content_type)  # exactly once: a fresh key per analysed frame
    return frame, faces, frame_id, key


def _previous_step(session: Session) -> StepCode | None:
    return session.steps[session.current_step - 1].code if session.current_step > 0 else None


def _compare_with_reference(deps: Dependencies, session: Session, frame: Frame) -> FaceComparison:
    assert session.reference_frame_id is not None
    reference = deps.archive.get(face_crop_key(session.session_id, session.reference_frame_id))
    if reference is None:
        raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, "The reference face")
    return deps.analyzer.compare_faces(_jpeg_frame(reference), frame)


def face_crop_jpeg(frame: Frame, face: FaceDetail) -> bytes:
    """The face with a margin, upscaled if needed: CompareFaces refuses images under 80x80 pixels."""
    crop = crop_face(frame, face.bounding_box)
    short_side = min(crop.shape[0], crop.shape[1])
    if short_side < MIN_SIDE_PX:
        scale = MIN_SIDE_PX / short_side
        crop = cv2.resize(
            crop, (round(crop.shape[1] * scale) + 1, round(crop.shape[0] * scale) + 1), interpolation=cv2.INTER_CUBIC
        )
    return encode_jpeg(crop)


def _jpeg_frame(jpeg: bytes) -> Frame:
    # Our own crop, so no upload checks; built directly because load_frame's 80px rule targets uploads.
    bgr = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, "The reference face")
    return Frame(bgr=bgr, encoded=jpeg, content_type="image/jpeg")


def _after_frame(
    deps: Dependencies, commit: _Commit[FrameRecord | None], judged: _JudgedFrame, request_id: str
) -> Session:
    before, after = commit.before, commit.after
    became_reference = before.reference_frame_id is None and after.reference_frame_id == judged.evaluation.frame_id
    if became_reference and judged.face_crop is not None:
        _put_once(deps, reference_face_key(after.session_id), judged.face_crop, "image/jpeg")
    return _after_close(deps, commit, request_id)


# ---------------------------------------------------------------------------------------------------------
# Committing transitions


@dataclass(frozen=True)
class _Commit(Generic[T]):
    before: Session  # the state the saved transition started from
    after: Session  # the saved state (== before when nothing changed)
    value: T

    @property
    def wrote(self) -> bool:
        return self.after is not self.before


def _commit(deps: Dependencies, session: Session, transition: Callable[[Session], tuple[Session, T]]) -> _Commit[T]:
    """Apply ``transition`` and save conditionally; on a conflict, re-read and apply it to the fresh state."""
    store = _store(deps)
    for _ in range(MAX_SAVE_ATTEMPTS):
        after, value = transition(session)
        if after is session:
            return _Commit(session, session, value)
        try:
            store.save(after, expected_version=session.version)
            return _Commit(session, after, value)
        except SessionConflict:
            session = _reload(store, session.session_id)
    logger.warning("Gave up after conflicting saves", extra={"sessionId": session.session_id})
    raise LivenessError(ErrorCode.CONFLICT, "The session is busy; retry the frame.", retry_after=1)


def _commit_due(deps: Dependencies, session: Session, now: datetime, request_id: str) -> Session:
    commit = _commit(deps, session, lambda current: (close_if_due(current, now), None))
    return _after_close(deps, commit, request_id)


def _after_close(deps: Dependencies, commit: _Commit[Any], request_id: str) -> Session:
    """Only the request whose save closed the session audits it and counts the outcome. Returns the state."""
    if not commit.wrote or commit.after.is_open:
        return commit.after
    session = _ensure_audit(deps, commit.after, request_id)
    logger.info(
        "Session closed",
        extra={
            "sessionId": session.session_id,
            "status": session.status.value,
            "failureReason": _value(session.failure_reason),
        },
    )
    with single_metric(name="SessionsClosed", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        metric.add_dimension(name="status", value=session.status.value)
    return session


# ---------------------------------------------------------------------------------------------------------
# Audit record


def _ensure_audit(deps: Dependencies, session: Session, request_id: str) -> Session:
    """Write the closed session's audit record unless its item says it exists, then record that on the item.

    An archive outage does not fail the request: the state is already committed, the item still says
    ``auditWritten: false``, so the next read retries, and the TTL expiry handler is the last resort."""
    if session.audit_written:
        return session
    try:
        write_audit(
            deps.archive, session, thresholds=deps.settings.thresholds, request_id=request_id, written_at=deps.clock()
        )
    except LivenessError as error:  # the archive is throttled or down (a 503); AccessDenied and bugs propagate
        logger.warning(
            "Audit record not written yet", extra={"sessionId": session.session_id, "code": error.code.value}
        )
        return session
    try:
        _store(deps).record_audit_written(session)
    except (SessionConflict, LivenessError) as error:  # only an optimisation: the next read finds the record
        logger.warning("Audit flag not stored", extra={"sessionId": session.session_id, "error": type(error).__name__})
        return session
    return replace(session, audit_written=True)


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _store(deps: Dependencies) -> SessionStore:
    if deps.session_store is None:  # a wiring bug: build_dependencies always sets it
        raise RuntimeError("Dependencies.session_store is required by the session routes")
    return deps.session_store


def _owned(deps: Dependencies, session_id: str, owner: str) -> Session:
    if not is_session_id(session_id):
        raise LivenessError(ErrorCode.INVALID_REQUEST, "The session id must be a UUID.")
    session = _store(deps).get(session_id)
    if session is None or session.owner != owner:  # 404 either way: never reveal that someone else's exists
        raise LivenessError(ErrorCode.SESSION_NOT_FOUND, "No such session.")
    return session


def _reload(store: SessionStore, session_id: str) -> Session:
    session = store.get(session_id)
    if session is None:  # deleted between reads (TTL): treat as gone
        raise LivenessError(ErrorCode.SESSION_NOT_FOUND, "No such session.")
    return session


def _ensure_open(session: Session) -> None:
    if not session.is_open:
        reason = f" ({session.failure_reason.value})" if session.failure_reason else ""
        raise LivenessError(
            ErrorCode.SESSION_CLOSED, f"The session is {session.status.value}{reason}; start a new session."
        )


def _put_once(deps: Dependencies, key: str, body: bytes, content_type: str) -> bool:
    try:
        deps.archive.put_new(key, body, content_type)
        return True
    except ArchiveConflict:
        return False


def _value(member: Any) -> Any:
    return member.value if member is not None else None


def reason_message(reason: ReasonCode | None) -> str | None:
    return COACHING[reason] if reason is not None else None
