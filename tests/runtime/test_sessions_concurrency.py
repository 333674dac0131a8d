"""Races: 20 frames for one step at once, over real HTTP to a moto server (DynamoDB conditional writes,
S3 If-None-Match) and over the file store. Exactly one frame advances the step; none is lost; every
frame is archived exactly once."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from liveness.archive import S3Archive
from liveness.session_service import audit_key, face_crop_key, reference_face_key, write_audit
from liveness.session_store import DynamoDbSessionStore
from moto.server import ThreadedMotoServer

from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    BUCKET,
    TABLE,
    Reply,
    Rig,
    aws,
    build_rig,
    create_aws_resources,
    face_for,
    fake_aws_env,
    file_rig,
    start_session,
    step_codes,
)

FRAMES = 20


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: a free port
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def server_rig(endpoint: str) -> Rig:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
    config = Config(max_pool_connections=FRAMES + 4, retries={"mode": "standard", "max_attempts": 3})
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint, config=config)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, config=config)
    create_aws_resources(dynamodb, s3)
    return build_rig("moto-server", DynamoDbSessionStore(dynamodb, TABLE), S3Archive(s3, BUCKET))


@pytest.fixture(params=["moto-server", "file"])
def racing_rig(request: pytest.FixtureRequest, tmp_path: Path, fake_aws_env: None) -> Rig:
    if request.param == "file":
        return file_rig(tmp_path)
    return server_rig(request.getfixturevalue("moto_server"))


def _send_together(rig: Rig, session_id: str, count: int) -> list[Reply]:
    barrier = threading.Barrier(count)

    def send(seed: int) -> Reply:
        barrier.wait()  # release all requests at once
        return rig.client.frame(session_id, seed=seed)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(send, range(count)))


def test_concurrent_frames_advance_a_step_exactly_once(racing_rig: Rig) -> None:
    rig = racing_rig
    created = start_session(rig)
    session_id, codes = created["sessionId"], step_codes(created)
    rig.analyzer.default_faces = [face_for(codes[0])]  # every frame meets step 0, and only step 0

    replies = _send_together(rig, session_id, FRAMES)

    assert [reply.status for reply in replies] == [200] * FRAMES, [
        reply.body for reply in replies if reply.status != 200
    ]
    accepted = [reply.body for reply in replies if reply.body["verdict"] == "ACCEPTED"]
    assert len(accepted) == 1 and accepted[0]["stepIndex"] == 0
    # The losers were judged again against the new current step, which their faces do not meet.
    losers = [reply.body for reply in replies if reply.body["verdict"] == "REJECTED"]
    assert {(body["stepIndex"], body["stepCode"]) for body in losers} == {(1, codes[1])}

    stored = rig.store.get(session_id)
    frame_ids = {reply.body["frameId"] for reply in replies}
    assert len(frame_ids) == FRAMES
    assert stored.current_step == 1 and stored.version == 1 + FRAMES  # one committed write per frame
    assert stored.frames_received == FRAMES and {frame.frame_id for frame in stored.frames} == frame_ids
    assert stored.steps[0].attempts == 1 and stored.steps[1].attempts == FRAMES - 1
    assert stored.reference_frame_id == accepted[0]["frameId"]

    archived = rig.keys(f"sessions/{session_id}/frames/")
    assert sorted(key for key in archived if not key.endswith("-face.jpg")) == sorted(
        f"sessions/{session_id}/frames/{frame_id}.jpg" for frame_id in frame_ids
    )
    assert rig.stored(reference_face_key(session_id)) == rig.stored(
        face_crop_key(session_id, stored.reference_frame_id)
    )
    assert rig.analyzer.detect_calls == FRAMES  # a retry re-judges, it never re-analyses


def test_concurrent_frames_after_expiry_close_once_and_write_one_audit(racing_rig: Rig) -> None:
    rig = racing_rig
    created = start_session(rig)
    rig.clock.advance(300)
    replies = _send_together(rig, created["sessionId"], 8)
    assert {(reply.status, reply.body["code"]) for reply in replies} == {(409, "SESSION_CLOSED")}
    stored = rig.store.get(created["sessionId"])
    assert stored.status.value == "EXPIRED" and stored.version == 2  # closed by exactly one write
    assert json.loads(rig.stored(audit_key(created["sessionId"])))["status"] == "EXPIRED"


def test_the_audit_record_is_written_once_and_never_overwritten(aws: Rig) -> None:
    created = start_session(aws)
    session_id = created["sessionId"]
    aws.clock.advance(500)
    assert aws.client.get(session_id).body["status"] == "EXPIRED"  # closing writes the audit record
    first = aws.stored(audit_key(session_id))
    record: dict[str, Any] = json.loads(first)
    assert record["sessionId"] == session_id and record["status"] == "EXPIRED"
    assert record["failureReason"] == "SESSION_EXPIRED" and record["verdict"]["livenessPassed"] is False
    assert record["closedAt"] == "2026-11-03T09:08:20+00:00" and record["framesReceived"] == 0
    assert [step["status"] for step in record["steps"]][0] == "FAILED"
    assert set(record) >= {"owner", "analyzer", "thresholds", "limits", "frames", "samePersonCheck", "closingRequestId"}

    aws.clock.advance(60)
    assert write_audit(aws.deps, aws.store.get(session_id), "another-request") is False
    assert aws.stored(audit_key(session_id)) == first
    versions = aws.deps.archive._client.list_object_versions(Bucket=BUCKET, Prefix=audit_key(session_id)).get(
        "Versions", []
    )
    assert len(versions) <= 1


def test_a_lost_audit_record_is_rewritten_by_the_next_read(aws: Rig) -> None:
    created = start_session(aws)
    session_id = created["sessionId"]
    aws.clock.advance(500)
    assert aws.client.get(session_id).body["status"] == "EXPIRED"
    aws.deps.archive._client.delete_object(Bucket=BUCKET, Key=audit_key(session_id))  # as if the write had failed
    assert aws.stored(audit_key(session_id)) is None
    assert aws.client.get(session_id).body["status"] == "EXPIRED"
    record = json.loads(aws.stored(audit_key(session_id)))
    assert record["status"] == "EXPIRED" and record["failureReason"] == "SESSION_EXPIRED"
