"""Where sessions live between requests: DynamoDB in AWS, JSON files in local mode.

Both implement optimistic concurrency: ``save(new, expected_version)`` succeeds only if the stored
session still has ``expected_version`` and is still IN_PROGRESS (or, for logging a frame that was being
analysed when the session closed, still exactly that closed status: ``expected_status``); otherwise
``SessionConflict`` and the caller re-reads and re-applies its transition. Nothing is ever written blind.

A closed session takes one more kind of write, ``record_audit_written``: the flag that its audit record
exists, conditional on the stored session being that very closed state.

Beside the sessions, each user has one attempt record (attempts.py), written with the same optimistic
concurrency: ``save_attempts`` succeeds only if the stored record still has the version it was read at.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ..archive import file_storage_error
from ..errors import ErrorCode, LivenessError, unavailable
from .attempts import UserAttempts
from .codec import session_from_dict, session_to_dict
from .model import Session, SessionStatus

try:  # POSIX: also serialise writers in other processes (two local servers on one data dir)
    import fcntl
except ImportError:  # pragma: no cover - Windows falls back to the in-process lock only
    fcntl = None  # type: ignore[assignment]

TTL_ATTRIBUTE = "ttl"
# The partition key of a user's attempt record in the sessions table: never a UUID, so never a session's id.
ATTEMPTS_KEY_PREFIX = "attempts#"


class SessionConflict(Exception):
    """The stored session changed since it was read (or already exists, on create)."""


class SessionStore(Protocol):
    def create(self, session: Session) -> None:
        """Store a new session; ``SessionConflict`` if the id is taken."""
        ...

    def get(self, session_id: str) -> Session | None:
        """The latest committed state (strongly consistent), or None."""
        ...

    def save(
        self, session: Session, expected_version: int, expected_status: SessionStatus = SessionStatus.IN_PROGRESS
    ) -> None:
        """Replace the stored session if it still has ``expected_version`` and ``expected_status`` (open, unless
        the caller logs a late frame into a closed session); else ``SessionConflict``."""
        ...

    def record_audit_written(self, session: Session) -> None:
        """Store ``audit_written`` on this closed session, if the stored state is still exactly it (same version and
        status); else ``SessionConflict`` (e.g. the item expired meanwhile)."""
        ...

    def get_attempts(self, owner_key: str) -> UserAttempts | None:
        """The user's attempt record (strongly consistent), or None."""
        ...

    def save_attempts(self, record: UserAttempts, expected_version: int, keep_until: int) -> None:
        """Store the record if the stored one still has ``expected_version`` (0: none stored yet); else
        ``SessionConflict``. ``keep_until`` (epoch seconds): after it, the record may be deleted."""
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


def session_from_item(item: dict[str, Any]) -> Session:
    """A deserialised DynamoDB item (numbers as Decimal) -> Session: for reads and for the TTL stream's old images."""
    return session_from_dict(_from_dynamo(item))


