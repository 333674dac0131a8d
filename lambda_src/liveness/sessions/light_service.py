"""The light step's I/O: POST /sessions/{id}/light (draw and reveal a sequence) and /light/frames (judge a batch).

A batch costs one frame slot, one analyzer call (on the analysed frame) and one comparison with the reference;
every frame is archived. The protocol, the decision and the modes: docs/sessions.md ("The light step").
"""

from __future__ import annotations

import math
import uuid
from concurrent.futures import Future
from typing import Any

from ..archive import ArchiveConflict
from ..challenges import Measured, ReasonCode, StepCode, comparison_reliable, gate_faces, measure, relative_to
from ..dependencies import Dependencies
from ..errors import ErrorCode, LivenessError
from ..faces import Frame
from ..images.crop import face_crop_jpeg
from ..images.intake import Upload, receive_upload
from ..light.decision import LightFrame, LightThresholds, analysed_frame_index, batch_problem, judge_light
from ..light.mode import ENFORCE
from ..light.sequence import LightSequence, draw_sequence
from ..parallel import start, succeeded, wait
from .commit import after_commit, commit_due, commit_transition, session_thresholds
from .keys import face_crop_key, light_frame_key, light_prefix
from .light_transitions import expire_light, light_start_problem, open_light, settle_light
from .model import FrameEvaluation, FrameRecord, LightChallenge, PendingFrame, Session
from .service import (
    FrameResult,
    _ensure_open,
    _owned,
    _pose_robust,
    _reference_face,
    _repair_abandoned,
    _reserve,
    _settle_unjudged,
    logger,
)

MAX_BATCH_FRAMES = 16  # the schema's bound too: 6 colours x 2 capture offsets fit
FRAME_WIDTH, FRAME_HEIGHT = 320, 240  # what the client sends: small frames, so the batch uploads fast


# ---------------------------------------------------------------------------------------------------------
# POST /sessions/{id}/light


def start_light(session_id: str, deps: Dependencies, owner: str, request_id: str) -> Session:
    """Draw a fresh sequence and store it as the open challenge; the state returned carries it."""
    now = deps.clock()
    session = _owned(deps, session_id, owner)
    session = _repair_abandoned(deps, session, now, request_id)
    session = commit_due(deps, session, now, request_id)
    _ensure_open(session)
    sequence = draw_sequence()

    def reveal(current: Session) -> tuple[Session, bool]:
        if current.light_challenge is not None and now > current.light_challenge.submit_by:
            # Its batch never came: that challenge is used up (an attempt) before a new one is drawn.
            current = expire_light(current, current.light_challenge.sequence.challenge_id, now)
        if not current.is_open:
            return current, False
        problem = light_start_problem(current)
        if problem is not None:
            raise LivenessError(ErrorCode.CONFLICT, problem)
        return open_light(current, sequence, now), True

    commit = commit_transition(deps, session, reveal)
    after = after_commit(deps, commit, request_id)
    _ensure_open(after)
    logger.info(
        "Light challenge started",
        extra={"sessionId": session_id, "challengeId": sequence.challenge_id, "attempt": _attempt_of(after)},
    )
    return after


def _attempt_of(session: Session) -> int | None:
    return session.light_challenge.attempt if session.light_challenge is not None else None


# ---------------------------------------------------------------------------------------------------------
# POST /sessions/{id}/light/frames


def submit_light(session_id: str, body: dict[str, Any], deps: Dependencies, owner: str, request_id: str) -> FrameResult:
    now = deps.clock()
    session = _owned(deps, session_id, owner)
    session = _repair_abandoned(deps, session, now, request_id)
    session = commit_due(deps, session, now, request_id)
    _ensure_open(session)
    challenge = _open_challenge(session, body.get("challengeId"))
    challenge_id = challenge.sequence.challenge_id
    if now > challenge.submit_by:
        commit = commit_transition(deps, session, lambda current: (expire_light(current, challenge_id, now), None))
        after_commit(deps, commit, request_id)
        raise LivenessError(ErrorCode.CONFLICT, "The light challenge expired; start a new one.")
    uploads, frames = _read_batch(body.get("frames"), challenge.sequence, deps)  # refused before taking a slot
    batch_id = str(uuid.uuid4())
    prefix = light_prefix(session.session_id, challenge_id)
    session = _reserve(deps, session, now, request_id, PendingFrame(batch_id, prefix, session.current_step))
    writes = [
        start(
            _archive_once,
            deps,
            light_frame_key(session_id, challenge_id, f.colour_index, f.offset_ms, u.content_type),
            u,
        )
        for u, f in zip(uploads, frames, strict=True)
    ]
    reference = start(_reference_face, deps, session) if session.reference_frame_id else None
    archived = ""
    try:
        try:
            evaluation, outcome = _judge_batch(session, challenge.sequence, uploads, frames, batch_id, deps, reference)
        finally:
            wait(reference, *writes)
            archived = prefix if all(succeeded(write) for write in writes) else ""
        for write in writes:
            write.result()  # an archive write failed: 503, and the batch is logged NOT_JUDGED
    except Exception:
        _settle_unjudged(deps, session, batch_id, archived, None, now, request_id)
        raise
    thresholds = session_thresholds(deps, session)

    def settle(current: Session) -> tuple[Session, FrameRecord]:
        if current.settled:  # this request outlived the repair margin and its slot was settled meanwhile
            raise LivenessError(ErrorCode.CONFLICT, "The light frames took too long to be judged.", retry_after=1)
        return settle_light(current, evaluation, challenge_id, outcome, now, thresholds.min_similarity)

    try:
        commit = commit_transition(deps, session, settle)
    except LivenessError:
        _settle_unjudged(deps, session, batch_id, archived, None, now, request_id)
        raise
    after = after_commit(deps, commit, request_id)
    record = commit.value
    if record.reason is ReasonCode.SESSION_CLOSED:
        _ensure_open(after)
    return FrameResult(session=after, record=record)


