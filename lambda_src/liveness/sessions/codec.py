"""A session's plain-data form, shared by the stores (DynamoDB item, JSON file) and the audit record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..challenges import INSTRUCTIONS, Baseline, ReasonCode, StepCode, Thresholds
from ..light.decision import LightThresholds
from ..light.mode import OFF
from ..light.sequence import LightSequence
from ..limits import SessionLimits
from .model import (
    AwaitingFrame,
    Confirmation,
    FailureReason,
    FrameRecord,
    LightAttempt,
    LightChallenge,
    Link,
    PendingFrame,
    SamePersonCheck,
    Session,
    SessionStatus,
    Step,
    StepStatus,
    Verdict,
    VerifiedFrame,
)


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
            "lightMaxAttempts": session.limits.light_max_attempts,
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
        "screenBaseline": session.screen_baseline.to_json() if session.screen_baseline is not None else None,
        "pending": [
            {"frameId": frame.frame_id, "frameKey": frame.frame_key, "stepIndex": frame.step_index}
            for frame in session.pending
        ],
        "verified": [
            {
                "frameId": frame.frame_id,
                "stepIndex": frame.step_index,
                "yaw": frame.yaw,
                "pitch": frame.pitch,
                "at": _iso(frame.at),
                "hops": frame.hops,
            }
            for frame in session.verified
        ],
        "awaiting": [
            {
                "frameId": frame.frame_id,
                "stepIndex": frame.step_index,
                "yaw": frame.yaw,
                "pitch": frame.pitch,
                "at": _iso(frame.at),
            }
            for frame in session.awaiting
        ],
        "light": light_to_dict(session),
    }


def light_to_dict(session: Session) -> dict[str, Any]:
    """The light step's state: the mode and thresholds it was judged by, the open challenge, the attempts."""
    challenge = session.light_challenge
    return {
        "mode": session.light_mode,
        "thresholds": session.light_thresholds.to_json() if session.light_thresholds is not None else None,
        "challenge": (
            {
                **challenge.sequence.to_json(),
                "revealedAt": _iso(challenge.revealed_at),
                "submitBy": _iso(challenge.submit_by),
                "attempt": challenge.attempt,
            }
            if challenge is not None
            else None
        ),
        "attempts": [
            {
                "challengeId": item.challenge_id,
                "attempt": item.attempt,
                "outcome": item.outcome,
                "accepted": item.accepted,
                "at": _iso(item.at),
            }
            for item in session.light_attempts
        ],
    }


def _light_from_dict(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Session fields from ``light_to_dict``; an item stored before the light step has none (mode off)."""
    if not raw:
        return {}
    challenge = raw.get("challenge")
    return {
        "light_mode": str(raw.get("mode") or OFF),
        "light_thresholds": LightThresholds.from_json(raw["thresholds"]) if raw.get("thresholds") else None,
        "light_challenge": (
            LightChallenge(
                sequence=LightSequence.from_json(challenge),
                revealed_at=_time(challenge["revealedAt"]),  # type: ignore[arg-type]
                submit_by=_time(challenge["submitBy"]),  # type: ignore[arg-type]
                attempt=int(challenge["attempt"]),
            )
            if challenge
            else None
        ),
        "light_attempts": tuple(
            LightAttempt(
                challenge_id=str(item["challengeId"]),
                attempt=int(item["attempt"]),
                outcome=str(item["outcome"]),
                accepted=bool(item["accepted"]),
                at=_time(item["at"]),  # type: ignore[arg-type]
            )
            for item in raw.get("attempts") or ()
        ),
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
    record = {
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
        "link": link_to_dict(frame.link),
    }
    if frame.confirms is not None:  # rare: kept out of the item otherwise (the frame log is most of its size)
        record["confirms"] = _confirmation_to_dict(frame.confirms)
    if frame.judged_by is not None:
        record["judgedBy"] = frame.judged_by
    return record


def link_to_dict(link: Link | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {"frameId": link.frame_id, "hops": link.hops, "gapDegrees": link.gap_degrees}


def _confirmation_to_dict(confirmation: Confirmation | None) -> dict[str, Any] | None:
    if confirmation is None:
        return None
    return {
        "frameId": confirmation.frame_id,
        "hops": confirmation.hops,
        "gapDegrees": confirmation.gap_degrees,
        "similarity": confirmation.similarity,
    }


def _confirmation_from_dict(raw: dict[str, Any] | None) -> Confirmation | None:
    if not raw:
        return None
    return Confirmation(
        frame_id=raw["frameId"],
        hops=int(raw["hops"]),
        gap_degrees=float(raw["gapDegrees"]),
        similarity=float(raw["similarity"]),
    )


def _link_from_dict(raw: dict[str, Any] | None) -> Link | None:
    if not raw:
        return None
    return Link(frame_id=raw["frameId"], hops=int(raw["hops"]), gap_degrees=float(raw["gapDegrees"]))


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
            light_max_attempts=int(limits.get("lightMaxAttempts", SessionLimits().light_max_attempts)),
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
        screen_baseline=Baseline.from_json(raw["screenBaseline"]) if raw.get("screenBaseline") else None,
        pending=tuple(
            PendingFrame(frame_id=item["frameId"], frame_key=item["frameKey"], step_index=int(item["stepIndex"]))
            for item in raw.get("pending") or ()
        ),
        verified=tuple(
            VerifiedFrame(
                frame_id=item["frameId"],
                step_index=int(item["stepIndex"]),
                yaw=float(item["yaw"]),
                pitch=float(item["pitch"]),
                at=_time(item["at"]),  # type: ignore[arg-type]
                hops=int(item["hops"]),
            )
            for item in raw.get("verified") or ()
        ),
        awaiting=tuple(
            AwaitingFrame(
                frame_id=item["frameId"],
                step_index=int(item["stepIndex"]),
                yaw=float(item["yaw"]),
                pitch=float(item["pitch"]),
                at=_time(item["at"]),  # type: ignore[arg-type]
            )
            for item in raw.get("awaiting") or ()
        ),
        **_light_from_dict(raw.get("light")),
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
        link=_link_from_dict(raw.get("link")),
        confirms=_confirmation_from_dict(raw.get("confirms")),
        judged_by=raw.get("judgedBy"),
    )
