"""The two session stores: conditional saves, DynamoDB's item shape (Decimal, TTL), file restarts and races."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from liveness.challenges import LEGACY, Baseline, ReasonCode, StepCode, Thresholds, challenge, measure, relative_to
from liveness.errors import LivenessError
from liveness.faces import FaceComparison
from liveness.limits import MAX_FRAMES_CAP, SessionLimits
from liveness.sessions.codec import session_to_dict
from liveness.sessions.model import FrameEvaluation, SessionStatus
from liveness.sessions.store import (
    DynamoDbSessionStore,
    FileSessionStore,
    SessionConflict,
    _from_dynamo,
    _to_dynamo,
)
from liveness.sessions.transitions import apply_frame, close_if_due, new_session, reserve_frame, settle_frame
from moto import mock_aws

from testkit.aws import TABLE, create_aws_resources
from testkit.faces import face, face_for
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    START,
    fake_aws_env,
    file_rig,
    pass_light,
    start_session,
    step_codes,
)

SESSION_ID = "0b6f6a7e-5d1c-4c1e-9a51-3f1f0c9a2b10"


def _session(session_id: str = SESSION_ID):
    steps = (StepCode.TURN_LEFT, StepCode.SMILE, StepCode.LOOK_DOWN)
    return new_session(
        session_id,
        "owner",
        steps,
        mirrored=True,
        analyzer="scripted",
        now=START,
        limits=SessionLimits(),
        thresholds=Thresholds(turn_yaw=31.5),
    )


def _rejected(session, frame_id: str):
    """The next state after one frame that missed the step (its reservation and its verdict in one write)."""
    session = reserve_frame(session, START)[0]
    evaluation = FrameEvaluation(
        frame_id=frame_id,
        step_index=session.current_step,
        reason=ReasonCode.POSE_NOT_MET,
        measured=measure(face(yaw=12.345678), True),
        mirrored=True,
        frame_key="k",
    )
    return apply_frame(session, evaluation, START, 90)[0]


@pytest.fixture
def dynamo(fake_aws_env: None) -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_aws_resources(client, boto3.client("s3", region_name="us-east-1"))
        yield client


@pytest.fixture(params=["dynamodb", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        return FileSessionStore(tmp_path)
    return DynamoDbSessionStore(request.getfixturevalue("dynamo"), TABLE)


def test_round_trip_and_conditional_saves(store: Any) -> None:
    session = _session()
    store.create(session)
    assert store.get(SESSION_ID) == session
    with pytest.raises(SessionConflict):
        store.create(session)  # never overwritten by a create
    moved = _rejected(session, "f1")
    store.save(moved, expected_version=session.version)
    loaded = store.get(SESSION_ID)
    assert loaded == moved and loaded.frames[0].measured["yaw"] == -12.35  # float survives (Decimal in DynamoDB)
    with pytest.raises(SessionConflict):
        store.save(_rejected(session, "f2"), expected_version=session.version)  # stale: lost the race
    assert store.get(SESSION_ID) == moved
    closed = close_if_due(moved, START.replace(hour=10))
    store.save(closed, expected_version=moved.version)
    with pytest.raises(SessionConflict):  # a closed session takes no more writes, whatever the version
        store.save(replace(closed, version=closed.version + 1), expected_version=closed.version)
    assert store.get(SESSION_ID).thresholds == Thresholds(turn_yaw=31.5)  # kept in the item from creation
    assert store.get("6a1d3c8e-0000-4000-8000-000000000000") is None


def test_dynamodb_item_shape_and_ttl(dynamo: Any) -> None:
    DynamoDbSessionStore(dynamo, TABLE).create(_session())
    item = dynamo.get_item(TableName=TABLE, Key={"sessionId": {"S": SESSION_ID}})["Item"]
    expires = int(START.timestamp()) + 120
    assert item["ttl"] == {"N": str(expires + 86_400)}  # purged a day after expiry
    assert item["owner"] == {"S": "owner"} and item["status"] == {"S": "IN_PROGRESS"}
    assert item["version"] == {"N": "1"} and item["currentStep"] == {"N": "0"}
    assert item["expiresAt"] == {"S": "2026-11-03T09:02:00+00:00"}
    ttl = dynamo.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl"


def test_file_store_survives_a_restart(tmp_path: Path) -> None:
    first = FileSessionStore(tmp_path)
    first.create(_session())
    moved = _rejected(_session(), "f1")
    first.save(moved, expected_version=1)
    restarted = FileSessionStore(tmp_path)  # a new server process on the same data directory
    assert restarted.get(SESSION_ID) == moved
    with pytest.raises(SessionConflict):
        restarted.save(_rejected(_session(), "f2"), expected_version=1)
    assert not list(tmp_path.glob("*.tmp"))  # atomic rename leaves no partial files


def test_file_store_refuses_paths_that_are_not_session_ids(tmp_path: Path) -> None:
    with pytest.raises(LivenessError):
        FileSessionStore(tmp_path).get("../../etc/passwd")


def test_file_store_read_modify_write_races_lose_nothing(tmp_path: Path) -> None:
    """Two store instances (as two processes would) and 12 threads each add 3 frames with retries."""
    stores = [FileSessionStore(tmp_path), FileSessionStore(tmp_path)]
    # Every frame misses step 0: its own budget must not stop the 36 either.
    stores[0].create(replace(_session(), limits=SessionLimits(max_frames=100, step_max_frames=100)))
    conflicts = []

    def add_frames(worker: int) -> None:
        store = stores[worker % 2]
        for n in range(3):
            while True:
                current = store.get(SESSION_ID)
                try:
                    store.save(_rejected(current, f"w{worker}-{n}"), expected_version=current.version)
                    break
                except SessionConflict:
                    conflicts.append(worker)

    threads = [threading.Thread(target=add_frames, args=(worker,)) for worker in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = stores[1].get(SESSION_ID)
    assert final.frames_received == 36 and final.version == 1 + 2 * 36
    assert {frame.frame_id for frame in final.frames} == {f"w{w}-{n}" for w in range(12) for n in range(3)}


def test_a_restarted_local_server_continues_the_session(tmp_path: Path, fake_aws_env: None) -> None:
    before = file_rig(tmp_path)
    created = start_session(before)
    codes = step_codes(created)
    before.analyzer.script(face_for(codes[0]))
    assert before.client.frame(created["sessionId"]).body["verdict"] == "ACCEPTED"

    after = file_rig(tmp_path)  # new store, archive and app on the same directory
    after.clock.now = before.clock.now
    for index, code in enumerate(codes[1:], start=1):
        if code == "FOLLOW_LIGHT":  # the light challenge is drawn, revealed and judged by the restarted server
            pass_light(after, created["sessionId"])
            continue
        after.analyzer.script(face_for(code))
        reply = after.client.frame(created["sessionId"], seed=index)
        assert reply.body["verdict"] == "ACCEPTED", reply.body
        assert reply.body["baseline"] == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}  # the baseline survived too
    assert after.store.get(created["sessionId"]).baseline.face_aspect  # with the face's aspect for FLAT_FACE
    got = after.client.get(created["sessionId"]).body
    assert got["status"] == "PASSED" and got["referenceFace"]["base64"]
    # The reference (the neutral frame) written before the restart was used for the light batch and each drawn
    # step's frame.
    assert codes[0] == "LOOK_STRAIGHT" and len(after.analyzer.compare_calls) == len(codes) - 1 == 1 + 3


def test_the_audit_flag_is_stored_only_on_that_exact_closed_state(store: Any) -> None:
    session = _session()
    store.create(session)
    with pytest.raises(ValueError):
        store.record_audit_written(session)  # an open session has no audit record
    closed = close_if_due(session, START + timedelta(hours=1))
    store.save(closed, expected_version=session.version)
    with pytest.raises(SessionConflict):
        store.record_audit_written(replace(closed, version=closed.version + 5))  # not the stored state
    assert store.get(SESSION_ID).audit_written is False
    store.record_audit_written(closed)
    flagged = store.get(SESSION_ID)
    assert flagged == replace(closed, audit_written=True)  # nothing else changed, not even the version
    with pytest.raises(SessionConflict):
        store.record_audit_written(replace(_session("6a1d3c8e-0000-4000-8000-000000000000"), status=closed.status))


def test_file_store_locks_do_not_grow_with_sessions(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    for _ in range(40):
        session = _session(str(uuid.uuid4()))
        store.create(session)
        store.save(_rejected(session, "f"), expected_version=1)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 41 and names.count(".store.lock") == 1  # 40 sessions and one lock file
    assert not [name for name in names if name.endswith(".lock") and name != ".store.lock"]


def _biggest_session():
    """Every field at its largest: the neutral start and 5 drawn steps, a baseline, the frame cap of frames (all on
    one step, whose budget is as large), each with every measure, a movement and a similarity."""
    drawn = (StepCode.TURN_LEFT, StepCode.TURN_RIGHT, StepCode.LOOK_UP, StepCode.LOOK_DOWN, StepCode.SMILE)
    limits = SessionLimits(step_count=5, max_frames=MAX_FRAMES_CAP, step_max_frames=MAX_FRAMES_CAP)
    session = new_session(
        SESSION_ID, "x" * 128, challenge(drawn), mirrored=True, analyzer="rekognition", now=START, limits=limits
    )
    baseline = Baseline(yaw=-12.35, pitch=-13.33, roll=-7.78)  # at its stored precision (two decimals)
    session = replace(session, reference_frame_id=str(uuid.uuid4()), current_step=1, baseline=baseline)
    measured = measure(face(yaw=-12.345678, pitch=33.333333, roll=-7.777777), True)
    for index in range(MAX_FRAMES_CAP):  # the last one closes the session (ATTEMPT_LIMIT)
        evaluation = FrameEvaluation(
            frame_id=str(uuid.uuid4()),
            step_index=session.current_step,
            reason=ReasonCode.EXPRESSION_NOT_MET,
            measured=measured,
            mirrored=True,
            frame_key=f"sessions/{SESSION_ID}/frames/{uuid.uuid4()}.jpg",
            comparison=FaceComparison(similarity=99.123456, method="rekognition:CompareFaces"),
            sha256="f" * 64,
            movement=relative_to(measured, baseline),
        )
        now = START + timedelta(seconds=index / 10)
        session, _ = apply_frame(reserve_frame(session, now)[0], evaluation, now, 90)
    return session


def test_an_item_at_the_frame_cap_is_far_below_dynamodbs_400_kb(dynamo: Any) -> None:
    session = _biggest_session()
    assert len(session.frames) == MAX_FRAMES_CAP and session.failure_reason.value == "ATTEMPT_LIMIT"
    assert session.baseline is not None and all("movement" in frame.measured for frame in session.frames)
    typed = {key: TypeSerializer().serialize(value) for key, value in _to_dynamo(session_to_dict(session)).items()}
    # The typed JSON over-counts DynamoDB's item size (type tags, quotes, punctuation): a safe upper bound.
    size = len(json.dumps(typed, default=str).encode("utf-8"))
    assert size < 100_000, size  # a quarter of the limit (measured: about 74 KB)
    DynamoDbSessionStore(dynamo, TABLE).create(session)  # and DynamoDB (moto) accepts it
    assert DynamoDbSessionStore(dynamo, TABLE).get(SESSION_ID) == session


def test_a_frame_analysed_while_the_session_closed_is_logged_on_that_exact_closed_state(store: Any) -> None:
    session = reserve_frame(_session(), START)[0]
    store.create(session)
    closed = close_if_due(session, START.replace(hour=10))
    store.save(closed, expected_version=session.version)
    evaluation = FrameEvaluation(
        frame_id="late", step_index=0, reason=None, measured=measure(face(), True), mirrored=True, frame_key="k"
    )
    logged, record = settle_frame(closed, evaluation, START, 90)
    assert record.reason is ReasonCode.SESSION_CLOSED
    with pytest.raises(SessionConflict):  # the default expects an open session
        store.save(logged, expected_version=closed.version)
    with pytest.raises(SessionConflict):  # another closed status, or another version: refused
        store.save(logged, expected_version=closed.version, expected_status=SessionStatus.FAILED)
    store.save(logged, expected_version=closed.version, expected_status=SessionStatus.EXPIRED)
    assert store.get(SESSION_ID) == logged and logged.settled


def _as_stored_before_issue_7(raw: dict[str, Any]) -> dict[str, Any]:
    """An item as written before the neutral start: no stepMaxFrames, baseline, steps' framesReceived, nor the
    neutral, comparison, flat-face and incomparable-frame thresholds."""
    raw = json.loads(json.dumps(raw, default=str))
    del raw["limits"]["stepMaxFrames"], raw["baseline"]
    for step in raw["steps"]:
        del step["framesReceived"]
    for name in ("neutral_max_angle", "compare_max_angle", "flat_face_slope", "max_not_comparable", "link_max_angle"):
        del raw["thresholds"][name]
    return raw


def test_items_stored_before_the_neutral_start_still_load(store: Any, tmp_path: Path) -> None:
    session = _rejected(replace(_session(), limits=SessionLimits(max_frames=30)), "f1")  # the old default cap
    store.create(session)
    if isinstance(store, FileSessionStore):
        path = tmp_path / f"{SESSION_ID}.json"
        path.write_text(json.dumps(_as_stored_before_issue_7(json.loads(path.read_text()))))
    else:
        client = store.client
        item = client.get_item(TableName=TABLE, Key={"sessionId": {"S": SESSION_ID}})["Item"]
        plain = {key: TypeDeserializer().deserialize(value) for key, value in item.items()}
        old = _as_stored_before_issue_7(_from_dynamo(plain))
        serializer = TypeSerializer()
        client.put_item(
            TableName=TABLE, Item={key: serializer.serialize(value) for key, value in _to_dynamo(old).items()}
        )
    loaded = store.get(SESSION_ID)
    assert loaded.limits.step_max_frames == loaded.limits.max_frames == 30  # the session cap alone bounds a step
    assert loaded.baseline is None and [step.frames_received for step in loaded.steps] == [0, 0, 0]
    # The stored numbers kept; the newer ones at the values that keep that session's old rules (LEGACY).
    assert loaded.thresholds == Thresholds(turn_yaw=31.5, **LEGACY)
    assert loaded.frames == session.frames and loaded.version == session.version
    moved = _rejected(loaded, "f2")  # it still takes frames, and saves in the new shape
    store.save(moved, expected_version=loaded.version)
    again = store.get(SESSION_ID)
    assert again == moved and again.steps[0].frames_received == 1 and again.limits.step_max_frames == 30
