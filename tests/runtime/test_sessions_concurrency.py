"""Races: 20 frames for one step at once, over real HTTP to a moto server (DynamoDB conditional writes,
S3 If-None-Match) and over the file store. Exactly one frame advances the step; none is lost; every
frame is archived exactly once; no frame counts for a step other than the one it was judged against.
Each racing request runs in its own process with its own app and clients, as separate Lambda environments
would (see ``send_together``). Also: the audit record."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from liveness.limits import SessionLimits
from liveness.sessions.audit import write_audit
from liveness.sessions.keys import audit_key, face_crop_key
from liveness.settings import Settings
from moto.dynamodb.models.table import Table
from moto.server import ThreadedMotoServer

from testkit.aws import BUCKET, create_aws_resources
from testkit.faces import face, face_for
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    Backend,
    Reply,
    Rig,
    S3PutWatch,
    aws,
    build_rig,
    fake_aws_env,
    file_rig,
    frame_request,
    light_off,
    rig,
    send_together,
    start_session,
    step_codes,
)

# These tests are about frames, storage and concurrency of the other steps: the light step (tested in
# test_sessions_light.py, and walked by the genuine sessions of test_sessions_routes.py) is irrelevant here.
pytestmark = pytest.mark.usefixtures("light_off")

FRAMES = 20


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """moto's DynamoDB evaluates a PutItem's condition and then writes, without a lock; its threaded server can
    interleave two of them, and both "succeed". DynamoDB does both atomically, so the rig serialises moto's
    put_item: the races under test are ours, not moto's."""
    atomic = threading.Lock()
    unlocked_put_item = Table.put_item

    def put_item_atomically(self: Table, *args: Any, **kwargs: Any) -> Any:
        with atomic:
            return unlocked_put_item(self, *args, **kwargs)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: a free port
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Table, "put_item", put_item_atomically)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


def server_rig(endpoint: str) -> Rig:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
    backend = Backend(endpoint=endpoint)  # the clients every racing process builds for itself, too
    store, archive = backend.session_store_and_archive()
    create_aws_resources(store.client, archive.client)
    return build_rig("moto-server", store, archive, backend=backend)


@pytest.fixture(params=["moto-server", "file"])
def racing_rig(request: pytest.FixtureRequest, tmp_path: Path, fake_aws_env: None) -> Rig:
    if request.param == "file":
        return file_rig(tmp_path)
    return server_rig(request.getfixturevalue("moto_server"))


def _send_together(rig: Rig, session_id: str, count: int) -> list[Reply]:
    """``count`` different frames at once, each from its own Lambda environment (process)."""
    return send_together(rig, [frame_request(session_id, seed=seed) for seed in range(count)])


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
    # The others were judged against step 0 (and superseded by the winner) or, if they arrived after it,
    # against step 1, which their faces do not meet. None counts for step 1.
    losers = [reply.body for reply in replies if reply.body["verdict"] == "REJECTED"]
    superseded = [body for body in losers if body["reasonCode"] == "STEP_ALREADY_COMPLETED"]
    late = [body for body in losers if body["reasonCode"] != "STEP_ALREADY_COMPLETED"]
    assert {(body["stepIndex"], body["stepCode"]) for body in superseded} <= {(0, codes[0])}
    assert {(body["stepIndex"], body["stepCode"]) for body in late} <= {(1, codes[1])}
    assert {body["reasonCode"] for body in late} <= {"POSE_NOT_MET", "EXPRESSION_NOT_MET"}
    # How many of each depends on thread scheduling; the superseded path itself is pinned down deterministically
    # by test_a_frame_judged_for_a_completed_step_never_advances_the_next.
    assert len(superseded) + len(late) == FRAMES - 1

    stored = rig.store.get(session_id)
    frame_ids = {reply.body["frameId"] for reply in replies}
    assert len(frame_ids) == FRAMES
    assert stored.current_step == 1 and stored.version == 1 + 2 * FRAMES  # a reservation and a verdict per frame
    assert stored.frames_received == FRAMES and {frame.frame_id for frame in stored.frames} == frame_ids
    assert stored.steps[0].attempts == 1 and stored.steps[1].attempts == len(late)
    assert stored.reference_frame_id == accepted[0]["frameId"]

    archived = rig.keys(f"sessions/{session_id}/frames/")
    assert sorted(key for key in archived if not key.endswith("-face.jpg")) == sorted(
        f"sessions/{session_id}/frames/{frame_id}.jpg" for frame_id in frame_ids
    )
    assert rig.stored(face_crop_key(session_id, stored.reference_frame_id)) is not None
    assert rig.analyzer.detect_calls == FRAMES  # a retry re-judges, it never re-analyses


