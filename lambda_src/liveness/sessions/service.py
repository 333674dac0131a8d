"""Session orchestration: the I/O around the pure state machine for the three session routes.
The order of operations and the archive layout: docs/sessions.md ("Order of operations", "Archive and audit record").
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NoReturn

from aws_lambda_powertools import Logger

from ..challenges import (
    COACHING,
    HEAD_MOVEMENTS,
    Measured,
    ReasonCode,
    StepCode,
    Thresholds,
    challenge,
    comparison_reliable,
    draw_steps,
    gate_faces,
    max_steps,
    measure,
    relative_to,
    step_reason_after,
)
from ..dependencies import Dependencies
from ..errors import ErrorCode, LivenessError, unavailable
from ..faces import FaceComparison, FaceDetail, Frame
from ..images.crop import face_crop_jpeg
from ..images.intake import Upload, load_stored_frame, receive_upload
from ..light.mode import OFF
from ..limits import SessionLimits
from ..parallel import start, succeeded, wait
from .attempt_guard import admit_session, release_session
from .chain import awaiting_for, in_transit, link_for
from .commit import after_commit, commit_due, commit_transition, ensure_audit, session_thresholds
from .keys import face_crop_key, frame_key
from .model import Confirmation, FrameEvaluation, FrameRecord, Link, PendingFrame, Session, SessionStatus
from .prescreen import PRESCREEN_ANALYZER, screen_reason
from .repair import has_abandoned_frames, settle_abandoned
from .store import SessionConflict, is_session_id
from .transitions import is_repeated, new_session, out_of_frames, reserve_frame, settle_frame

logger = Logger(service="liveness")  # shares the handler's configuration; never given image data


# ---------------------------------------------------------------------------------------------------------
# POST /sessions


def create_session(body: dict[str, Any], deps: Dependencies, owner: str, request_id: str = "") -> Session:
    limits = deps.settings.session_limits
    exclude = bool(body.get("excludeExpressions", False))
    # The count is the only say a client has; which steps, and their order, come from the CSPRNG. The neutral start
    # comes first, whatever the client asks: it sets the reference face and the person's baseline pose.
    light = deps.settings.light_challenge
    drawn = draw_steps(_step_count(body.get("steps"), limits, exclude), exclude_expressions=exclude)
    steps = challenge(drawn, light=light != OFF)  # the light step is never drawn and never excluded
    mirrored = bool(body.get("mirrored", False))
    session = new_session(
        str(uuid.uuid4()),
        owner,
        steps,
        mirrored=mirrored,
        analyzer=deps.analyzer.name,
        now=deps.clock(),
        limits=limits,
        thresholds=deps.settings.thresholds,  # kept in the item: frames are judged and audited with these
        light_mode=light,
        light_thresholds=deps.settings.light_thresholds if light != OFF else None,
    )
    admit_session(deps, session, request_id)  # the user's attempt limits: 429 before anything is stored
    try:
        deps.session_store.create(session)
    except SessionConflict:  # a uuid4 collision: practically impossible, but never overwrite
        release_session(deps, session)
        raise LivenessError(ErrorCode.CONFLICT, "Please retry.") from None
    except Exception:
        release_session(deps, session)
        raise
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
    # Before any write of this request: a slot is abandoned when the session's LAST write is old enough.
    session = _repair_abandoned(deps, session, deps.clock(), request_id)
    # A client polling an abandoned session sees it EXPIRED (and that is persisted), not IN_PROGRESS forever.
    session = commit_due(deps, session, deps.clock(), request_id)
    if not session.is_open and session.settled:
        # Repair: the closing request may have failed to write the audit record (an S3 outage). The item says
        # whether it exists, so a read of an audited session costs no PutObject. An unsettled session (a frame
        # still being analysed) is audited by the request that settles its last frame.
        session = ensure_audit(deps, session, request_id)
    reference = None
    if session.status is SessionStatus.PASSED and session.reference_frame_id:
        # The reference frame's crop was written before the save that named it: this key always exists.
        reference = deps.archive.get(face_crop_key(session_id, session.reference_frame_id))
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
    session = _repair_abandoned(deps, session, now, request_id)  # before any write of this request
    session = commit_due(deps, session, now, request_id)
    _ensure_open(session)  # a closed session answers 409 whatever the body says, and costs no analysis
    _ensure_not_light_step(session)
    _check_mirroring(body, session)
    upload = receive_upload(body.get("image"), limits=deps.image_limits)  # refused before taking a slot
    frame, digest = upload.frame, upload.sha256  # only the digest is kept; the image stays in the archive
    frame_id, archived = str(uuid.uuid4()), ""
    # The frame may have been re-encoded; archive the original.
    key = frame_key(session.session_id, frame_id, upload.content_type)
    # The pre-screen's faces, measured once: a clear miss is settled in one save, with no reservation, no archive
    # write and no Rekognition call; any other frame takes the full path below.
    faces = _screen_faces(deps, session, frame)
    if faces is not None and not deps.settings.archive_screened:
        refused = _refuse_at_once(deps, session, faces, frame, frame_id, digest, now, request_id)
        if refused is not None:
            return refused
    # The reservation records the frame's id and key: if this request dies, the repair logs the frame with them.
    reserved = _reserve(deps, session, now, request_id, PendingFrame(frame_id, key, session.current_step))
    if reserved.step.code is StepCode.FOLLOW_LIGHT:  # the neutral start passed while this frame waited for a slot
        _settle_unjudged(deps, reserved, frame_id, "", digest, now, request_id)
        _ensure_not_light_step(reserved)
    try:
        screened = _screen_verdict(deps, reserved, frame, faces, frame_id, key, digest)
        evaluation, archived = _evaluate(deps, reserved, upload, frame_id, key, digest, now, screened)
    except Exception as error:
        # The slot is taken (the analysis may have been paid for): log the frame as NOT_JUDGED so the frame log
        # stays complete and the cap can still close the session, then answer the original error.
        failed = error if isinstance(error, _Unjudged) else _Unjudged(error, "")
        _settle_unjudged(deps, reserved, frame_id, failed.archived, digest, now, request_id)
        raise failed.error from None
    session = reserved
    thresholds = session_thresholds(deps, session)

    def settle(current: Session) -> tuple[Session, FrameRecord]:
        if current.settled:  # this request outlived ABANDONED_AFTER_SECONDS and its slot was repaired meanwhile
            raise LivenessError(
                ErrorCode.CONFLICT, "The frame took too long to be judged; send it again.", retry_after=1
            )
        return settle_frame(current, evaluation, now, thresholds.min_similarity)

    try:
        commit = commit_transition(deps, session, settle)
    except LivenessError:
        # The verdict was not saved (the store failed or stayed busy): try to log the frame as NOT_JUDGED, with
        # its archive key; if that fails too, the slot is repaired later (_repair_abandoned).
        _settle_unjudged(deps, session, frame_id, archived, digest, now, request_id)
        raise
    after = after_commit(deps, commit, request_id)  # from here on only best-effort writes: never an error
    record = commit.value
    if record.reason is ReasonCode.SESSION_CLOSED:  # logged, but the session had closed meanwhile
        _ensure_open(after)
    return FrameResult(session=after, record=record)


class _Unjudged(Exception):
    """A failure after the frame took its slot; ``archived``: the frame's key if its upload was written."""

    def __init__(self, error: Exception, archived: str) -> None:
        super().__init__(type(error).__name__)
        self.error, self.archived = error, archived


