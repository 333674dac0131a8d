"""Committing a transition: the conditional save with its retries, and the work that follows a committed write
(the closing metric, the audit record)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ..challenges import Thresholds
from ..constants import METRICS_NAMESPACE
from ..dependencies import Dependencies
from ..errors import ErrorCode, LivenessError
from ..limits import MAX_FRAMES_CAP
from .attempt_guard import count_outcome
from .audit import write_audit
from .model import Session
from .store import SessionConflict, SessionStore
from .transitions import close_if_due

logger = Logger(service="liveness")  # shares the handler's configuration; never given image data

# Each failed conditional save means another write of this session committed. A frame makes two writes (its
# reservation and its verdict) and at most MAX_FRAMES_CAP frames hold slots, so this bound is never reached.
MAX_SAVE_ATTEMPTS = 2 * MAX_FRAMES_CAP + 8

T = TypeVar("T")


@dataclass(frozen=True)
class Commit(Generic[T]):
    before: Session  # the state the saved transition started from
    after: Session  # the saved state (== before when nothing changed)
    value: T

    @property
    def wrote(self) -> bool:
        return self.after is not self.before


def commit_transition(
    deps: Dependencies, session: Session, transition: Callable[[Session], tuple[Session, T]]
) -> Commit[T]:
    """Apply ``transition`` and save conditionally; on a conflict, re-read and apply it to the fresh state.

    The save expects the version and status the transition started from: open for every change but one, the
    log entry of a frame whose session closed while it was analysed."""
    store = deps.session_store
    for _ in range(MAX_SAVE_ATTEMPTS):
        after, value = transition(session)
        if after is session:
            return Commit(session, session, value)
        try:
            store.save(after, expected_version=session.version, expected_status=session.status)
            return Commit(session, after, value)
        except SessionConflict:
            session = reload_session(store, session.session_id)
    logger.warning("Gave up after conflicting saves", extra={"sessionId": session.session_id})
    raise LivenessError(ErrorCode.CONFLICT, "The session is busy; retry the frame.", retry_after=1)


def commit_due(deps: Dependencies, session: Session, now: datetime, request_id: str) -> Session:
    commit = commit_transition(deps, session, lambda current: (close_if_due(current, now), None))
    return after_commit(deps, commit, request_id)


def after_commit(deps: Dependencies, commit: Commit[Any], request_id: str) -> Session:
    """After a committed write: the request whose save closed the session counts the outcome (the metric and the
    user's attempt record: the one place every close passes, whatever closed it), and the request
    whose save left it closed AND settled (no frame still being analysed) writes the audit record. Only
    best-effort work happens here: the committed state is answered whatever fails. Returns the state."""
    session = commit.after
    if not commit.wrote or session.is_open:
        return session
    if commit.before.is_open:
        logger.info(
            "Session closed",
            extra={
                "sessionId": session.session_id,
                "status": session.status.value,
                "failureReason": _value(session.failure_reason),
            },
        )
        with single_metric(
            name="SessionsClosed", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
        ) as metric:
            metric.add_dimension(name="status", value=session.status.value)
        count_outcome(deps, session, request_id)  # the user's attempt record: no longer open, failed or not
    if session.settled:
        session = ensure_audit(deps, session, request_id)
    return session


def ensure_audit(deps: Dependencies, session: Session, request_id: str) -> Session:
    """Write the closed session's audit record unless its item says it exists, then record that on the item.

    No failure here fails the request: the state is already committed (answering an error would make the
    client resend a frame that was judged). The item still says ``auditWritten: false``, so the next read
    retries, and the TTL expiry handler is the last resort. A deployment bug (AccessDenied) is logged at error
    level, and the expiry handler's ExpiryAuditFailures metric alarms on it."""
    if session.audit_written:
        return session
    try:
        write_audit(
            deps.archive,
            session,
            thresholds=session_thresholds(deps, session),
            request_id=request_id,
            written_at=deps.clock(),
        )
    except LivenessError as error:  # the archive is throttled or down (a 503)
        logger.warning(
            "Audit record not written yet", extra={"sessionId": session.session_id, "code": error.code.value}
        )
        return session
    except Exception as error:  # AccessDenied or a bug: loud in the logs, but the committed answer stands
        logger.error("Audit record not written", extra={"sessionId": session.session_id, "error": type(error).__name__})
        return session
    try:
        deps.session_store.record_audit_written(session)
    except Exception as error:  # only an optimisation: the next read finds the record
        logger.warning("Audit flag not stored", extra={"sessionId": session.session_id, "error": type(error).__name__})
        return session
    return replace(session, audit_written=True)


def session_thresholds(deps: Dependencies, session: Session) -> Thresholds:
    """The session's own thresholds (stored at creation); the deployment's for an item stored before that."""
    return session.thresholds or deps.settings.thresholds


def reload_session(store: SessionStore, session_id: str) -> Session:
    session = store.get(session_id)
    if session is None:  # deleted between reads (TTL): treat as gone
        raise LivenessError(ErrorCode.SESSION_NOT_FOUND, "No such session.")
    return session


def _value(member: Any) -> Any:
    return member.value if member is not None else None
