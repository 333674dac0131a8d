"""Session routes: POST /sessions, POST /sessions/{id}/frames, GET /sessions/{id}.

The routes only parse, call the service and shape the answer. A frame that misses the step is a normal
200 answer with a reason code; only malformed requests and closed or unknown sessions are errors.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit

from ..challenges import INSTRUCTIONS, ReasonCode
from ..constants import METRICS_NAMESPACE
from ..dependencies import Dependencies
from ..http import caller_id_of, json_body_of, json_response, request_id_of
from ..images.limits import SUPPORTED_TYPES
from .audit import verdict_of
from .codec import link_to_dict, session_to_dict
from .keys import reference_face_key
from .light_service import light_start_response, start_light, submit_light
from .model import Session
from .service import FrameResult, SessionView, create_session, read_session, reason_message, submit_frame

RECOMMENDED_WIDTH = 640
RECOMMENDED_HEIGHT = 480

logger = Logger(service="liveness")  # never given image data
# Powertools' Metrics instances share one metric set: the handler's ``log_metrics`` flushes these too.
metrics = Metrics(namespace=METRICS_NAMESPACE, service="liveness")


def build_router(deps: Dependencies) -> Router:
    router = Router()

    def request_id() -> str:
        return request_id_of(router.current_event, router.lambda_context)

    @router.post("/sessions")
    def post_session() -> Response:
        owner = caller_id_of(router.current_event, deps.settings.anonymous_caller)
        session = create_session(json_body_of(router.current_event, "session_create"), deps, owner, request_id())
        return json_response(201, created_response(session, deps, request_id()))

    @router.post("/sessions/<session_id>/frames")
    def post_frame(session_id: str) -> Response:
        owner = caller_id_of(router.current_event, deps.settings.anonymous_caller)
        body = json_body_of(router.current_event, "session_frame")
        started = time.perf_counter()
        result = submit_frame(session_id, body, deps, owner, request_id())
        _record_frame(result, (time.perf_counter() - started) * 1000)
        return json_response(200, frame_response(result, request_id()))

    @router.post("/sessions/<session_id>/light")
    def post_light(session_id: str) -> Response:
        owner = caller_id_of(router.current_event, deps.settings.anonymous_caller)
        json_body_of(router.current_event, "light_start")
        session = start_light(session_id, deps, owner, request_id())
        return json_response(201, light_start_response(session, request_id()))

    @router.post("/sessions/<session_id>/light/frames")
    def post_light_frames(session_id: str) -> Response:
        owner = caller_id_of(router.current_event, deps.settings.anonymous_caller)
        body = json_body_of(router.current_event, "light_frames")
        started = time.perf_counter()
        result = submit_light(session_id, body, deps, owner, request_id())
        _record_frame(result, (time.perf_counter() - started) * 1000)
        return json_response(200, frame_response(result, request_id()))

    @router.get("/sessions/<session_id>")
    def get_session(session_id: str) -> Response:
        owner = caller_id_of(router.current_event, deps.settings.anonymous_caller)
        view = read_session(session_id, deps, owner, request_id())
        return json_response(200, session_response(view, request_id()))

    return router


def _record_frame(result: FrameResult, latency_ms: float) -> None:
    """One log line and one latency sample per judged frame: ids, verdict and timing, never the image."""
    record = result.record
    logger.info(
        "Frame evaluated",
        extra={
            "sessionId": result.session.session_id,
            "frameId": record.frame_id,
            "stepIndex": record.step_index,
            "verdict": record.verdict.value,
            "reasonCode": record.reason.value if record.reason else None,
            "status": result.session.status.value,
            # The light step's measured response (numbers only), for calibration from the logs too.
            "light": record.measured.get("light"),
            "latencyMs": round(latency_ms, 1),
        },
    )
    metrics.add_metric(name="FrameLatency", unit=MetricUnit.Milliseconds, value=latency_ms)


def _steps(session: Session) -> list[dict[str, Any]]:
    return [
        {"index": index, "code": step.code.value, "instruction": INSTRUCTIONS[step.code]}
        for index, step in enumerate(session.steps)
    ]


def created_response(session: Session, deps: Dependencies, request_id: str) -> dict[str, Any]:
    return {
        "sessionId": session.session_id,
        "status": session.status.value,
        "steps": _steps(session),
        "currentStep": session.current_step,
        "expiresAt": session.expires_at.isoformat(),
        "stepTimeLimitSeconds": session.limits.step_time_limit_seconds,
        "maxFrames": session.limits.max_frames,
        "stepMaxFrames": session.limits.step_max_frames,
        "mirrored": session.mirrored,
        "lightChallenge": session.light_mode,
        "frameConstraints": {
            "formats": list(SUPPORTED_TYPES),
            "maxBytes": deps.settings.max_upload_bytes,
            "recommendedWidth": RECOMMENDED_WIDTH,
            "recommendedHeight": RECOMMENDED_HEIGHT,
        },
        "requestId": request_id,
    }


def frame_response(result: FrameResult, request_id: str) -> dict[str, Any]:
    session, record = result.session, result.record
    return {
        "sessionId": session.session_id,
        "frameId": record.frame_id,
        "verdict": record.verdict.value,
        "reasonCode": record.reason.value if record.reason else None,
        "message": reason_message(record.reason),
        "stepIndex": record.step_index,
        "stepCode": record.step_code.value,
        "measured": record.measured,
        # Withheld beyond the comparison range: a score there proves nothing, and would let a swapped-in person
        # tune against it (it stays in the audit record).
        "similarity": None if record.reason is ReasonCode.FACE_NOT_COMPARABLE else record.similarity,
        # Compared with this verified frame of the step, not with the reference face (the identity chain).
        "link": link_to_dict(record.link),
        # Which analyzer's measurement decided: the pre-screen refuses clear misses on the Rekognition path.
        "judgedBy": record.judged_by or session.analyzer,
        "status": session.status.value,
        "currentStep": session.current_step,
        "failureReason": session.failure_reason.value if session.failure_reason else None,
        "samePersonCheck": session.same_person_check.value,
        "baseline": session.baseline.pose_json() if session.baseline is not None else None,
        "sessionVerdict": verdict_of(session) if not session.is_open else None,
        "requestId": request_id,
    }


def session_response(view: SessionView, request_id: str) -> dict[str, Any]:
    session = view.session
    state = session_to_dict(session)
    body: dict[str, Any] = {
        "sessionId": session.session_id,
        "status": session.status.value,
        "failureReason": state["failureReason"],
        "samePersonCheck": session.same_person_check.value,
        "verdict": verdict_of(session),
        "analyzer": session.analyzer,
        "currentStep": session.current_step,
        "steps": [{"index": index, **step} for index, step in enumerate(state["steps"])],
        "createdAt": state["createdAt"],
        "expiresAt": state["expiresAt"],
        "closedAt": state["closedAt"],
        "framesReceived": session.frames_received,
        "maxFrames": session.limits.max_frames,
        "referenceFace": None,
        "requestId": request_id,
    }
    if view.reference_face is not None and session.reference_frame_id is not None:
        body["referenceFace"] = {
            "key": reference_face_key(session.session_id, session.reference_frame_id),
            "contentType": "image/jpeg",
            "base64": base64.b64encode(view.reference_face).decode("ascii"),
        }
    return body