@pytest.mark.parametrize("kind", ["moto-server", "file"])
def test_parallel_frames_over_the_cap_are_neither_analysed_nor_archived(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, fake_aws_env: None
) -> None:
    """The reviewer's r2: cap 3, 12 frames at once. Slots are reserved before analysis, so exactly 3 frames reach
    the analyzer and the archive, and every archived frame is in the audit record."""
    settings = Settings(session_limits=SessionLimits(max_frames=3))
    if kind == "file":
        rig = file_rig(tmp_path, settings)
    else:
        rig = server_rig(request.getfixturevalue("moto_server"))
        rig.deps.settings = settings
    rig.analyzer.default_faces = [face(yaw=22, pitch=18)]  # meets no step: every frame is a rejected attempt
    created = start_session(rig)
    session_id = created["sessionId"]

    replies = _send_together(rig, session_id, 12)

    statuses = sorted(reply.status for reply in replies)
    assert statuses == [200] * 3 + [409] * 9, [reply.body for reply in replies]
    assert {reply.body["code"] for reply in replies if reply.status == 409} == {"SESSION_CLOSED"}
    assert rig.analyzer.detect_calls == 3
    archived = [key for key in rig.keys(f"sessions/{session_id}/frames/") if not key.endswith("-face.jpg")]
    assert len(archived) == 3
    stored = rig.store.get(session_id)
    assert stored.failure_reason.value == "ATTEMPT_LIMIT" and stored.frames_received == 3 and stored.settled
    audit = json.loads(rig.stored(audit_key(session_id)))
    assert sorted(frame["frameKey"] for frame in audit["frames"]) == sorted(archived)
    assert audit["framesReceived"] == 3 and audit["status"] == "FAILED"


def test_a_frame_analysed_while_the_session_closed_is_logged_and_audited(rig: Rig) -> None:
    """Frame A takes a slot; while it is analysed, a read after the deadline closes the session. A is still
    archived, logged (SESSION_CLOSED) and in the audit record, which waits for it; A's answer is 409."""
    created = start_session(rig)
    session_id = created["sessionId"]
    rig.analyzer.script(face_for(step_codes(created)[0]))
    closing: list[Any] = []

    def the_session_closes_meanwhile() -> None:
        rig.clock.advance(500)
        closing.append(rig.new_client().get(session_id))
        assert rig.stored(audit_key(session_id)) is None  # A is still being analysed: no audit yet

    rig.analyzer.during_next_detect = the_session_closes_meanwhile
    late = rig.client.frame(session_id)
    assert closing[0].body["status"] == "EXPIRED"
    assert (late.status, late.body["code"]) == (409, "SESSION_CLOSED")
    assert late.body["requestId"] != closing[0].body["requestId"]  # each request answers with its own id
    stored = rig.store.get(session_id)
    assert stored.status.value == "EXPIRED" and stored.settled and stored.audit_written
    assert [frame.reason.value for frame in stored.frames] == ["SESSION_CLOSED"]
    audit = json.loads(rig.stored(audit_key(session_id)))
    archived = [key for key in rig.keys(f"sessions/{session_id}/frames/") if not key.endswith("-face.jpg")]
    assert [frame["frameKey"] for frame in audit["frames"]] == archived and len(archived) == 1
    assert audit["frames"][0]["reasonCode"] == "SESSION_CLOSED" and audit["status"] == "EXPIRED"


def test_the_first_frame_after_a_deadline_closes_the_session_unanalysed(rig: Rig) -> None:
    created = start_session(rig)
    rig.clock.advance(120)
    reply = rig.client.frame(created["sessionId"])
    assert (reply.status, reply.body["code"]) == (409, "SESSION_CLOSED")
    stored = rig.store.get(created["sessionId"])
    assert stored.status.value == "EXPIRED" and stored.frames_received == 0 and stored.version == 2
    assert rig.analyzer.detect_calls == 0 and rig.keys(f"sessions/{created['sessionId']}/") == []
    assert json.loads(rig.stored(audit_key(created["sessionId"])))["frames"] == []


def test_a_frame_whose_analysis_fails_keeps_its_slot_and_is_logged(aws: Rig) -> None:
    created = start_session(aws)
    session_id = created["sessionId"]
    watch = S3PutWatch(aws.deps.archive.client, f"sessions/{session_id}/frames/")
    watch.failing = True  # the upload's archive write meets a 503 after DetectFaces was paid for
    aws.analyzer.script(face_for(step_codes(created)[0]))
    reply = aws.client.frame(session_id)
    assert (reply.status, reply.body["code"]) == (503, "STORAGE_UNAVAILABLE")
    stored = aws.store.get(session_id)
    assert stored.frames_received == 1 and stored.settled and stored.frames[0].reason.value == "NOT_JUDGED"
    assert stored.steps[0].attempts == 0 and stored.frames[0].frame_key == ""  # nothing was archived
    watch.failing = False
    aws.analyzer.script(face_for(step_codes(created)[0]))
    assert aws.client.frame(session_id).body["verdict"] == "ACCEPTED"  # the same bytes may be sent again


