"""The TTL expiry handler: DynamoDB stream records shaped as Lambda delivers them, with old images taken from
items the real API stored in moto's DynamoDB, and audit records written to moto's S3."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from liveness import expiry
from liveness.sessions.attempts import owner_digest
from liveness.sessions.keys import audit_key
from liveness.sessions.store import ATTEMPTS_KEY_PREFIX
from liveness.settings import Settings
from moto import mock_aws

from testkit.aws import BUCKET, OWNER, TABLE
from testkit.events import LambdaContext
from testkit.faces import face_for
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    Rig,
    S3PutWatch,
    aws_rig,
    fake_aws_env,
    light_off,
    start_session,
    step_codes,
    wrong_face_for,
)

# These tests are about frames, storage and concurrency of the other steps: the light step (tested in
# test_sessions_light.py, and walked by the genuine sessions of test_sessions_routes.py) is irrelevant here.
pytestmark = pytest.mark.usefixtures("light_off")

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
STREAM_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2026-11-03T09:00:00.000"


@pytest.fixture
def aws(fake_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """The API's rig, plus the expiry handler wired from its environment, as in Lambda: only the bucket name."""
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setenv("STORAGE", "aws")
    with mock_aws():
        rig = aws_rig()
        rig.deps.archive.client.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )  # so "written once" can be checked: every PutObject would leave a version
        expiry.use_runtime(None)
        yield rig
        expiry.use_runtime(None)


def stored_item(rig: Rig, session_id: str) -> dict[str, Any]:
    """The item exactly as DynamoDB holds it (typed attributes), which is what a stream record's image carries."""
    client = rig.store.client
    return client.get_item(TableName=TABLE, Key={"sessionId": {"S": session_id}}, ConsistentRead=True)["Item"]


def stream_record(
    item: dict[str, Any], sequence: str, *, event_name: str = "REMOVE", identity: dict[str, str] | None = TTL_IDENTITY
) -> dict[str, Any]:
    """One record of a DynamoDB Streams event as Lambda delivers it (view type OLD_IMAGE)."""
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": 1795824000,
        "Keys": {"sessionId": item["sessionId"]},
        "SequenceNumber": sequence,
        "SizeBytes": len(json.dumps(item)),
        "StreamViewType": "OLD_IMAGE",
    }
    if event_name != "INSERT":  # an insert has no old image
        change["OldImage"] = item
    record: dict[str, Any] = {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }
    if identity is not None:
        record["userIdentity"] = identity
    return record


def invoke(*records: dict[str, Any]) -> dict[str, Any]:
    return expiry.lambda_handler({"Records": list(records)}, LambdaContext())


def audit_versions(rig: Rig, session_id: str) -> list[dict[str, Any]]:
    s3 = rig.deps.archive.client
    return s3.list_object_versions(Bucket=BUCKET, Prefix=audit_key(session_id)).get("Versions", [])


def abandoned_session(rig: Rig) -> str:
    """A session with one rejected frame, then nobody came back: no frame, no GET closes it."""
    created = start_session(rig)
    rig.analyzer.script(wrong_face_for("LOOK_STRAIGHT"))  # not even the neutral start is met
    assert rig.client.frame(created["sessionId"]).body["verdict"] == "REJECTED"
    return created["sessionId"]


def _metrics(output: str, name: str) -> list[dict[str, Any]]:
    """The EMF documents on stdout that carry ``name``."""
    found = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            if name in document:
                found.append(document)
    return found


