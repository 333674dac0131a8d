"""Session orchestration: the I/O around the pure state machine.

One frame: check the session is open -> decode -> analyzer.detect_faces -> archive the upload (once,
under its own frame id) -> gates and step rule -> compare with the reference face -> pure transition ->
conditional save. On a conflict (another frame of the same session saved first) the fresh state is read
and the frame is judged again against it, so concurrent frames advance a step exactly once and no frame's
attempt is lost. The analysis itself is never repeated; only the comparison, if the reference changed.

Archive layout (write-once keys):
- ``sessions/<id>/frames/<frameId>.<jpg|png>``: every analysed upload, as received.
- ``sessions/<id>/frames/<frameId>-face.jpg``: the face crop of a frame that may become the reference.
  It is written BEFORE the conditional save, so a reader that sees the reference id can always fetch it.
- ``sessions/<id>/reference-face.jpg``: copy of the winning crop, written after the save.
- ``sessions/<id>/audit.json``: written once when the session closes; never overwritten.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import cv2
import numpy as np
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from .archive import SESSIONS_PREFIX, ArchiveConflict
from .challenges import COACHING, Measured, ReasonCode, draw_steps, gate_faces, max_steps, measure, step_reason
from .errors import ErrorCode, LivenessError, unavailable
from .faces import FaceComparison, FaceDetail, Frame
from .images import MIN_SIDE_PX, crop_face, encode_jpeg, load_frame, parse_image_field, sniff_content_type
from .session_store import SessionConflict, SessionStore, is_session_id
from .sessions import (
    FrameEvaluation,
    FrameRecord,
    SamePersonCheck,
    Session,
    SessionStatus,
    apply_frame,
    close_if_due,
    frame_to_dict,
    new_session,
    session_to_dict,
)
from .wiring import Dependencies

logger = Logger(service="liveness")  # shares the handler's configuration; never given image data

# Each failed conditional save means another frame of this session committed, so N concurrent frames
# need at most N-1 retries. Frames are capped per session, so this bound is never the limiting factor.
MAX_SAVE_ATTEMPTS = 64
METRICS_NAMESPACE = "KycLiveness"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------
# Archive keys


def frame_key(session_id: str, frame_id: str, content_type: str) -> str:
    return f"{SESSIONS_PREFIX}/{session_id}/frames/{frame_id}.{_EXTENSIONS[content_type]}"


def face_crop_key(session_id: str, frame_id: str) -> str:
    return f"{SESSIONS_PREFIX}/{session_id}/frames/{frame_id}-face.jpg"


def reference_face_key(session_id: str) -> str:
    return f"{SESSIONS_PREFIX}/{session_id}/reference-face.jpg"


def audit_key(session_id: str) -> str:
    return f"{SESSIONS_PREFIX}/{session_id}/audit.json"


# ---------------------------------------------------------------------------------------------------------
# POST /sessions


def create_session(body: dict[str, Any], deps: Dependencies, owner: str) -> Session:
    limits = deps.settings.session_limits
    exclude = bool(body.get("excludeExpressions", False))
    most = max_steps(exclude)
    count = body.get("steps")
    if count is not None and count > most:
        raise LivenessError(ErrorCode.INVALID_REQUEST, f"Invalid request: at most {most} steps are available.")
    # The count is the only say a client has; which steps, and their order, come from the CSPRNG.
    steps = draw_steps(min(count or limits.step_count, most), exclude_expressions=exclude)
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
        # The closing request may have failed to write the audit record after its save (an S3 outage);
        # the next read writes it. A conditional create, so an existing record always stands.
        write_audit(deps, session, request_id)
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


def submit_frame(session_id: str, body: dict[str, Any], deps: Dependencies, owner: str, request_id: str) -> FrameResult:
    now = deps.clock()  # one instant per frame: the time it arrived, whatever the analysis takes
    session = _owned(deps, session_id, owner)
    session = _commit_due(deps, session, now, request_id)
    _ensure_open(session)  # checked before decoding: a closed session costs no analysis
    judge = _FrameJudge.analyse(body, session, deps)
    commit = _commit(deps, session, lambda current: _frame_transition(current, judge, now, deps))
    if commit.value is None:  # the session closed while this frame was being analysed
        _after_close(deps, commit, request_id)
        _ensure_open(commit.after)
    assert commit.value is not None
    _after_frame(deps, commit, judge, request_id)
    return FrameResult(session=commit.after, record=commit.value)


def _frame_transition(
    session: Session, judge: _FrameJudge, now: datetime, deps: Dependencies
) -> tuple[Session, FrameRecord | None]:
    due = close_if_due(session, now)
    if due is not session or not session.is_open:
        return due, None
    return apply_frame(session, judge.evaluate(session), now, deps.settings.thresholds.min_similarity)


class _FrameJudge:
    """One analysed frame, judged against whichever state is current (it may change on a retry)."""

    def __init__(
        self,
        deps: Dependencies,
        session_id: str,
        frame: Frame,
        faces: list[FaceDetail],
        mirrored: bool,
        frame_id: str,
        key: str,
    ) -> None:
        self.deps = deps
        self.session_id = session_id
        self.frame = frame
        self.frame_id = frame_id
        self.frame_key = key
        self.mirrored = mirrored
        thresholds = deps.settings.thresholds
        self.gate = gate_faces(faces, thresholds)
        self.face = faces[0] if len(faces) == 1 else None
        self.measured = measure(self.face, mirrored) if self.face else Measured()
        self._comparisons: dict[str, FaceComparison] = {}
        self._crop_written = False

    @classmethod
    def analyse(cls, body: dict[str, Any], session: Session, deps: Dependencies) -> _FrameJudge:
        upload = parse_image_field(body.get("image"), limits=deps.image_limits)
        frame = load_frame(upload, limits=deps.image_limits)
        faces = deps.analyzer.detect_faces(frame)
        content_type = sniff_content_type(upload)  # the frame may have been re-encoded; archive the original
        frame_id = str(uuid.uuid4())
        key = frame_key(session.session_id, frame_id, content_type)
        deps.archive.put_new(key, upload, content_type)  # exactly once: a fresh key per analysed frame
        mirrored = bool(body.get("mirrored", session.mirrored))
        return cls(deps, session.session_id, frame, faces, mirrored, frame_id, key)

    def evaluate(self, session: Session) -> FrameEvaluation:
        reason = self.gate or step_reason(session.step.code, self.measured, self.deps.settings.thresholds)
        comparison = None
        if reason is None and session.reference_frame_id is not None:
            comparison = self._compare(session.reference_frame_id)
        elif reason is None:
            self._write_face_crop()  # this frame may become the reference: its crop must exist before the save
        return FrameEvaluation(
            frame_id=self.frame_id,
            step_index=session.current_step,
            reason=reason,
            measured=self.measured,
            mirrored=self.mirrored,
            frame_key=self.frame_key,
            comparison=comparison,
        )

    def _compare(self, reference_frame_id: str) -> FaceComparison:
        if reference_frame_id not in self._comparisons:
            reference = self.deps.archive.get(face_crop_key(self.session_id, reference_frame_id))
            if reference is None:
                raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, "The reference face")
            self._comparisons[reference_frame_id] = self.deps.analyzer.compare_faces(_jpeg_frame(reference), self.frame)
        return self._comparisons[reference_frame_id]

    def _write_face_crop(self) -> None:
        if not self._crop_written and self.face is not None:
            crop = face_crop_jpeg(self.frame, self.face)
            self.deps.archive.put_new(face_crop_key(self.session_id, self.frame_id), crop, "image/jpeg")
            self._crop_written = True

    def face_crop(self) -> bytes | None:
        return self.deps.archive.get(face_crop_key(self.session_id, self.frame_id))


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


def _after_frame(deps: Dependencies, commit: _Commit[FrameRecord | None], judge: _FrameJudge, request_id: str) -> None:
    before, after, record = commit.before, commit.after, commit.value
    assert record is not None
    if before.reference_frame_id is None and after.reference_frame_id == judge.frame_id:
        crop = judge.face_crop()
        if crop is not None:
            _put_once(deps, reference_face_key(after.session_id), crop, "image/jpeg")
    logger.info(
        "Frame evaluated",
        extra={
            "sessionId": after.session_id,
            "frameId": record.frame_id,
            "stepIndex": record.step_index,
            "verdict": record.verdict.value,
            "reasonCode": record.reason.value if record.reason else None,
            "status": after.status.value,
        },
    )
    _after_close(deps, commit, request_id)


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
    _after_close(deps, commit, request_id)
    return commit.after


def _after_close(deps: Dependencies, commit: _Commit[Any], request_id: str) -> None:
    """Only the request whose save closed the session writes the audit record and counts the outcome."""
    if not commit.wrote or commit.after.is_open:
        return
    session = commit.after
    write_audit(deps, session, request_id)
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


# ---------------------------------------------------------------------------------------------------------
# Audit record


def audit_record(deps: Dependencies, session: Session, request_id: str) -> dict[str, Any]:
    state = session_to_dict(session)
    return {
        "schemaVersion": 1,
        "sessionId": session.session_id,
        "owner": session.owner,
        "verdict": verdict_of(session),
        "status": session.status.value,
        "failureReason": _value(session.failure_reason),
        "samePersonCheck": session.same_person_check.value,
        "analyzer": session.analyzer,
        "createdAt": state["createdAt"],
        "expiresAt": state["expiresAt"],
        "closedAt": state["closedAt"],
        "mirrored": session.mirrored,
        "limits": state["limits"],
        "thresholds": deps.settings.thresholds.to_json(),
        "steps": state["steps"],
        "framesReceived": session.frames_received,
        "frames": [frame_to_dict(frame) for frame in session.frames],
        "referenceFaceKey": reference_face_key(session.session_id) if session.reference_frame_id else None,
        "referenceFrameId": session.reference_frame_id,
        "comparisons": session.comparisons,
        "version": session.version,
        "closingRequestId": request_id,
        "writtenAt": deps.clock().isoformat(),
    }


def write_audit(deps: Dependencies, session: Session, request_id: str) -> bool:
    """Write ``audit.json`` once; False if it already exists (the first record stands)."""
    body = json.dumps(audit_record(deps, session, request_id), indent=2).encode("utf-8")
    return _put_once(deps, audit_key(session.session_id), body, "application/json")


def verdict_of(session: Session) -> dict[str, Any]:
    """The outcome a relying party reads. PASSED with ``samePersonCheck: not_performed`` is NOT a verified match."""
    return {
        "status": session.status.value,
        "livenessPassed": session.status is SessionStatus.PASSED,
        "samePersonCheck": session.same_person_check.value,
        "samePersonVerified": session.same_person_check is SamePersonCheck.PASSED,
    }


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _store(deps: Dependencies) -> SessionStore:
    if deps.session_store is None:
        raise RuntimeError("no session store is configured")  # a wiring bug: 500
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
