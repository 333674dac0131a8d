"""The identity chain: which verified frame a frame beyond the comparison range is compared with. Pure.

The embedded model's same-person score collapses far from a frontal reference (looking 40 degrees up: 3-27)
but stays high between frames close in pose and time (docs/sessions.md, "Identity through the movement").
So a far frame is compared with the nearest-pose frame of the same step already verified, within
``link_max_angle`` degrees and ``link_max_seconds``, at most ``max_link_hops`` links from a frame compared with
the reference directly. The bounds keep a chain short and fresh: interleaved frames of two people at human pace,
or a slow morph from one person to another, cannot carry the identity across.
A far frame that came before any frame it could link to waits (``AwaitingFrame``): a frame verified on its way
back, within the same bounds, confirms it. The link is the same, only in the other order of arrival.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from ..challenges import HEAD_MOVEMENTS, Measured, StepCode, Thresholds
from .model import AwaitingFrame, Link, Session, VerifiedFrame

# A head movement this far toward its step's direction, not there yet, is compared too: it gives the step's
# far frames something close to link to. Above a straight head's jitter (the webcam clip: within 4 degrees of
# yaw and 6.5 of pitch between its straight frames), low enough that a quick movement still shows one.
TRANSIT_MIN_DEGREES = 7.0
# Verified frames kept in the session item (the latest): enough for a step, small enough for the item.
MAX_VERIFIED_KEPT = 8
# Far frames kept awaiting a link (the latest): a hold of two seconds at the page's pace.
MAX_AWAITING_KEPT = 8

_DIRECTION = {
    StepCode.TURN_LEFT: ("yaw", 1.0),
    StepCode.TURN_RIGHT: ("yaw", -1.0),
    StepCode.LOOK_UP: ("pitch", 1.0),
    StepCode.LOOK_DOWN: ("pitch", -1.0),
}


Frame = TypeVar("Frame", VerifiedFrame, AwaitingFrame)


def pose_gap(yaw: float, pitch: float, other: VerifiedFrame | AwaitingFrame) -> float:
    return max(abs(yaw - other.yaw), abs(pitch - other.pitch))


def in_transit(step: StepCode, movement: Measured, t: Thresholds) -> bool:
    """The head is on its way: at least TRANSIT_MIN_DEGREES toward the step's direction, the other axis within
    the off-axis limit (a frame that meets the step is judged as such, not as transit)."""
    if step not in HEAD_MOVEMENTS or movement.yaw is None or movement.pitch is None:
        return False
    axis, sign = _DIRECTION[step]
    along = sign * (movement.yaw if axis == "yaw" else movement.pitch)
    across = movement.pitch if axis == "yaw" else movement.yaw
    return along >= TRANSIT_MIN_DEGREES and abs(across) <= t.off_axis_max


def link_for(session: Session, movement: Measured, now: datetime, t: Thresholds) -> Link | None:
    """The verified frame of the current step to compare a far frame with, or None: the nearest in pose (then
    the latest) among those within the pose and time bounds whose chain can take one more link."""
    if movement.yaw is None or movement.pitch is None:
        return None
    extendable = [frame for frame in session.verified if frame.hops + 1 <= t.max_link_hops]
    best = _nearest(session, extendable, movement.yaw, movement.pitch, now, t)
    if best is None:
        return None
    return Link(
        frame_id=best.frame_id, hops=best.hops + 1, gap_degrees=round(pose_gap(movement.yaw, movement.pitch, best), 1)
    )


def _nearest(
    session: Session, frames: list[Frame], yaw: float, pitch: float, now: datetime, t: Thresholds
) -> Frame | None:
    """Of ``frames``, the current step's nearest in pose (then the latest) within the link's pose and time bounds."""
    if t.link_max_angle <= 0:
        return None
    candidates = [
        frame
        for frame in frames
        if frame.step_index == session.current_step
        and pose_gap(yaw, pitch, frame) <= t.link_max_angle
        and 0 <= (now - frame.at).total_seconds() <= t.link_max_seconds
    ]
    return min(candidates, key=lambda frame: (pose_gap(yaw, pitch, frame), -frame.at.timestamp()), default=None)


def with_verified(session: Session, frame_id: str, movement: Measured, link: Link | None, now: datetime) -> Session:
    """The session with this frame added to the current step's verified frames (older steps' are dropped)."""
    if movement.yaw is None or movement.pitch is None:
        return session
    verified = VerifiedFrame(
        frame_id=frame_id,
        step_index=session.current_step,
        yaw=movement.yaw,
        pitch=movement.pitch,
        at=now,
        hops=link.hops if link is not None else 0,
    )
    kept = tuple(frame for frame in session.verified if frame.step_index == session.current_step)
    return replace(session, verified=(kept + (verified,))[-MAX_VERIFIED_KEPT:])


def awaiting_for(session: Session, movement: Measured, hops: int, now: datetime, t: Thresholds) -> Link | None:
    """The awaiting far frame of the current step a frame just verified (``hops`` from the reference) can confirm,
    or None: the nearest in pose (then the latest) within the link's pose and time bounds and hop limit."""
    if movement.yaw is None or movement.pitch is None or hops + 1 > t.max_link_hops:
        return None
    best = _nearest(session, list(session.awaiting), movement.yaw, movement.pitch, now, t)
    if best is None:
        return None
    return Link(
        frame_id=best.frame_id, hops=hops + 1, gap_degrees=round(pose_gap(movement.yaw, movement.pitch, best), 1)
    )


def with_awaiting(session: Session, frame_id: str, movement: Measured, now: datetime) -> Session:
    """The session with this far frame added to the current step's frames awaiting a link."""
    if movement.yaw is None or movement.pitch is None:
        return session
    frame = AwaitingFrame(
        frame_id=frame_id, step_index=session.current_step, yaw=movement.yaw, pitch=movement.pitch, at=now
    )
    kept = tuple(item for item in session.awaiting if item.step_index == session.current_step)
    return replace(session, awaiting=(kept + (frame,))[-MAX_AWAITING_KEPT:])