def _open_challenge(session: Session, challenge_id: object) -> LightChallenge:
    if session.step.code is not StepCode.FOLLOW_LIGHT:
        raise LivenessError(ErrorCode.CONFLICT, f"The current step is {session.step.code.value}, not FOLLOW_LIGHT.")
    challenge = session.light_challenge
    if challenge is None:
        raise LivenessError(ErrorCode.CONFLICT, "No light challenge is running: start one with POST /light.")
    if challenge_id != challenge.sequence.challenge_id:
        raise LivenessError(ErrorCode.INVALID_REQUEST, "Invalid request: challengeId is not the running challenge.")
    return challenge


def _read_batch(raw: object, sequence: LightSequence, deps: Dependencies) -> tuple[list[Upload], list[LightFrame]]:
    """Every frame decoded through the images intake, then the batch's shape checked (one per colour and offset)."""
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_BATCH_FRAMES:
        raise LivenessError(ErrorCode.INVALID_REQUEST, f"Invalid request: frames must list 1 to {MAX_BATCH_FRAMES}.")
    uploads, frames = [], []
    for item in raw:
        if not isinstance(item, dict):
            raise LivenessError(ErrorCode.INVALID_REQUEST, "Invalid request: each frame must be an object.")
        index, offset = item.get("colorIndex"), item.get("offsetMs")
        if not isinstance(index, int) or not isinstance(offset, int) or not 0 <= index < len(sequence.colours):
            raise LivenessError(ErrorCode.INVALID_REQUEST, "Invalid request: each frame needs colorIndex and offsetMs.")
        upload = receive_upload(item.get("image"), limits=deps.image_limits)
        uploads.append(upload)
        frames.append(LightFrame(upload.frame.bgr, index, offset))
    problem = batch_problem(frames, sequence)
    if problem is not None:
        raise LivenessError(ErrorCode.INVALID_REQUEST, f"Invalid request: {problem}.")
    return uploads, frames


def _archive_once(deps: Dependencies, key: str, upload: Upload) -> None:
    """Write-once; a batch resent after a failure (503) finds its frames already there, which is fine."""
    try:
        deps.archive.put_new(key, upload.raw, upload.content_type)
    except ArchiveConflict:
        pass


def _judge_batch(
    session: Session,
    sequence: LightSequence,
    uploads: list[Upload],
    frames: list[LightFrame],
    batch_id: str,
    deps: Dependencies,
    reference: Future[Frame] | None,
) -> tuple[FrameEvaluation, str]:
    """The evaluation to settle, and the attempt's outcome (a LightOutcome, or the gate's reason).

    One analyzer call on the analysed frame: its face gives the light regions, the gates and the comparison
    (with Rekognition, CompareFaces alone: it describes the face it compares, box and five landmarks included).
    In shadow mode the light verdict is recorded and never rejects; a gate's reason or another person still do."""
    index = analysed_frame_index(frames, sequence)
    analysed = uploads[index].frame
    one_call = getattr(deps.analyzer, "describe_and_compare", None)
    if callable(one_call) and reference is not None:  # Rekognition: CompareFaces describes the faces it compares
        faces, compared = one_call(reference.result(), analysed)
    else:
        faces, compared = deps.analyzer.detect_faces(analysed), None
    thresholds = session_thresholds(deps, session)
    face = faces[0] if len(faces) == 1 else None
    measured = measure(face, session.mirrored, (analysed.width, analysed.height)) if face else Measured()
    movement = relative_to(measured, session.baseline)
    reason = gate_faces(faces, thresholds)
    comparison = None
    if reason is not None or face is None:
        outcome, light = (reason or ReasonCode.NO_FACE).value, None
    else:
        verdict = judge_light(frames, sequence, face, session.light_thresholds or LightThresholds(), analysed=index)
        outcome, light = verdict.outcome.value, _finite(verdict.measured)
        if not verdict.passed and session.light_mode == ENFORCE:
            reason = ReasonCode(verdict.outcome.value)
        if reference is not None:
            comparison = compared or deps.analyzer.compare_faces(reference.result(), analysed)
        else:  # never after the neutral start, which sets the reference; kept whole for a direct call
            deps.archive.put_new(
                face_crop_key(session.session_id, batch_id), face_crop_jpeg(analysed, face), "image/jpeg"
            )
    return (
        FrameEvaluation(
            frame_id=batch_id,
            step_index=session.current_step,
            reason=reason,
            measured=measured,
            mirrored=session.mirrored,
            frame_key=light_prefix(session.session_id, sequence.challenge_id),
            comparison=comparison,
            # The frame rule: a low score is another person only where the comparison is reliable.
            comparable=_pose_robust(deps) or comparison_reliable(movement, thresholds),
            movement=movement if session.baseline is not None else None,
            light={"outcome": outcome, "mode": session.light_mode, "analysedFrame": index, **(light or {})},
        ),
        outcome,
    )


def _finite(value: Any) -> Any:
    """The measurement with NaN and infinities as None: JSON and DynamoDB take neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def light_start_response(session: Session, request_id: str) -> dict[str, Any]:
    """The 201 answer to POST /light: the sequence to show, when to capture, and until when to send."""
    challenge = session.light_challenge
    assert challenge is not None
    return {
        "sessionId": session.session_id,
        **challenge.sequence.to_json(),
        "frameWidth": FRAME_WIDTH,
        "frameHeight": FRAME_HEIGHT,
        "submitBy": challenge.submit_by.isoformat(),
        "attempt": challenge.attempt,
        "maxAttempts": session.limits.light_max_attempts,
        "requestId": request_id,
    }