Screened = tuple[FrameEvaluation | None, Measured | None]
_NO_SLOT = object()  # the session closed, or its frames or the step's are all taken


def _refuse_at_once(
    deps: Dependencies,
    session: Session,
    faces: list[FaceDetail],
    frame: Frame,
    frame_id: str,
    digest: str,
    now: datetime,
    request_id: str,
) -> FrameResult | None:
    """Settle a pre-screen refusal in one conditional save that takes the slot and logs the verdict. None when the
    state saved against is no longer a clear miss (another frame moved the step): the full path judges the frame."""
    min_similarity = session_thresholds(deps, session).min_similarity

    def refuse(current: Session) -> tuple[Session, Any]:
        logged = next((record for record in current.frames if record.frame_id == frame_id), None)
        if logged is not None:  # a save whose answer was lost had committed: never log the frame twice
            return current, logged
        _ensure_not_light_step(current)  # the neutral start passed meanwhile: 409, and no slot taken
        refusal, _measured = _screen_verdict(deps, current, frame, faces, frame_id, "", digest)
        if refusal is None:
            return current, None
        reserved, admitted = reserve_frame(current, now)
        if not admitted:
            return reserved, _NO_SLOT
        return settle_frame(reserved, refusal, now, min_similarity)

    commit = commit_transition(deps, session, refuse)
    after = after_commit(deps, commit, request_id)
    if commit.value is None:
        return None
    if commit.value is _NO_SLOT:
        _no_slot(after)
    return FrameResult(session=after, record=commit.value)


