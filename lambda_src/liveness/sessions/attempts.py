"""A user's attempt record and the per-user attempt policy (docs/security.md: "Attempt limits"); pure, no I/O.

One record per user: the sessions still open (with their deadline), the sessions that failed within the
window, and the creations of the last minute. Every entry is keyed by session id, so applying a session's
outcome twice (a retried write, a read that finds it again) changes nothing: no failure is counted twice.
A session still open at its deadline counts as failed from then: abandoning a failing session is no way out.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..errors import ErrorCode, LivenessError
from ..limits import AttemptLimits

CREATION_WINDOW_SECONDS = 60


def owner_digest(owner: str) -> str:
    """The user's key in storage: a digest, so that no caller id sits in a table key or a file name."""
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class UserAttempts:
    owner_key: str  # owner_digest(owner)
    open: dict[str, float] = field(default_factory=dict)  # session id -> its deadline (epoch seconds)
    failures: dict[str, float] = field(default_factory=dict)  # session id -> when it failed (epoch seconds)
    creations: tuple[float, ...] = ()  # when sessions were created, within the last minute
    version: int = 0  # 0: never stored; every save expects the version it read

    def to_dict(self) -> dict[str, Any]:
        return {
            "ownerKey": self.owner_key,
            "open": dict(self.open),
            "failures": dict(self.failures),
            "creations": list(self.creations),
            "version": self.version,
        }

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> UserAttempts:
        return UserAttempts(
            owner_key=str(raw["ownerKey"]),
            open={str(key): float(value) for key, value in raw.get("open", {}).items()},
            failures={str(key): float(value) for key, value in raw.get("failures", {}).items()},
            creations=tuple(float(value) for value in raw.get("creations", [])),
            version=int(raw["version"]),
        )

    def expires_at(self, limits: AttemptLimits) -> float:
        """When the record holds nothing the policy still needs (for the DynamoDB TTL)."""
        latest = max([*self.open.values(), *self.failures.values(), *self.creations, 0.0])
        return latest + limits.failure_window_seconds


@dataclass(frozen=True)
class Refusal:
    code: ErrorCode
    message: str
    retry_after: int  # seconds until a create could succeed
    until: float  # the moment it could (epoch seconds)
    failures: dict[str, float] = field(default_factory=dict)  # TOO_MANY_ATTEMPTS: the failures that lock the user

    def error(self) -> LivenessError:
        return LivenessError(self.code, self.message, retry_after=self.retry_after)


def empty(owner: str) -> UserAttempts:
    return UserAttempts(owner_key=owner_digest(owner))


def counted_failures(record: UserAttempts, now: float, limits: AttemptLimits) -> dict[str, float]:
    """The failures inside the window: closed as failed, or still open past their deadline."""
    since = now - limits.failure_window_seconds
    overdue = {session_id: deadline for session_id, deadline in record.open.items() if deadline <= now}
    return {key: at for key, at in {**record.failures, **overdue}.items() if since < at <= now}


def refusal(record: UserAttempts, now: float, limits: AttemptLimits) -> Refusal | None:
    """Why the user may not create a session now, or None. The lock comes first: it is the one that lasts."""
    failures = counted_failures(record, now, limits)
    if len(failures) >= limits.max_failed_sessions:
        # The lock lifts when enough of the oldest failures have left the window to go below the limit.
        lifts_at = _nth_newest(failures.values(), limits.max_failed_sessions) + limits.failure_window_seconds
        window = _duration(limits.failure_window_seconds)
        message = f"Too many failed checks: {len(failures)} in the last {window}. New checks are locked until "
        return _refused(
            ErrorCode.TOO_MANY_ATTEMPTS, message + "Retry-After seconds have passed.", lifts_at, now, failures
        )
    still_open = [deadline for deadline in record.open.values() if deadline > now]
    if len(still_open) >= limits.max_open_sessions:
        message = f"Too many open sessions: at most {limits.max_open_sessions} at once. Finish one, or retry after "
        frees_at = _nth_newest(still_open, limits.max_open_sessions)
        return _refused(ErrorCode.TOO_MANY_SESSIONS, message + "Retry-After seconds.", frees_at, now)
    recent = [at for at in record.creations if at > now - CREATION_WINDOW_SECONDS]
    if len(recent) >= limits.max_sessions_per_minute:
        message = f"Too many sessions started: at most {limits.max_sessions_per_minute} a minute. Retry after "
        frees_at = _nth_newest(recent, limits.max_sessions_per_minute) + CREATION_WINDOW_SECONDS
        return _refused(ErrorCode.TOO_MANY_SESSIONS, message + "Retry-After seconds.", frees_at, now)
    return None


def _nth_newest(moments: Any, n: int) -> float:
    """The moment that must pass (or leave the window) for fewer than ``n`` to remain."""
    return sorted(moments)[-n]


def _refused(
    code: ErrorCode, message: str, until: float, now: float, failures: dict[str, float] | None = None
) -> Refusal:
    return Refusal(code, message, max(1, math.ceil(until - now)), until, failures or {})


def with_created(
    record: UserAttempts, session_id: str, deadline: datetime, now: float, limits: AttemptLimits
) -> UserAttempts:
    """The record after admitting a new session (the caller checked ``refusal`` on this very record)."""
    pruned = _pruned(record, now, limits)
    return replace(
        pruned,
        open={**pruned.open, session_id: deadline.timestamp()},
        creations=(*pruned.creations, now),
    )


def with_outcome(
    record: UserAttempts, session_id: str, failed: bool, at: float, now: float, limits: AttemptLimits
) -> UserAttempts:
    """The record after a session closed (``at``: when it closed): no longer open, and a failure if it failed.
    Idempotent: the same outcome applied again returns the very same record (nothing to save)."""
    failures = dict(record.failures)
    if not failed:
        failures.pop(session_id, None)  # passed after its deadline was counted: not a failure after all
    elif session_id not in failures or session_id in record.open:
        failures[session_id] = at
    open_sessions = {key: value for key, value in record.open.items() if key != session_id}
    updated = _pruned(replace(record, open=open_sessions, failures=failures), now, limits)
    return record if updated == _pruned(record, now, limits) else updated


def without_session(record: UserAttempts, session_id: str) -> UserAttempts:
    """The record without a session that was admitted but never stored (its create failed)."""
    if session_id not in record.open:
        return record
    return replace(record, open={key: value for key, value in record.open.items() if key != session_id})


def _pruned(record: UserAttempts, now: float, limits: AttemptLimits) -> UserAttempts:
    """Only what the policy can still need: overdue open sessions become failures at their deadline."""
    since = now - limits.failure_window_seconds
    overdue = {key: deadline for key, deadline in record.open.items() if deadline <= now}
    failures = {key: at for key, at in {**overdue, **record.failures}.items() if at > since}
    return replace(
        record,
        open={key: deadline for key, deadline in record.open.items() if deadline > now},
        failures=failures,
        creations=tuple(at for at in record.creations if at > now - CREATION_WINDOW_SECONDS),
    )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{seconds} seconds"
