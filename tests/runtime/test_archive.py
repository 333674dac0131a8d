"""The archive never overwrites, in S3 (conditional writes, moto) and on disk, and maps S3 failures to our errors."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from liveness.archive import ArchiveConflict, FileArchive, S3Archive
from liveness.errors import ErrorCode, LivenessError
from moto import mock_aws


@pytest.fixture
def s3_archive():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="archive")
        yield S3Archive(client, "archive"), client


def test_s3_write_is_encrypted_and_readable(s3_archive) -> None:
    archive, client = s3_archive
    archive.put_new("detections/a/frame.jpg", b"jpeg-bytes", "image/jpeg", {"request-id": "r1"})
    head = client.head_object(Bucket="archive", Key="detections/a/frame.jpg")
    assert head["ServerSideEncryption"] == "AES256" and head["ContentType"] == "image/jpeg"
    assert head["Metadata"] == {"request-id": "r1"}
    assert archive.get("detections/a/frame.jpg") == b"jpeg-bytes"
    assert archive.get("detections/missing") is None


def test_s3_never_overwrites(s3_archive) -> None:
    archive, client = s3_archive
    archive.put_new("sessions/s/audit.json", b"first", "application/json")
    with pytest.raises(ArchiveConflict):
        archive.put_new("sessions/s/audit.json", b"second", "application/json")
    assert client.get_object(Bucket="archive", Key="sessions/s/audit.json")["Body"].read() == b"first"


def stubbed_archive(error_code: str, status: int) -> S3Archive:
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("put_object", service_error_code=error_code, http_status_code=status)
    stubber.activate()
    return S3Archive(client, "archive")


@pytest.mark.parametrize(("error_code", "status"), [("SlowDown", 503), ("InternalError", 500), ("RequestTimeout", 400)])
def test_s3_throttling_and_outages_are_503(error_code: str, status: int) -> None:
    with pytest.raises(LivenessError) as raised:
        stubbed_archive(error_code, status).put_new("k", b"x", "image/jpeg")
    assert raised.value.code is ErrorCode.STORAGE_UNAVAILABLE and raised.value.retry_after == 2


def test_s3_permission_errors_stay_bugs() -> None:
    with pytest.raises(ClientError):
        stubbed_archive("AccessDenied", 403).put_new("k", b"x", "image/jpeg")


def test_file_archive_creates_exclusively(tmp_path: Path) -> None:
    archive = FileArchive(tmp_path)
    archive.put_new("detections/2026/01/01/id/face.jpg", b"crop", "image/jpeg")
    with pytest.raises(ArchiveConflict):
        archive.put_new("detections/2026/01/01/id/face.jpg", b"other", "image/jpeg")
    assert archive.get("detections/2026/01/01/id/face.jpg") == b"crop"
    assert FileArchive(tmp_path).get("detections/2026/01/01/id/face.jpg") == b"crop"  # survives a restart


def test_file_archive_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        FileArchive(tmp_path / "root").put_new("../escape.jpg", b"x", "image/jpeg")
    assert not (tmp_path / "escape.jpg").exists()