def _evaluate(
    deps: Dependencies,
    session: Session,
    upload: Upload,
    frame_id: str,
    key: str,
    digest: str,
    now: datetime,
    screened: Screened,
) -> tuple[FrameEvaluation, str]:
    """The frame's evaluation and its archive key ("" if not archived). A pre-screen refusal is answered with no
    archive write unless ARCHIVE_SCREENED; every other frame is archived alongside its analysis, and the
    verdict waits for the write (and for the reference crop's read, needed if the frame passes its step)."""
    refusal, measured = screened
    if refusal is not None and not deps.settings.archive_screened:
        return replace(refusal, frame_key=""), ""
    frame_written = start(deps.archive.put_new, key, upload.raw, upload.content_type)
    reference = start(_reference_face, deps, session) if session.reference_frame_id and refusal is None else None
    archived = ""
    try:
        try:
            if refusal is not None:
                evaluation = refusal
            else:
                faces, compared = _analyse(deps, session, upload.frame, reference)
                evaluation = _judge(session, upload.frame, faces, frame_id, key, digest, deps, reference, now, compared)
                evaluation = replace(evaluation, screen_measured=measured)
        finally:
            wait(reference)  # nothing left in flight, whatever failed
            archived = key if succeeded(frame_written) else ""
        frame_written.result()  # the upload's write failed: 503, and the frame is logged NOT_JUDGED without a key
    except Exception as error:
        raise _Unjudged(error, archived) from error
    return evaluation, key


def _reserve(deps: Dependencies, session: Session, now: datetime, request_id: str, frame: PendingFrame) -> Session:
    """Take a frame slot with a conditional save; 409 (nothing analysed) if the session closed or is full."""
    commit = commit_transition(deps, session, lambda current: reserve_frame(current, now, frame))
    after = after_commit(deps, commit, request_id)
    if not commit.value:
        _no_slot(after)
    return after


def _no_slot(after: Session) -> NoReturn:
    """409: the session is closed, or open but out of slots (the last frames are still being judged, and the last
    of them closes the session)."""
    _ensure_open(after)
    if after.frames_received >= after.limits.max_frames:
        budget = f"The session has used all its {after.limits.max_frames} frames"
    else:
        budget = f"This step has used all its {after.limits.step_max_frames} frames"
    raise LivenessError(ErrorCode.SESSION_CLOSED, f"{budget} (ATTEMPT_LIMIT); start a new session.")


def _settle_unjudged(
    deps: Dependencies, session: Session, frame_id: str, key: str, digest: str | None, now: datetime, request_id: str
) -> None:
    evaluation = _evaluation(session, frame_id, key, digest, ReasonCode.NOT_JUDGED, Measured())
    try:
        commit = commit_transition(
            deps,
            session,
            lambda current: (current, None) if current.settled else settle_frame(current, evaluation, now, 0.0),
        )
        after_commit(deps, commit, request_id)
    except Exception as error:  # the original error is what the client gets; this one is only logged
        logger.warning(
            "Frame not logged",
            extra={"sessionId": session.session_id, "frameId": frame_id, "error": type(error).__name__},
        )


def _repair_abandoned(deps: Dependencies, session: Session, now: datetime, request_id: str) -> Session:
    """Settle the slots of frames whose request died before saving a verdict (see repair.py); a closed session
    is then audited by ``after_commit``."""
    if not has_abandoned_frames(session, now):
        return session
    commit = commit_transition(
        deps,
        session,
        lambda current: (settle_abandoned(current, now) if has_abandoned_frames(current, now) else current, None),
    )
    if commit.wrote:
        logger.warning(
            "Abandoned frames settled",
            extra={"sessionId": session.session_id, "frames": commit.after.frames_received - len(session.frames)},
        )
    return after_commit(deps, commit, request_id)


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