def test_an_abandoned_session_is_audited_as_expired_once(aws: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    session_id = abandoned_session(aws)
    capsys.readouterr()
    item = stored_item(aws, session_id)
    assert item["status"] == {"S": "IN_PROGRESS"} and aws.stored(audit_key(session_id)) is None

    assert invoke(stream_record(item, "100")) == {"batchItemFailures": []}
    record = json.loads(aws.stored(audit_key(session_id)))
    assert record["status"] == "EXPIRED" and record["failureReason"] == "SESSION_EXPIRED"
    assert record["closedAt"] == record["expiresAt"] == "2026-11-03T09:02:00+00:00"  # at its deadline
    assert record["verdict"] == {
        "status": "EXPIRED",
        "livenessPassed": False,
        "samePersonCheck": "pending",
        "samePersonVerified": False,
    }
    assert record["framesReceived"] == 1 and record["frames"][0]["verdict"] == "REJECTED"
    assert record["closingRequestId"] == LambdaContext.aws_request_id
    assert record["thresholds"] == Settings().thresholds.to_json()

    assert len(_metrics(capsys.readouterr().out, "SessionsClosed")) == 1

    assert invoke(stream_record(item, "101")) == {"batchItemFailures": []}  # a redelivered record
    assert len(audit_versions(aws, session_id)) == 1  # the first record stands
    assert _metrics(capsys.readouterr().out, "SessionsClosed") == []  # not counted twice


def test_a_closed_and_audited_session_is_left_alone(aws: Rig) -> None:
    created = start_session(aws)
    for index, code in enumerate(step_codes(created)):
        aws.analyzer.script(face_for(code))
        aws.client.frame(created["sessionId"], seed=index)
    item = stored_item(aws, created["sessionId"])
    assert item["status"] == {"S": "PASSED"} and item["auditWritten"] == {"BOOL": True}
    # The handler on the watched client: a refused conditional PutObject would leave no version, so count calls.
    expiry.use_runtime(expiry.ExpiryRuntime(archive=aws.deps.archive, thresholds=Settings().thresholds))
    watch = S3PutWatch(aws.deps.archive.client, "audit/")
    before = audit_versions(aws, created["sessionId"])

    assert invoke(stream_record(item, "200")) == {"batchItemFailures": []}
    assert audit_versions(aws, created["sessionId"]) == before and watch.puts == 0
    assert json.loads(aws.stored(audit_key(created["sessionId"])))["status"] == "PASSED"


def test_a_closed_session_whose_audit_write_failed_gets_its_record(aws: Rig) -> None:
    created = start_session(aws)
    watch = S3PutWatch(aws.deps.archive.client, "audit/")
    watch.failing = True  # the closing request's audit write meets a 503, and nobody reads the session again
    for index, code in enumerate(step_codes(created)):
        aws.analyzer.script(face_for(code))
        aws.client.frame(created["sessionId"], seed=index)
    item = stored_item(aws, created["sessionId"])
    assert item["status"] == {"S": "PASSED"} and item["auditWritten"] == {"BOOL": False}

    assert invoke(stream_record(item, "300")) == {"batchItemFailures": []}
    record = json.loads(aws.stored(audit_key(created["sessionId"])))
    assert record["status"] == "PASSED" and record["verdict"]["livenessPassed"] is True  # not turned into EXPIRED


@pytest.mark.parametrize(
    "event_name,identity",
    [
        ("REMOVE", None),  # a DeleteItem by a person or a script
        ("REMOVE", {"type": "Service", "principalId": "someone-else.amazonaws.com"}),
        ("MODIFY", None),
        ("INSERT", None),
    ],
)
def test_records_other_than_ttl_removals_are_ignored(
    aws: Rig, event_name: str, identity: dict[str, str] | None
) -> None:
    session_id = abandoned_session(aws)
    assert invoke(stream_record(stored_item(aws, session_id), "400", event_name=event_name, identity=identity)) == {
        "batchItemFailures": []
    }
    assert audit_versions(aws, session_id) == []


def test_the_audit_carries_the_thresholds_stored_at_creation(aws: Rig) -> None:
    session_id = abandoned_session(aws)
    item = stored_item(aws, session_id)
    # The function's settings changed since the session was created: the item's copy is what counts.
    expiry.use_runtime(
        expiry.ExpiryRuntime(archive=aws.deps.archive, thresholds=replace(Settings().thresholds, turn_yaw=45.0))
    )
    assert invoke(stream_record(item, "150")) == {"batchItemFailures": []}
    record = json.loads(aws.stored(audit_key(session_id)))
    assert record["thresholds"] == Settings().thresholds.to_json() and record["thresholds"]["turn_yaw"] == 25.0


def test_a_malformed_item_is_skipped_logged_and_counted(
    aws: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id, fine_id = abandoned_session(aws), abandoned_session(aws)
    item = stored_item(aws, session_id)
    del item["steps"]  # cannot be rebuilt into a session: retrying would never help
    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(expiry.logger, "error", lambda message, extra: logged.append((message, extra)))
    capsys.readouterr()
    response = invoke(stream_record(item, "700"), stream_record(stored_item(aws, fine_id), "701"))
    assert response == {"batchItemFailures": []}  # a poison record must not block the shard
    assert len(_metrics(capsys.readouterr().out, "ExpiryRecordsSkipped")) == 1
    assert logged == [
        (
            "Malformed session item skipped",
            {"sessionId": session_id, "eventId": logged[0][1]["eventId"], "error": "KeyError"},
        )
    ]  # ids only, never the image
    assert audit_versions(aws, session_id) == [] and len(audit_versions(aws, fine_id)) == 1


def test_a_users_attempt_record_removed_by_ttl_is_no_session_and_no_error(
    aws: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attempt records (sessions/attempts.py) share the table and its TTL: their removal is not audited."""
    start_session(aws)
    owner_key = owner_digest(OWNER)
    item = stored_item(aws, ATTEMPTS_KEY_PREFIX + owner_key)
    capsys.readouterr()
    assert invoke(stream_record(item, "710")) == {"batchItemFailures": []}
    assert _metrics(capsys.readouterr().out, "ExpiryRecordsSkipped") == []
    assert aws.keys("audit/") == []


def test_a_record_whose_audit_cannot_be_written_is_reported_for_retry(
    aws: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    failing_id, fine_id = abandoned_session(aws), abandoned_session(aws)
    failing_item, fine_item = stored_item(aws, failing_id), stored_item(aws, fine_id)
    s3 = aws.deps.archive.client
    expiry.use_runtime(expiry.ExpiryRuntime(archive=aws.deps.archive, thresholds=Settings().thresholds))
    watch = S3PutWatch(s3, f"audit/sessions/{failing_id}")
    watch.failing = True  # S3 answers 503 SlowDown for this one record's audit write

    capsys.readouterr()
    response = invoke(stream_record(failing_item, "500"), stream_record(fine_item, "501"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "500"}]}
    failures = _metrics(capsys.readouterr().out, "ExpiryAuditFailures")
    assert len(failures) == 1 and failures[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Count"
    assert audit_versions(aws, failing_id) == [] and len(audit_versions(aws, fine_id)) == 1

    watch.failing = False  # Lambda retries from the failed record on
    assert invoke(stream_record(failing_item, "500"), stream_record(fine_item, "501")) == {"batchItemFailures": []}
    assert json.loads(aws.stored(audit_key(failing_id)))["status"] == "EXPIRED"
    assert len(audit_versions(aws, fine_id)) == 1


def test_a_removal_without_an_old_image_fails_loudly(aws: Rig) -> None:
    session_id = abandoned_session(aws)
    record = stream_record(stored_item(aws, session_id), "600")
    del record["dynamodb"]["OldImage"]  # a stream configured KEYS_ONLY
    assert invoke(record) == {"batchItemFailures": [{"itemIdentifier": "600"}]}


def test_an_expired_session_with_an_abandoned_frame_slot_is_audited_with_it_settled(aws: Rig) -> None:
    """A frame whose request died between its reservation and its verdict (a storage outage): the TTL removal
    still audits the session, with that slot logged as NOT_JUDGED, so framesReceived matches the frame log."""
    session_id = abandoned_session(aws)
    session = aws.store.get(session_id)
    unsettled = replace(session, frames_received=session.frames_received + 1, version=session.version + 1)
    aws.store.save(unsettled, expected_version=session.version)
    assert invoke(stream_record(stored_item(aws, session_id), "300")) == {"batchItemFailures": []}
    record = json.loads(aws.stored(audit_key(session_id)))
    assert record["framesReceived"] == 2 and len(record["frames"]) == 2
    assert record["frames"][-1]["reasonCode"] == "NOT_JUDGED" and record["frames"][-1]["frameKey"] == ""
