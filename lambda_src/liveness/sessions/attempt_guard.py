"""The attempt policy's I/O: admitting a new session, counting a closed one, and the audit record of a lock.

Every change to a user's record is a conditional write of the version it read (store.py), retried on a
conflict with the fresh record, so parallel creates can never pass a cap between them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ..archive import ArchiveConflict
from ..constants import METRICS_NAMESPACE
from ..dependencies import Dependencies
from ..errors import ErrorCode, LivenessError
from .attempts import (
    Refusal,
    UserAttempts,
    counted_failures,
    empty,
    owner_digest,
    refusal,
    with_created,
    with_outcome,
    without_session,
)
from .keys import lock_audit_key
from .model import Session, SessionStatus
from .store import SessionConflict

logger = Logger(service="liveness")  # never given image data
LOCK_SCHEMA_VERSION = 1
# A conflict means another write of the same user's record committed. Refused creates write nothing, so a burst
# conflicts at most once per session it admits; the API's concurrency (20 by default) bounds that.
MAX_ATTEMPT_SAVES = 64


class _Refused(Exception):
    def __init__(self, refused: Refusal) -> None:
        super().__init__(refused.code.value)
        self.refused = refused


def admit_session(deps: Dependencies, session: Session, request_id: str) -> None:
    """Record the new session as open for its owner, or raise the 429 the policy answers (nothing stored)."""
    limits = deps.settings.attempt_limits

    def admit(record: UserAttempts, now: float) -> UserAttempts:
        refused = refusal(record, now, limits)
        if refused is not None:
            raise _Refused(refused)
        return with_created(record, session.session_id, session.expires_at, now, limits)

    try:
        _update(deps, session.owner, admit)
    except _Refused as refused:
        _count("SessionsRefused", refused.refused.code.value)
        logger.warning(
            "Session refused by the attempt policy",
            extra={"code": refused.refused.code.value, "retryAfter": refused.refused.retry_after},
        )
        if refused.refused.code is ErrorCode.TOO_MANY_ATTEMPTS:
            write_lock_audit(deps, session.owner, refused.refused, request_id)
        raise refused.refused.error() from None


def release_session(deps: Dependencies, session: Session) -> None:
    """Best effort: forget an admitted session whose create failed (else it would count as failed later)."""
    try:
        _update(deps, session.owner, lambda record, _now: without_session(record, session.session_id))
    except Exception as error:  # the create's own error is what the client gets
        logger.warning("Attempt record not released", extra={"error": type(error).__name__})


def count_outcome(deps: Dependencies, session: Session, request_id: str) -> None:
    """Best effort, by the request whose save closed the session: it is no longer open, and a failure if it did not
    pass. Should this write fail, the session still counts: as failed, from its deadline (the policy fails closed)."""
    limits = deps.settings.attempt_limits
    failed = session.status is not SessionStatus.PASSED
    closed_at = (session.closed_at or deps.clock()).timestamp()
    try:
        before, after = _update(
            deps,
            session.owner,
            lambda record, now: with_outcome(record, session.session_id, failed, closed_at, now, limits),
        )
    except Exception as error:
        logger.warning("Attempt not counted", extra={"sessionId": session.session_id, "error": type(error).__name__})
        return
    now = deps.clock().timestamp()
    locked = refusal(after, now, limits)
    if failed and locked is not None and locked.code is ErrorCode.TOO_MANY_ATTEMPTS:
        if len(counted_failures(before, now, limits)) < limits.max_failed_sessions:  # this failure met the lock
            write_lock_audit(deps, session.owner, locked, request_id)


def write_lock_audit(deps: Dependencies, owner: str, locked: Refusal, request_id: str) -> None:
    """Best effort, once per lock (its key is the user and the lock's end): who, which failures, until when."""
    lifts_at = datetime.fromtimestamp(locked.until, timezone.utc)
    limits = deps.settings.attempt_limits
    record = {
        "schemaVersion": LOCK_SCHEMA_VERSION,
        "event": "USER_LOCKED",
        "code": locked.code.value,
        "owner": owner,
        "ownerKey": owner_digest(owner),
        "failedSessions": {
            session_id: _iso(at) for session_id, at in sorted(locked.failures.items(), key=lambda item: item[1])
        },
        "maxFailedSessions": limits.max_failed_sessions,
        "failureWindowSeconds": limits.failure_window_seconds,
        "lockedUntil": lifts_at.isoformat(),
        "requestId": request_id,
        "writtenAt": deps.clock().isoformat(),
    }
    body = json.dumps(record, indent=2).encode("utf-8")
    try:
        deps.archive.put_new(lock_audit_key(owner_digest(owner), lifts_at), body, "application/json")
    except ArchiveConflict:
        return  # this lock is already on record
    except Exception as error:  # the 429 stands whatever happens here
        logger.error("Lock audit record not written", extra={"error": type(error).__name__})
        return
    _count("UsersLocked")
    logger.warning("User locked by the attempt policy", extra={"lockedUntil": record["lockedUntil"]})


def _update(
    deps: Dependencies, owner: str, change: Callable[[UserAttempts, float], UserAttempts]
) -> tuple[UserAttempts, UserAttempts]:
    """Apply ``change`` to the user's stored record and save it conditionally; on a conflict, read and apply
    again. Answers (the record read, the record stored)."""
    store, limits = deps.session_store, deps.settings.attempt_limits
    key = owner_digest(owner)
    for _ in range(MAX_ATTEMPT_SAVES):
        current = store.get_attempts(key) or empty(owner)
        after = change(current, deps.clock().timestamp())
        if after is current:
            return current, current
        saved = replace(after, version=current.version + 1)
        try:
            store.save_attempts(saved, expected_version=current.version, keep_until=int(saved.expires_at(limits)))
            return current, saved
        except SessionConflict:
            continue
    logger.warning("Gave up after conflicting attempt saves")
    raise LivenessError(ErrorCode.CONFLICT, "Too many requests at once; retry.", retry_after=1)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def _count(name: str, code: Any = None) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        if code is not None:
            metric.add_dimension(name="code", value=str(code))
