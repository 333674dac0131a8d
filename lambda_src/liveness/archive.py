"""The evidence archive: write-once objects under unique, non-guessable keys.

Two implementations share one interface: S3 in AWS, a directory on disk in local mode. Neither ever
overwrites an object: S3 writes use ``If-None-Match: *`` and files are created exclusively.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from .errors import ErrorCode, LivenessError, unavailable

_logger = Logger(service="liveness")  # shares the handler's configuration; never given image data

DETECTIONS_PREFIX = "detections"
SESSIONS_PREFIX = "sessions"


class ArchiveConflict(Exception):
    """The key already exists; the archive never overwrites."""


class Archive(Protocol):
    def put_new(self, key: str, body: bytes, content_type: str, metadata: dict[str, str] | None = None) -> None:
        """Store ``body`` under ``key``; raise ``ArchiveConflict`` if the key already exists.

        ``metadata`` is small provenance (request id, analyzer), stored with the object."""
        ...

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None if absent."""
        ...


def new_detection_prefix(now: datetime) -> str:
    """``detections/YYYY/MM/DD/<random uuid>``: date-partitioned for lifecycle and audits, unguessable."""
    return f"{DETECTIONS_PREFIX}/{now:%Y/%m/%d}/{uuid.uuid4()}"


@dataclass(frozen=True)
class ArchiveRef:
    """Where a detection's evidence lives, as returned to the client and written to the audit trail."""

    id: str
    frame_key: str
    face_key: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "frameKey": self.frame_key, "faceKey": self.face_key}


class S3Archive:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    @property
    def client(self) -> Any:
        """The S3 client it writes with (tests inspect and instrument it)."""
        return self._client

    def put_new(self, key: str, body: bytes, content_type: str, metadata: dict[str, str] | None = None) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata or {},
                ServerSideEncryption="AES256",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ArchiveConflict(key) from None
            raise _storage_error(error) from None
        except BotoCoreError as error:
            raise _storage_error(error) from None

    def get(self, key: str) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _storage_error(error) from None
        except BotoCoreError as error:
            raise _storage_error(error) from None


_RETRYABLE_S3_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"})


def _storage_error(error: Exception) -> Exception:
    """Throttling, timeouts and 5xx become a 503 worth retrying; AccessDenied or NoSuchBucket stay what they are,
    deployment bugs, which the handler answers with a bare 500."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if status < 500 and error.response.get("Error", {}).get("Code", "") not in _RETRYABLE_S3_CODES:
            return error
    return unavailable(ErrorCode.STORAGE_UNAVAILABLE, "The evidence archive")


class FileArchive:
    """Local mode: the same keys as files under a data directory, created exclusively."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root.resolve()):
            # Keys are built by the server from random ids, so this is a bug, never a client's mistake.
            raise ValueError(f"archive key escapes the archive: {key!r}")
        return path

    def put_new(self, key: str, body: bytes, content_type: str, metadata: dict[str, str] | None = None) -> None:
        # Content type and metadata are implied by the key's extension and the session/audit records locally.
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise ArchiveConflict(key) from None
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(body)
                    handle.flush()
                    os.fsync(handle.fileno())
            except BaseException:
                # A full disk fails after the file was created: remove the partial object, so an object that
                # exists is always whole (as with S3, where a failed PUT stores nothing).
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
        except OSError as error:  # read-only or full disk, a folder replaced by a file: S3's 503, locally
            raise _file_error(error) from None

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _file_error(error) from None


def _file_error(error: OSError) -> Exception:
    return file_storage_error(error, "The evidence archive")


def file_storage_error(error: OSError, what: str) -> LivenessError:
    """A read-only or full disk, or a folder replaced by a file: the local twin of an S3 or DynamoDB outage,
    answered with the same 503. The errno's name is logged, never the path or the data."""
    _logger.warning("File storage failed", extra={"what": what, "errno": errno.errorcode.get(error.errno or 0, "")})
    return unavailable(ErrorCode.STORAGE_UNAVAILABLE, what)
