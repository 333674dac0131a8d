"""The audit record of a closed session: one JSON document, written once, never overwritten.

It is written by the request that closed the session, repaired by a later read if that write failed, and
written for abandoned sessions by the TTL expiry handler (``expiry.py``). It holds no image data: the images
sit in the archive under the keys it names.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..archive import Archive, ArchiveConflict
from ..challenges import Thresholds
from .codec import frame_to_dict, session_to_dict
from .keys import audit_key, reference_face_key
from .model import SamePersonCheck, Session, SessionStatus

SCHEMA_VERSION = 1


def audit_record(session: Session, thresholds: Thresholds, request_id: str, written_at: datetime) -> dict[str, Any]:
    """``thresholds`` is only the fallback for an item stored before sessions kept their own copy: the record
    carries the thresholds (and limits) stored in the session at creation, the ones its frames were judged by."""
    state = session_to_dict(session)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "sessionId": session.session_id,
        "owner": session.owner,
        "verdict": verdict_of(session),
        "status": session.status.value,
        "failureReason": state["failureReason"],
        "samePersonCheck": session.same_person_check.value,
        "analyzer": session.analyzer,
        "createdAt": state["createdAt"],
        "expiresAt": state["expiresAt"],
        "closedAt": state["closedAt"],
        "mirrored": session.mirrored,
        "limits": state["limits"],
        "thresholds": (session.thresholds or thresholds).to_json(),
        "baseline": state["baseline"],  # the neutral start's pose (and face aspect) every movement was judged from
        "steps": state["steps"],
        # The light step's mode, thresholds and attempts; each batch's measured response is in its frame record.
        "light": state["light"],
        "framesReceived": session.frames_received,
        "frames": [frame_to_dict(frame) for frame in session.frames],
        "referenceFaceKey": (
            reference_face_key(session.session_id, session.reference_frame_id) if session.reference_frame_id else None
        ),
        "referenceFrameId": session.reference_frame_id,
        "comparisons": session.comparisons,
        "version": session.version,
        "closingRequestId": request_id,
        "writtenAt": written_at.isoformat(),
    }


def write_audit(
    archive: Archive, session: Session, *, thresholds: Thresholds, request_id: str, written_at: datetime
) -> bool:
    """Create the record; False if it already exists (the first record stands). Storage errors propagate.

    ``thresholds`` applies only if the session has no stored copy (see ``audit_record``)."""
    if session.is_open:
        raise ValueError("only a closed session has an audit record")
    body = json.dumps(audit_record(session, thresholds, request_id, written_at), indent=2).encode("utf-8")
    try:
        archive.put_new(audit_key(session.session_id), body, "application/json")
        return True
    except ArchiveConflict:
        return False


def verdict_of(session: Session) -> dict[str, Any]:
    """The outcome a relying party reads. PASSED with ``samePersonCheck: not_performed`` is NOT a verified match."""
    return {
        "status": session.status.value,
        "livenessPassed": session.status is SessionStatus.PASSED,
        "samePersonCheck": session.same_person_check.value,
        "samePersonVerified": session.same_person_check is SamePersonCheck.PASSED,
    }