def test_concurrent_frames_after_expiry_close_once_and_write_one_audit(racing_rig: Rig) -> None:
    rig = racing_rig
    created = start_session(rig)
    rig.clock.advance(300)
    replies = _send_together(rig, created["sessionId"], 8)
    assert {(reply.status, reply.body["code"]) for reply in replies} == {(409, "SESSION_CLOSED")}
    stored = rig.store.get(created["sessionId"])
    assert stored.status.value == "EXPIRED" and stored.version == 2  # closed by exactly one write
    assert json.loads(rig.stored(audit_key(created["sessionId"])))["status"] == "EXPIRED"


def test_a_frame_judged_for_a_completed_step_never_advances_the_next(rig: Rig) -> None:
    """Deterministic interleaving: frame A (which would meet step 1) is judged against step 0 while frame B,
    meeting step 0, commits first. A is rejected; re-judging it against step 1 would let one upload, sent while
    step 0 was current, complete step 1."""
    created = start_session(rig, steps=4, excludeExpressions=True)
    session_id, codes = created["sessionId"], step_codes(created)
    b_reply: list[Reply] = []

    def frame_b_commits_first() -> None:
        rig.analyzer.script(face_for(codes[0]))
        b_reply.append(rig.new_client().frame(session_id, seed=2))
        rig.analyzer.script(face_for(codes[1]))  # frame A's face: the SECOND step, not the current one

    rig.analyzer.during_next_detect = frame_b_commits_first
    a_reply = rig.client.frame(session_id, seed=1)

    assert b_reply[0].body["verdict"] == "ACCEPTED" and b_reply[0].body["stepIndex"] == 0
    assert a_reply.body["requestId"] != b_reply[0].body["requestId"]
    assert a_reply.status == 200 and a_reply.body["verdict"] == "REJECTED"
    assert a_reply.body["reasonCode"] == "STEP_ALREADY_COMPLETED" and a_reply.body["message"]
    assert a_reply.body["stepIndex"] == 0 and a_reply.body["currentStep"] == 1
    stored = rig.store.get(session_id)
    assert stored.current_step == 1 and stored.steps[1].attempts == 0 and stored.version == 5
    assert rig.analyzer.compare_calls == []  # A was never compared: it met no step it could count for


def test_the_audit_record_is_written_once_and_never_overwritten(aws: Rig) -> None:
    s3 = aws.deps.archive.client
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # every write leaves a trace
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
    stored = aws.store.get(session_id)
    again = write_audit(
        aws.deps.archive, stored, thresholds=aws.deps.settings.thresholds, request_id="other", written_at=aws.clock()
    )
    assert again is False and aws.stored(audit_key(session_id)) == first
    assert aws.client.get(session_id).status == 200
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=audit_key(session_id)).get("Versions", [])
    assert len(versions) == 1  # the refused rewrite and the later read left no second version


def test_reads_of_an_audited_session_do_not_rewrite_the_record(aws: Rig) -> None:
    watch = S3PutWatch(aws.deps.archive.client, "audit/")
    created = start_session(aws)
    aws.clock.advance(500)
    assert aws.client.get(created["sessionId"]).body["status"] == "EXPIRED"
    assert watch.puts == 1 and aws.store.get(created["sessionId"]).audit_written is True
    for _ in range(3):
        assert aws.client.get(created["sessionId"]).status == 200
    assert watch.puts == 1  # the item says the record exists: no PutObject per GET


def test_a_failed_audit_write_is_repaired_by_the_next_read(aws: Rig) -> None:
    watch = S3PutWatch(aws.deps.archive.client, "audit/")
    created = start_session(aws)
    session_id, codes = created["sessionId"], step_codes(created)
    watch.failing = True  # S3 answers 503 SlowDown to the audit write of the closing request
    for index, code in enumerate(codes):
        aws.analyzer.script(face_for(code))
        last = aws.client.frame(session_id, seed=index)
    assert last.status == 200 and last.body["status"] == "PASSED"  # the committed verdict is still answered
    assert aws.stored(audit_key(session_id)) is None and aws.store.get(session_id).audit_written is False

    watch.failing = False
    assert aws.client.get(session_id).body["status"] == "PASSED"
    record = json.loads(aws.stored(audit_key(session_id)))
    assert record["status"] == "PASSED" and [frame["verdict"] for frame in record["frames"]] == ["ACCEPTED"] * 4
    assert aws.store.get(session_id).audit_written is True
    puts = watch.puts
    aws.client.get(session_id)
    assert watch.puts == puts  # repaired once, then left alone