class DynamoDbSessionStore:
    """One item per session, partition key ``sessionId``; ``ttl`` (epoch seconds) lets DynamoDB purge it."""

    _serializer = TypeSerializer()
    _deserializer = TypeDeserializer()

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @property
    def client(self) -> Any:
        """The DynamoDB client it reads and writes with (tests inspect and instrument it)."""
        return self._client

    def create(self, session: Session) -> None:
        self._put(session, "attribute_not_exists(sessionId)", {}, {})

    def save(
        self, session: Session, expected_version: int, expected_status: SessionStatus = SessionStatus.IN_PROGRESS
    ) -> None:
        self._put(
            session,
            "#version = :expected AND #status = :status",
            {"#version": "version", "#status": "status"},
            {":expected": {"N": str(expected_version)}, ":status": {"S": expected_status.value}},
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
        return session_from_item({key: self._deserializer.deserialize(value) for key, value in raw.items()})

    def record_audit_written(self, session: Session) -> None:
        if session.is_open:
            raise ValueError("only a closed session has an audit record")
        self._put(
            replace(session, audit_written=True),
            "#version = :expected AND #status = :closed",
            {"#version": "version", "#status": "status"},
            {":expected": {"N": str(session.version)}, ":closed": {"S": session.status.value}},
        )

    def get_attempts(self, owner_key: str) -> UserAttempts | None:
        try:
            response = self._client.get_item(
                TableName=self._table, Key={"sessionId": {"S": ATTEMPTS_KEY_PREFIX + owner_key}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise _storage_error(error) from None
        raw = response.get("Item")
        if raw is None:
            return None
        item = _from_dynamo({key: self._deserializer.deserialize(value) for key, value in raw.items()})
        return UserAttempts.from_dict(item["attempts"])

    def save_attempts(self, record: UserAttempts, expected_version: int, keep_until: int) -> None:
        item = {
            "sessionId": ATTEMPTS_KEY_PREFIX + record.owner_key,
            "attempts": record.to_dict(),
            "version": record.version,
            TTL_ATTRIBUTE: keep_until,
        }
        if expected_version == 0:
            self._put_item(item, record.owner_key, "attribute_not_exists(sessionId)", {}, {})
            return
        self._put_item(
            item,
            record.owner_key,
            "#version = :expected",
            {"#version": "version"},
            {":expected": {"N": str(expected_version)}},
        )

    def _put(self, session: Session, condition: str, names: dict[str, str], values: dict[str, Any]) -> None:
        item = session_to_dict(session)
        item[TTL_ATTRIBUTE] = int(session.expires_at.timestamp()) + session.limits.retention_seconds
        self._put_item(item, session.session_id, condition, names, values)

    def _put_item(
        self, item: dict[str, Any], key: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> None:
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
                raise SessionConflict(key) from None
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


# Writers of the same session serialise on one of these (shared by every store instance in the process, so
# two instances on one directory exclude each other too); a fixed number, however many sessions there are.
_LOCK_STRIPES = tuple(threading.Lock() for _ in range(64))
_LOCK_FILE = ".store.lock"


class FileSessionStore:
    """``<root>/<sessionId>.json``, replaced by atomic rename under a lock.

    The lock is one of a fixed set of ``threading.Lock`` stripes (threads of this process) plus ``fcntl.flock``
    on the store's single lock file (other processes, e.g. two local servers on one data directory). Neither
    grows with the number of sessions. Readers need no lock: a rename is atomic, so they see the old or the new
    file. State lives only on disk, so a new instance (a restarted server) sees every session.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        with contextlib.suppress(OSError):  # a missing or read-only folder answers 503 per request, not at start
            self._root.mkdir(parents=True, exist_ok=True)
            self._remove_orphaned_temporaries()

    def create(self, session: Session) -> None:
        with _file_faults(), self._locked(session.session_id):
            if self._path(session.session_id).exists():
                raise SessionConflict(session.session_id)
            self._write(session)

    def save(
        self, session: Session, expected_version: int, expected_status: SessionStatus = SessionStatus.IN_PROGRESS
    ) -> None:
        with _file_faults(), self._locked(session.session_id):
            current = self.get(session.session_id)
            if current is None or current.version != expected_version or current.status is not expected_status:
                raise SessionConflict(session.session_id)
            self._write(session)

    def record_audit_written(self, session: Session) -> None:
        if session.is_open:
            raise ValueError("only a closed session has an audit record")
        with _file_faults(), self._locked(session.session_id):
            current = self.get(session.session_id)
            if current is None or current.version != session.version or current.status is not session.status:
                raise SessionConflict(session.session_id)
            self._write(replace(session, audit_written=True))

    def get_attempts(self, owner_key: str) -> UserAttempts | None:
        path = self._attempts_path(owner_key)
        with _file_faults():
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
        return UserAttempts.from_dict(json.loads(text))

    def save_attempts(self, record: UserAttempts, expected_version: int, keep_until: int) -> None:
        del keep_until  # files are not purged: a record is one small file per user
        path = self._attempts_path(record.owner_key)
        with _file_faults(), self._locked_path(path):
            current = self.get_attempts(record.owner_key)
            if (current.version if current else 0) != expected_version:
                raise SessionConflict(record.owner_key)
            path.parent.mkdir(exist_ok=True)
            _write_json(path, record.to_dict())

    def get(self, session_id: str) -> Session | None:
        path = self._path(session_id)
        with _file_faults():
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
        try:
            return session_from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as error:  # truncated or not a session: the store is damaged
            raise file_storage_error(OSError(errno.EIO, type(error).__name__), "The session store") from None

    def _path(self, session_id: str) -> Path:
        if not is_session_id(session_id):
            raise LivenessError(ErrorCode.INVALID_REQUEST, "The session id must be a UUID.")
        return self._root / f"{session_id}.json"

    def _attempts_path(self, owner_key: str) -> Path:
        if len(owner_key) != 64 or not all(char in "0123456789abcdef" for char in owner_key):
            raise ValueError("an attempt record's key is a SHA-256 hex digest")
        return self._root / "attempts" / f"{owner_key}.json"

    def _write(self, session: Session) -> None:
        _write_json(self._path(session.session_id), session_to_dict(session))

    def _remove_orphaned_temporaries(self) -> None:
        """A writer killed mid-write (a worker process, the server) leaves its temporary file; every writer holds
        the store's file lock while its temporary exists, so under that lock any temporary is an orphan."""
        if fcntl is None:  # no lock across processes: another one's temporary may be live
            return
        with _StoreLock(threading.Lock(), self._root / _LOCK_FILE):
            for orphan in self._root.rglob(".*.json.*.tmp"):  # sessions and the attempt records
                orphan.unlink(missing_ok=True)

    def _locked(self, session_id: str) -> _StoreLock:
        return self._locked_path(self._path(session_id))

    def _locked_path(self, path: Path) -> _StoreLock:
        # A stable hash (Python's hash() of a str changes per process); only the distribution matters here.
        digest = hashlib.blake2b(str(path.resolve()).encode("utf-8"), digest_size=8).digest()
        stripe = _LOCK_STRIPES[int.from_bytes(digest, "big") % len(_LOCK_STRIPES)]
        return _StoreLock(stripe, self._root / _LOCK_FILE)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)  # atomic on POSIX and Windows
    except BaseException:
        # A full disk fails the write after the file was created: never leave the empty temp file behind.
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def _file_faults() -> Iterator[None]:
    """A read-only or full disk, or a folder replaced by a file: the local twin of a DynamoDB outage, a 503.
    (``FileNotFoundError`` of a session that does not exist is handled where it means "no such session".)"""
    try:
        yield
    except OSError as error:
        raise file_storage_error(error, "The session store") from None


class _StoreLock:
    """The stripe first, then the file lock: every writer takes them in that order, so they cannot deadlock."""

    def __init__(self, thread_lock: threading.Lock, lock_path: Path) -> None:
        self._thread_lock = thread_lock
        self._lock_path = lock_path
        self._handle: Any = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            if fcntl is not None:
                # Each acquisition opens its own file description, so flock also excludes other threads and
                # other store instances of this process, not only other processes.
                self._handle = open(self._lock_path, "a+b")
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX)
        except BaseException:
            self._release()
            raise

    def __exit__(self, *_: object) -> None:
        self._release()

    def _release(self) -> None:
        try:
            if self._handle is not None:
                self._handle.close()  # closing the last descriptor of the file description drops its flock
                self._handle = None
        finally:
            self._thread_lock.release()
