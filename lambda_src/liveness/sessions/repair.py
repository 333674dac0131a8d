"""Frames whose request died between reserving a slot and saving a verdict (a storage outage, a timeout).

Such a slot stays reserved and the session "unsettled" (``frames_received`` > logged frames), and an unsettled
session's audit record waits for its last frame. A request ends at the latest when Lambda stops it (the
function timeout, at most API Gateway's 29 s; the local server finishes a frame in well under a second), so a
slot still unsettled ``ABANDONED_AFTER_SECONDS`` after the session's last write belongs to a request that no
longer exists: every reservation is such a write, so no live frame can be older than that. The margin is wide
(15 minutes, 30 times the longest request) because a wrong guess costs more than a late audit: a request that
did outlive it finds its slot settled and is answered 409 CONFLICT (send the frame again), never logged twice.

The next read or frame of the session then logs each abandoned slot as ``NOT_JUDGED``, under the frame id and
archive key its request recorded with the reservation (the upload may have been archived under it), and, if the
session is closed, writes its audit record. The TTL expiry handler applies the same repair to the removed item, a day later.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ..challenges import Measured, ReasonCode
from .model import FrameEvaluation, Session
from .transitions import settle_frame

ABANDONED_AFTER_SECONDS = 15 * 60


def has_abandoned_frames(session: Session, now: datetime) -> bool:
    last_write = session.updated_at or session.created_at
    return not session.settled and now - last_write >= timedelta(seconds=ABANDONED_AFTER_SECONDS)


def settle_abandoned(session: Session, now: datetime) -> Session:
    """Log every unsettled slot as NOT_JUDGED (pure; the caller decides that the slots are abandoned), under the
    frame id and archive key its request recorded with the reservation; a slot reserved before those were
    recorded gets a fresh id and no key."""
    recorded = list(session.pending)
    for _ in range(max(0, session.frames_received - len(session.frames))):
        pending = recorded.pop(0) if recorded else None
        evaluation = FrameEvaluation(
            frame_id=pending.frame_id if pending else str(uuid.uuid4()),
            step_index=pending.step_index if pending else session.current_step,
            reason=ReasonCode.NOT_JUDGED,
            measured=Measured(),
            mirrored=session.mirrored,
            frame_key=pending.frame_key if pending else "",
        )
        session, _ = settle_frame(session, evaluation, now, 0.0)
    return session