def _judge(
    session: Session,
    frame: Frame,
    faces: list[FaceDetail],
    frame_id: str,
    key: str,
    digest: str,
    deps: Dependencies,
    reference: Future[Frame] | None,
    now: datetime,
    compared: FaceComparison | None = None,
) -> FrameEvaluation:
    """Judge the analysed frame against the session's current step (``session`` is the reserved state).
    ``compared``: the frame against the reference, when the analysis already made that comparison.

    A frame that meets its step is compared with the reference face, or beyond the comparison range with the
    nearest verified frame of the step (the identity chain, chain.py). With an analyzer whose comparison is not
    robust to pose, a head movement on its way is compared too, so that the step's far frames have a link."""
    face = faces[0] if len(faces) == 1 else None
    measured = measure(face, session.mirrored, (frame.width, frame.height)) if face else Measured()
    movement = relative_to(measured, session.baseline)  # the neutral start itself is judged from the camera
    thresholds = session_thresholds(deps, session)
    earlier = [step.code for step in session.steps[: session.current_step]]
    if is_repeated(session, digest):  # the same bytes as a frame already judged: never a new answer
        reason: ReasonCode | None = ReasonCode.REPEATED_FRAME
    else:
        reason = gate_faces(faces, thresholds) or step_reason_after(session.step.code, earlier, movement, thresholds)
    robust = _pose_robust(deps)
    comparable = robust or comparison_reliable(movement, thresholds)
    transit = (
        not robust
        and reason is ReasonCode.POSE_NOT_MET
        and reference is not None
        and in_transit(session.step.code, movement, thresholds)
    )
    comparison, link, confirmation, awaiting = None, None, None, False
    if (reason is None or transit) and reference is not None:
        link = None if comparable else link_for(session, movement, now, thresholds)
        comparison = (
            compared if compared is not None and link is None else _compare(deps, session, frame, reference, link)
        )
        matched = (comparison.similarity or 0.0) >= thresholds.min_similarity
        # Kept for later: a frame verified on its way links the step's far frames, and a far frame with no link
        # yet waits for one. The crop must exist before the save that records either.
        awaiting = reason is None and not comparable and link is None and not matched and comparison.available
        if face is not None and ((transit and matched) or awaiting):
            deps.archive.put_new(face_crop_key(session.session_id, frame_id), face_crop_jpeg(frame, face), "image/jpeg")
        if transit and matched:
            confirmation = _confirm_awaiting(deps, session, frame, movement, link, now, thresholds)
    elif reason is None and face is not None:
        # This frame may become the reference face: its crop must exist before the save that says so.
        deps.archive.put_new(face_crop_key(session.session_id, frame_id), face_crop_jpeg(frame, face), "image/jpeg")
    return _evaluation(
        session,
        frame_id,
        key,
        digest,
        reason,
        measured,
        comparison=comparison,
        comparable=comparable,
        movement=movement if session.baseline is not None else None,
        link=link,
        chained=not robust,
        transit=transit,
        awaiting=awaiting and face is not None,
        confirmation=confirmation,
    )


def _screen_faces(deps: Dependencies, session: Session, frame: Frame) -> list[FaceDetail] | None:
    """The faces the pre-screen finds, or None when it does not screen this frame: off, with no baseline of its
    own yet (its baseline is its measurement of the neutral start, from the camera), or out of frame slots (the
    reservation answers 409 before any analysis). If it fails, Rekognition judges the frame."""
    if deps.prescreen is None or not _has_screen_baseline(session) or out_of_frames(session):
        return None
    try:
        return deps.prescreen.detect_faces(frame)
    except Exception as error:  # only an optimisation: the frame takes the full path
        logger.warning("Pre-screen failed", extra={"sessionId": session.session_id, "error": type(error).__name__})
        return None


def _screen_verdict(
    deps: Dependencies,
    session: Session,
    frame: Frame,
    faces: list[FaceDetail] | None,
    frame_id: str,
    key: str,
    digest: str,
) -> Screened:
    """The pre-screen's refusal of a frame that clearly cannot meet the step (or None), and its measurement (kept at
    the neutral start as its own baseline). Pure: ``faces`` were measured once, the state may be a fresher one."""
    if faces is None or not _has_screen_baseline(session):
        return None, None
    measured = measure(faces[0], session.mirrored, (frame.width, frame.height)) if len(faces) == 1 else Measured()
    movement = relative_to(measured, session.screen_baseline)
    reason = screen_reason(session.step.code, faces, movement, session_thresholds(deps, session))
    if reason is None:
        return None, measured
    refusal = _evaluation(
        session,
        frame_id,
        key,
        digest,
        reason,
        measured,
        movement=movement if session.screen_baseline is not None else None,
        judged_by=PRESCREEN_ANALYZER,
        screen_measured=measured,
    )
    return refusal, measured


def _has_screen_baseline(session: Session) -> bool:
    """The pre-screen measures movements from its own neutral start: it screens that start and the steps after it."""
    return session.step.code is StepCode.LOOK_STRAIGHT or session.screen_baseline is not None


