"""Where sessions live between requests: DynamoDB in AWS, JSON files in local mode.

Both implement optimistic concurrency: ``save(new, expected_version)`` succeeds only if the stored
session still has ``expected_version`` and is still IN_PROGRESS; otherwise ``SessionConflict`` and the
caller re-reads and re-applies its transition. Nothing is ever written blind.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from .errors import ErrorCode, LivenessError, unavailable
from .sessions import Session, SessionStatus, session_from_dict, session_to_dict

try:  # POSIX: also serialise writers in other processes (two local servers on one data dir)
    import fcntl
except ImportError:  # pragma: no cover - Windows falls back to the in-process lock only
    fcntl = None  # type: ignore[assignment]

TTL_ATTRIBUTE = "ttl"


class SessionConflict(Exception):
    """The stored session changed since it was read (or already exists, on create)."""


class SessionStore(Protocol):
    def create(self, session: Session) -> None:
        """Store a new session; ``SessionConflict`` if the id is taken."""
        ...

    def get(self, session_id: str) -> Session | None:
        """The latest committed state (strongly consistent), or None."""
        ...

    def save(self, session: Session, expected_version: int) -> None:
        """Replace the stored session if it is still open at ``expected_version``; else ``SessionConflict``."""
        ...


def is_session_id(value: str) -> bool:
    """Only canonical UUIDs reach a store: no path tricks, no junk keys."""
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


# ---------------------------------------------------------------------------------------------------------
# DynamoDB


def _to_dynamo(value: Any) -> Any:
    """boto3 refuses floats (they would lose precision silently); store them as Decimal."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _to_dynamo(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(item) for item in value]
    return value


def _from_dynamo(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; give the rest of the code ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_dynamo(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(item) for item in value]
    return value


class DynamoDbSessionStore:
    """One item per session, partition key ``sessionId``; ``ttl`` (epoch seconds) lets DynamoDB purge it."""

    _serializer = TypeSerializer()
    _deserializer = TypeDeserializer()

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, session: Session) -> None:
        self._put(session, "attribute_not_exists(sessionId)", {}, {})

    def save(self, session: Session, expected_version: int) -> None:
        self._put(
            session,
            "#version = :expected AND #status = :open",
            {"#version": "version", "#status": "status"},
            {":expected": {"N": str(expected_version)}, ":open": {"S": SessionStatus.IN_PROGRESS.value}},
        )

    def get(self, session_id: str) -> Session | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key={"sessionId": {"S": session_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise _storage_error(error) from None
        raw = response.get("Item")
        if raw is None:
            return None
        item = {key: self._deserializer.deserialize(value) for key, value in raw.items()}
        return session_from_dict(_from_dynamo(item))

    def _put(self, session: Session, condition: str, names: dict[str, str], values: dict[str, Any]) -> None:
        item = session_to_dict(session)
        item[TTL_ATTRIBUTE] = int(session.expires_at.timestamp()) + session.limits.retention_seconds
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": {key: self._serializer.serialize(value) for key, value in _to_dynamo(item).items()},
            "ConditionExpression": condition,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._client.put_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise SessionConflict(session.session_id) from None
            raise _storage_error(error) from None
        except BotoCoreError as error:
            raise _storage_error(error) from None


_RETRYABLE = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError"}
)


def _storage_error(error: Exception) -> Exception:
    # Throttling and 5xx: the client retries after a pause. Anything else (AccessDenied, missing table) is a bug.
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if code not in _RETRYABLE and status < 500:
            return error
    return unavailable(ErrorCode.STORAGE_UNAVAILABLE, "The session store")


# ---------------------------------------------------------------------------------------------------------
# Files (local mode)


class FileSessionStore:
    """``<root>/<sessionId>.json``, replaced by atomic rename under a lock.

    The lock is a per-session ``threading.Lock`` (threads of one server) plus ``fcntl.flock`` on a lock
    file (other processes). Readers need no lock: a rename is atomic, so they see the old or the new file.
    State lives only on disk, so a new instance (a restarted server) sees every session.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def create(self, session: Session) -> None:
        with self._locked(session.session_id):
            if self._path(session.session_id).exists():
                raise SessionConflict(session.session_id)
            self._write(session)

    def save(self, session: Session, expected_version: int) -> None:
        with self._locked(session.session_id):
            current = self.get(session.session_id)
            if current is None or current.version != expected_version or not current.is_open:
                raise SessionConflict(session.session_id)
            self._write(session)

    def get(self, session_id: str) -> Session | None:
        path = self._path(session_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return session_from_dict(json.loads(text))

    def _path(self, session_id: str) -> Path:
        if not is_session_id(session_id):
            raise LivenessError(ErrorCode.INVALID_REQUEST, "The session id must be a UUID.")
        return self._root / f"{session_id}.json"

    def _write(self, session: Session) -> None:
        path = self._path(session.session_id)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(session_to_dict(session), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)  # atomic on POSIX and Windows

    def _locked(self, session_id: str) -> _SessionLock:
        with self._guard:
            thread_lock = self._locks.setdefault(session_id, threading.Lock())
        return _SessionLock(thread_lock, self._path(session_id).with_suffix(".lock"))


class _SessionLock:
    def __init__(self, thread_lock: threading.Lock, lock_path: Path) -> None:
        self._thread_lock = thread_lock
        self._lock_path = lock_path
        self._handle: Any = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if fcntl is not None:
            self._handle = open(self._lock_path, "a+b")
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        try:
            if self._handle is not None:
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
                self._handle.close()
        finally:
            self._thread_lock.release()
