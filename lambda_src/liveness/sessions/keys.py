"""Where a session's objects live in the archive. Every key is written once; frame ids are fresh uuid4s.

- ``sessions/<id>/...``: the evidence (uploads and face crops), under the selfie retention.
- ``audit/sessions/<id>.json``: the audit record, under its own prefix so it can be kept longer.
- ``audit/attempts/<owner digest>/<lock end>.json``: a user locked by the attempt policy (attempts.py).
"""

from __future__ import annotations

from datetime import datetime

from ..archive import SESSIONS_PREFIX
from ..constants import IMAGE_EXTENSIONS

AUDIT_PREFIX = "audit"


def frame_key(session_id: str, frame_id: str, content_type: str) -> str:
    """An analysed upload, as received."""
    return f"{SESSIONS_PREFIX}/{session_id}/frames/{frame_id}.{IMAGE_EXTENSIONS[content_type]}"


def face_crop_key(session_id: str, frame_id: str) -> str:
    """The face crop of a frame that could become the reference face."""
    return f"{SESSIONS_PREFIX}/{session_id}/frames/{frame_id}-face.jpg"


def reference_face_key(session_id: str, reference_frame_id: str) -> str:
    """The reference face IS the reference frame's crop: written before the save that names the frame, so a
    reader never asks for a key that may not exist (S3 answers a missing key with 403 without s3:ListBucket)."""
    return face_crop_key(session_id, reference_frame_id)


def audit_key(session_id: str) -> str:
    return f"{AUDIT_PREFIX}/{SESSIONS_PREFIX}/{session_id}.json"


def lock_audit_key(owner_key: str, lifts_at: datetime) -> str:
    """One record per lock: the same user and lock end always name the same key (written once)."""
    return f"{AUDIT_PREFIX}/attempts/{owner_key}/{lifts_at.strftime('%Y%m%dT%H%M%SZ')}.json"


def light_prefix(session_id: str, challenge_id: str) -> str:
    """Where one light challenge's batch is archived (its frame record's ``frameKey``)."""
    return f"{SESSIONS_PREFIX}/{session_id}/light/{challenge_id}/"


def light_frame_key(session_id: str, challenge_id: str, colour_index: int, offset_ms: int, content_type: str) -> str:
    """One frame of a light batch, as received: single use challenges make the key written once."""
    return f"{light_prefix(session_id, challenge_id)}{colour_index}_{offset_ms}.{IMAGE_EXTENSIONS[content_type]}"