def _evaluation(
    session: Session,
    frame_id: str,
    key: str,
    digest: str | None,
    reason: ReasonCode | None,
    measured: Measured,
    **more: Any,
) -> FrameEvaluation:
    """A frame's evaluation in the session's current step."""
    return FrameEvaluation(
        frame_id=frame_id,
        step_index=session.current_step,
        reason=reason,
        measured=measured,
        mirrored=session.mirrored,
        frame_key=key,
        sha256=digest,
        **more,
    )


def _analyse(
    deps: Dependencies, session: Session, frame: Frame, reference: Future[Frame] | None
) -> tuple[list[FaceDetail], FaceComparison | None]:
    """The faces in the frame; for a head movement after the reference, with an analyzer that describes the
    faces it compares (Rekognition's CompareFaces), one call gives the faces and the comparison."""
    one_call = getattr(deps.analyzer, "describe_and_compare", None)
    if callable(one_call) and reference is not None and session.step.code in HEAD_MOVEMENTS:
        faces, comparison = one_call(reference.result(), frame)
        return faces, comparison
    return deps.analyzer.detect_faces(frame), None


def _pose_robust(deps: Dependencies) -> bool:
    """An analyzer that does not say is taken as pose-sensitive: today's rules (a range, a chain) apply."""
    return bool(getattr(deps.analyzer, "pose_robust_comparison", False))


def _compare(
    deps: Dependencies, session: Session, frame: Frame, reference: Future[Frame], link: Link | None
) -> FaceComparison:
    """The frame against the reference face, or against the verified frame it links to (the identity chain)."""
    against = reference.result() if link is None else _verified_face(deps, session, link)
    return deps.analyzer.compare_faces(against, frame)


def _confirm_awaiting(
    deps: Dependencies,
    session: Session,
    frame: Frame,
    movement: Measured,
    link: Link | None,
    now: datetime,
    thresholds: Thresholds,
) -> Confirmation | None:
    """A frame just verified on its way, against the step's awaiting far frame nearest in pose (if any)."""
    target = awaiting_for(session, movement, link.hops if link is not None else 0, now, thresholds)
    if target is None:
        return None
    comparison = deps.analyzer.compare_faces(_verified_face(deps, session, target), frame)
    if comparison.similarity is None:
        return None
    return Confirmation(target.frame_id, target.hops, target.gap_degrees, comparison.similarity)


def _verified_face(deps: Dependencies, session: Session, link: Link) -> Frame:
    """The crop of the verified frame a far frame links to (written before the save that recorded it)."""
    crop = deps.archive.get(face_crop_key(session.session_id, link.frame_id))
    if crop is None:
        raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, "A verified face")
    return load_stored_frame(crop, "A verified face")


def _reference_face(deps: Dependencies, session: Session) -> Frame:
    """The reference crop, to compare a frame that passes its step with. Read while the frame is analysed, so
    a frame that fails its step read it for nothing (a GET costs far less than the wait it saves)."""
    assert session.reference_frame_id is not None
    reference = deps.archive.get(face_crop_key(session.session_id, session.reference_frame_id))
    if reference is None:
        raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, "The reference face")
    return load_stored_frame(reference, "The reference face")


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _owned(deps: Dependencies, session_id: str, owner: str) -> Session:
    if not is_session_id(session_id):
        raise LivenessError(ErrorCode.INVALID_REQUEST, "The session id must be a UUID.")
    session = deps.session_store.get(session_id)
    if session is None or session.owner != owner:  # 404 either way: never reveal that someone else's exists
        raise LivenessError(ErrorCode.SESSION_NOT_FOUND, "No such session.")
    return session


def _ensure_open(session: Session) -> None:
    if not session.is_open:
        reason = f" ({session.failure_reason.value})" if session.failure_reason else ""
        raise LivenessError(
            ErrorCode.SESSION_CLOSED, f"The session is {session.status.value}{reason}; start a new session."
        )


def _ensure_not_light_step(session: Session) -> None:
    if session.step.code is StepCode.FOLLOW_LIGHT:
        raise LivenessError(
            ErrorCode.CONFLICT,
            "The current step is FOLLOW_LIGHT: start it with POST /sessions/{id}/light and send its frames as one "
            "batch to /light/frames.",
        )


def reason_message(reason: ReasonCode | None) -> str | None:
    return COACHING[reason] if reason is not None else None
