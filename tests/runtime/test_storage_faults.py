"""Fault injection at every step of a frame, on both storage back ends.

AWS: DynamoDB, S3 and Rekognition fail through botocore's own ``before-call`` hook (the seam its Stubber
uses), answering as the services do under load; everything else is moto. Files: real OS errors from real
file-system states (a folder replaced by a file, the store's lock replaced by a folder, a file-size limit in
a child process standing in for a full disk). After each fault: a 503 (with Retry-After) or a correct answer;
the session unchanged or advanced exactly once; no frame recorded as accepted without its archive object; the
next request succeeds; the audit record is eventually written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.sessions.keys import audit_key, face_crop_key
from liveness.sessions.model import Session, SessionStatus, Verdict
from liveness.sessions.repair import ABANDONED_AFTER_SECONDS
from moto import mock_aws

from testkit.faces import face_for
from testkit.rekognition import detect_faces_response, face_detail
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    Rig,
    S3PutWatch,
    aws_rig,
    data_url,
    fake_aws_env,
    file_rig,
    jpeg_bytes,
    light_off,
    rig,
    start_session,
)

# These tests are about frames, storage and concurrency of the other steps: the light step (tested in
# test_sessions_light.py, and walked by the genuine sessions of test_sessions_routes.py) is irrelevant here.
pytestmark = pytest.mark.usefixtures("light_off")

ROOT = Path(__file__).resolve().parents[2]

# What each fault means on each back end.
#   store:        the session store fails every read and write (DynamoDB 500s; the sessions folder is a file)
#   store-writes: reads work, writes fail (DynamoDB throttles PutItem; the store's lock file is a folder)
#   archive:      frame objects cannot be written or read (S3 503 SlowDown; the archive's sessions/ is a file)
#   audit:        audit records cannot be written (S3 503 on audit/; the archive's audit/ is a file)
FAULTS = ("store", "store-writes", "archive", "audit")


class Faults:
    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.active: set[str] = set()
        self.injected = 0
        self._parked: list[tuple[Path, Path]] = []
        if rig.kind == "aws":
            dynamodb, s3 = rig.store.client, rig.deps.archive.client
            for operation in ("GetItem", "PutItem"):
                dynamodb.meta.events.register(f"before-call.dynamodb.{operation}", self._dynamodb(operation))
            for operation in ("PutObject", "GetObject"):
                s3.meta.events.register(f"before-call.s3.{operation}", self._s3)

    # -- AWS: answer as the service does when it is throttling or down
    def _dynamodb(self, operation: str) -> Any:
        def hook(**_: Any) -> Any:
            if "store" in self.active or ("store-writes" in self.active and operation == "PutItem"):
                self.injected += 1
                code, status = ("ThrottlingException", 400) if operation == "PutItem" else ("InternalServerError", 500)
                return AWSResponse(None, status, {}, None), {
                    "Error": {"Code": code, "Message": "injected"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                }
            return None

        return hook

    def _s3(self, params: dict[str, Any], **_: Any) -> Any:
        path = params["url_path"]
        if ("archive" in self.active and "/sessions/" in path) or ("audit" in self.active and "/audit/" in path):
            self.injected += 1
            error = {"Code": "SlowDown", "Message": "injected"}
            return AWSResponse(None, 503, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 503}}
        return None

    # -- files: put the data folder into a state the OS refuses
    def on(self, fault: str) -> None:
        self.active.add(fault)
        if self.rig.kind != "file":
            return
        root = self.rig.backend.root
        target, make = {
            "store": (root / "sessions", "file"),
            "store-writes": (root / "sessions" / ".store.lock", "folder"),
            "archive": (root / "archive" / "sessions", "file"),
            "audit": (root / "archive" / "audit", "file"),
        }[fault]
        target.parent.mkdir(parents=True, exist_ok=True)
        parked = target.with_name(target.name + ".parked")
        if target.exists():
            target.rename(parked)
        if make == "file":
            target.write_bytes(b"not a folder")
        else:
            target.mkdir()
        self._parked.append((target, parked))
        self.injected += 1

    def off(self) -> None:
        self.active.clear()
        for target, parked in reversed(self._parked):
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
            if parked.exists():
                parked.rename(target)
        self._parked.clear()


@pytest.fixture
def faults(rig: Rig) -> Faults:
    return Faults(rig)


def stored(rig: Rig, session_id: str) -> Session:
    session = rig.store.get(session_id)
    assert session is not None
    return session


def assert_consistent(rig: Rig, session_id: str, before: Session) -> Session:
    """No frame accepted without its archive object; the session advanced at most once."""
    after = stored(rig, session_id)
    for record in after.frames:
        if record.verdict is Verdict.ACCEPTED:
            assert record.frame_key and rig.stored(record.frame_key) is not None, record
    accepted = [record for record in after.frames if record.verdict is Verdict.ACCEPTED]
    accepted_before = [record for record in before.frames if record.verdict is Verdict.ACCEPTED]
    assert len(accepted) - len(accepted_before) in (0, 1)
    assert after.current_step - before.current_step in (0, 1)
    assert after.frames_received - before.frames_received in (0, 1)
    return after


def assert_unavailable(reply: Any, code: str = "STORAGE_UNAVAILABLE") -> None:
    assert (reply.status, reply.body["code"]) == (503, code), reply.body
    assert reply.headers["Retry-After"] == ["2"]
    assert set(reply.body) == {"code", "message", "requestId"}


def send_good_frame(rig: Rig, session_id: str, seed: int) -> Any:
    rig.analyzer.script(face_for(stored(rig, session_id).step.code))
    return rig.client.frame(session_id, seed)


def finish(rig: Rig, session_id: str, first_seed: int = 100) -> Session:
    """Drive the session to PASSED with good frames, and check its audit record exists."""
    seed = first_seed
    while stored(rig, session_id).is_open:
        reply = send_good_frame(rig, session_id, seed)
        assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body
        seed += 1
    return assert_audited(rig, session_id)


def assert_audited(rig: Rig, session_id: str) -> Session:
    session = stored(rig, session_id)
    assert not session.is_open and session.settled
    assert session.audit_written
    record = json.loads(rig.stored(audit_key(session_id)) or b"null")
    assert record["sessionId"] == session_id and len(record["frames"]) == session.frames_received
    return session


# ---------------------------------------------------------------------------------------------------------
# Before the reservation, and the reservation itself


@pytest.mark.parametrize("fault", ["store", "store-writes"])
def test_a_store_fault_before_analysis_is_503_and_changes_nothing(rig: Rig, faults: Faults, fault: str) -> None:
    session_id = start_session(rig)["sessionId"]
    before = stored(rig, session_id)
    faults.on(fault)
    reply = send_good_frame(rig, session_id, 1) if fault == "store-writes" else rig.client.frame(session_id, 1)
    assert_unavailable(reply)
    assert rig.analyzer.detect_calls == 0  # nothing analysed, nothing paid for
    if fault == "store-writes":
        assert rig.client.get(session_id).status == 200  # reads are still served
    faults.off()
    assert stored(rig, session_id) == before  # unchanged
    assert rig.keys("sessions/") == []
    rig.analyzer.faces.clear()
    finish(rig, session_id)
    assert faults.injected >= 1


def test_creating_a_session_while_the_store_is_down_is_503(rig: Rig, faults: Faults) -> None:
    faults.on("store")
    assert_unavailable(rig.client.create())
    faults.off()
    assert rig.client.create().status == 201


# ---------------------------------------------------------------------------------------------------------
# Between the reservation and the analysis: the analyzer or the frame archive fails


def test_a_frame_archive_fault_is_503_and_the_frame_is_logged_not_judged(rig: Rig, faults: Faults) -> None:
    session_id = start_session(rig)["sessionId"]
    before = stored(rig, session_id)
    faults.on("archive")
    assert_unavailable(send_good_frame(rig, session_id, 1))
    faults.off()
    after = assert_consistent(rig, session_id, before)
    assert after.settled and [record.reason.value for record in after.frames] == ["NOT_JUDGED"]
    assert after.frames[0].frame_key == "" and after.current_step == before.current_step
    finish(rig, session_id)


@pytest.mark.parametrize(
    ("error_code", "http_status"), [("ThrottlingException", 400), ("InternalServerError", 500)], ids=["throttle", "5xx"]
)
def test_rekognition_throttling_or_5xx_is_503_and_the_next_frame_is_judged(
    fake_aws_env: None, error_code: str, http_status: int
) -> None:
    with mock_aws():
        client = boto3.client("rekognition", region_name="us-east-1")
        rig = aws_rig(analyzer=RekognitionAnalyzer(client))
        session_id = start_session(rig)["sessionId"]
        before = stored(rig, session_id)
        with Stubber(client) as stubber:
            stubber.add_client_error("detect_faces", service_error_code=error_code, http_status_code=http_status)
            assert_unavailable(rig.client.frame(session_id, 1), "ANALYZER_UNAVAILABLE")
            after = assert_consistent(rig, session_id, before)
            assert [record.reason.value for record in after.frames] == ["NOT_JUDGED"]
            # The upload was written alongside the analysis: the NOT_JUDGED entry names it, so the frame log
            # still lists every archived frame.
            assert rig.keys("sessions/") == [after.frames[0].frame_key]
            stubber.add_response("detect_faces", detect_faces_response(face_detail()))
            assert rig.client.frame(session_id, 1).status == 200  # the same bytes may be resent
            stubber.assert_no_pending_responses()


# ---------------------------------------------------------------------------------------------------------
# Between the analysis and the verdict save


def test_a_store_fault_before_the_verdict_save_is_503_and_the_slot_is_repaired(rig: Rig, faults: Faults) -> None:
    session_id = start_session(rig)["sessionId"]
    before = stored(rig, session_id)
    rig.analyzer.during_next_detect = lambda: faults.on("store-writes")  # reserved; now the store fails
    assert_unavailable(send_good_frame(rig, session_id, 1))
    faults.off()
    unsettled = assert_consistent(rig, session_id, before)
    assert unsettled.frames_received == 1 and unsettled.frames == ()  # the verdict and its fallback both failed
    (pending,) = unsettled.pending  # ...but the reservation recorded the frame's id and archive key
    # The frame itself was archived before the verdict (and the neutral frame's face crop beside it).
    assert pending.frame_key in rig.keys("sessions/")
    # The session goes on (the abandoned slot counts as a frame)...
    assert send_good_frame(rig, session_id, 2).body["verdict"] == "ACCEPTED"
    # ...and once nobody can still be settling that slot, the next read logs it as NOT_JUDGED.
    rig.clock.advance(ABANDONED_AFTER_SECONDS)
    assert rig.client.get(session_id).status == 200
    repaired = stored(rig, session_id)
    assert repaired.settled and repaired.frames_received == 2
    assert [record.reason.value for record in repaired.frames if record.reason] == ["NOT_JUDGED"]
    (abandoned,) = [record for record in repaired.frames if record.reason]
    # Logged under its own id and key: the archived upload is in the frame log (and so the audit record).
    assert (abandoned.frame_id, abandoned.frame_key) == (pending.frame_id, pending.frame_key)
    assert repaired.pending == ()
    assert repaired.status is SessionStatus.EXPIRED  # its time ran out meanwhile
    assert_audited(rig, session_id)


def test_a_closed_session_with_an_abandoned_frame_is_audited_by_the_next_read(rig: Rig, faults: Faults) -> None:
    """The defect: frames received 1, frames logged 0, and no read ever wrote the closed session's record."""
    session_id = start_session(rig)["sessionId"]
    rig.analyzer.during_next_detect = lambda: faults.on("store-writes")
    assert_unavailable(send_good_frame(rig, session_id, 1))
    faults.off()
    rig.clock.advance(20)  # the step times out: the session closes, but stays unsettled (for now)
    assert rig.client.get(session_id).body["status"] == "FAILED"
    assert not stored(rig, session_id).settled and rig.stored(audit_key(session_id)) is None
    rig.clock.advance(ABANDONED_AFTER_SECONDS)
    assert rig.client.get(session_id).status == 200
    assert_audited(rig, session_id)


def test_a_verdict_save_that_fails_once_logs_the_frame_not_judged_at_once(fake_aws_env: None) -> None:
    with mock_aws():
        rig = aws_rig()
        session_id = start_session(rig)["sessionId"]
        before = stored(rig, session_id)
        failures = {"left": 0}

        def fail_once(**_: Any) -> Any:
            if failures["left"]:
                failures["left"] -= 1
                error = {"Code": "InternalServerError", "Message": "injected"}
                return AWSResponse(None, 500, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 500}}
            return None

        rig.store.client.meta.events.register("before-call.dynamodb.PutItem", fail_once)
        rig.analyzer.during_next_detect = lambda: failures.update(left=1)
        assert_unavailable(send_good_frame(rig, session_id, 1))
        after = assert_consistent(rig, session_id, before)
        assert after.settled and after.frames[0].reason.value == "NOT_JUDGED"
        assert rig.stored(after.frames[0].frame_key) is not None  # logged with its archived frame
        assert after.current_step == before.current_step
        assert send_good_frame(rig, session_id, 1).body["verdict"] == "ACCEPTED"  # resent: judged now


# ---------------------------------------------------------------------------------------------------------
# During the audit write


def test_an_audit_write_fault_keeps_the_answer_and_the_next_read_writes_the_record(rig: Rig, faults: Faults) -> None:
    session_id = start_session(rig)["sessionId"]
    session = stored(rig, session_id)
    for seed in range(len(session.steps) - 1):
        assert send_good_frame(rig, session_id, seed).body["verdict"] == "ACCEPTED"
    before = stored(rig, session_id)
    faults.on("audit")
    last = send_good_frame(rig, session_id, 50)
    assert last.status == 200 and last.body["status"] == "PASSED"  # the committed verdict is answered
    assert rig.client.get(session_id).body["status"] == "PASSED"  # still failing: not written, not fatal
    faults.off()
    closed = assert_consistent(rig, session_id, before)
    assert not closed.audit_written and rig.stored(audit_key(session_id)) is None
    assert rig.client.get(session_id).status == 200
    assert_audited(rig, session_id)


# ---------------------------------------------------------------------------------------------------------
# POST /detect and reads


def test_detect_answers_503_when_its_archive_fails(rig: Rig, faults: Faults) -> None:
    rig.analyzer.default_faces = [face_for("SMILE")]
    if rig.kind == "file":  # /detect writes under detections/: make that folder a file
        root = rig.backend.root / "archive"
        root.mkdir(parents=True, exist_ok=True)
        (root / "detections").write_bytes(b"not a folder")
        watch = None
    else:
        watch = S3PutWatch(rig.deps.archive.client, "detections/")
        watch.failing = True
    reply = rig.client.call("POST", "/detect", {"image_bytes": data_url(1)})
    assert_unavailable(reply)
    if watch is None:
        (rig.backend.root / "archive" / "detections").unlink()
    else:
        watch.failing = False
    assert rig.client.call("POST", "/detect", {"image_bytes": data_url(1)}).status == 200


def test_reads_answer_503_while_the_store_is_down(rig: Rig, faults: Faults) -> None:
    session_id = start_session(rig)["sessionId"]
    faults.on("store")
    assert_unavailable(rig.client.get(session_id))
    faults.off()
    assert rig.client.get(session_id).status == 200


# ---------------------------------------------------------------------------------------------------------
# A full disk: a child process whose file-size limit makes every write fail after the file was created

_DISK_FULL = r"""
import json, resource, signal, sys
from pathlib import Path
from testkit.faces import face_for
from tests.runtime.session_helpers import file_rig
root = Path(sys.argv[1])
rig = file_rig(root)
session_id = rig.client.create().body["sessionId"]
rig.analyzer.default_faces = [face_for(rig.store.get(session_id).step.code)]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.RLIM_INFINITY))
answers = {"frame": [rig.client.frame(session_id, seed).body.get("code") for seed in range(5)],
           "create": rig.client.create().body.get("code"),
           "detect": rig.client.call("POST", "/detect", {"image_bytes": __import__("tests.runtime.session_helpers",
                     fromlist=["x"]).data_url(9)}).body.get("code")}
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
answers["leftovers"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                              and (p.name.endswith(".tmp") or p.stat().st_size == 0) and p.name != ".store.lock")
answers["after"] = rig.client.frame(session_id, 7).status
print(json.dumps(answers))
"""


def test_a_full_disk_answers_503_and_leaves_no_temporary_or_partial_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DISK_FULL, str(tmp_path)],
        cwd=ROOT,  # the child imports the test helpers (package tests) from the repository root
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["frame"] == ["STORAGE_UNAVAILABLE"] * 5
    assert answers["create"] == answers["detect"] == "STORAGE_UNAVAILABLE"
    assert answers["leftovers"] == []
    assert answers["after"] == 200


def test_a_request_that_outlives_the_repair_margin_is_409_and_logged_once(rig: Rig) -> None:
    """The repair guesses that a slot is abandoned; a request that was only slow must not be logged twice."""
    session_id = start_session(rig)["sessionId"]

    def a_read_long_after() -> None:
        rig.clock.advance(ABANDONED_AFTER_SECONDS + 1)
        assert rig.new_client().get(session_id).status == 200  # settles the slot as abandoned, audits

    rig.analyzer.during_next_detect = a_read_long_after
    reply = send_good_frame(rig, session_id, 1)
    assert (reply.status, reply.body["code"]) == (409, "CONFLICT")
    session = assert_audited(rig, session_id)
    assert [record.reason.value for record in session.frames] == ["NOT_JUDGED"]


def test_a_corrupt_or_crafted_reference_crop_in_the_store_is_a_503_and_never_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference crop goes through the upload checks too: the local data folder is writable by others."""
    from testkit.bombs import png_length_bomb
    from testkit.faces import face_for
    from tests.runtime.session_helpers import file_rig, look_straight, start_session, step_codes

    rig = file_rig(tmp_path)
    created = start_session(rig)
    session_id = created["sessionId"]
    look_straight(rig, session_id)
    reference = rig.store.get(session_id).reference_frame_id
    crop_path = rig.deps.archive._path(face_crop_key(session_id, reference))
    bomb = png_length_bomb(0xFFFFFFFF)  # would make the decoder allocate 4 GB
    crop_path.write_bytes(bomb)
    import cv2

    real_imdecode = cv2.imdecode

    def imdecode(buffer: Any, flags: int) -> Any:
        assert bytes(buffer) != bomb, "the crafted crop reached the decoder"
        return real_imdecode(buffer, flags)

    monkeypatch.setattr(cv2, "imdecode", imdecode)
    rig.analyzer.script(face_for(step_codes(created)[1]))
    reply = rig.client.frame(session_id, seed=2)
    assert reply.status == 503 and reply.body["code"] == "STORAGE_UNAVAILABLE", reply.body
    assert rig.analyzer.compare_calls == []  # nothing was compared with it


# ---------------------------------------------------------------------------------------------------------
# A damaged session file, and a writer killed in the middle of a write

_KILLED_MID_WRITE = r"""
import os, signal, sys
from pathlib import Path
from tests.runtime.session_helpers import file_rig
rig = file_rig(Path(sys.argv[1]))
print("SESSION", rig.client.create().body["sessionId"], flush=True)
os.fsync = lambda _fd: os.kill(os.getpid(), signal.SIGKILL)  # dies after the temporary file is written
rig.client.create()
"""


def test_a_truncated_session_file_is_503_never_500(tmp_path: Path) -> None:
    rig = file_rig(tmp_path)
    session_id = start_session(rig)["sessionId"]
    path = tmp_path / "sessions" / f"{session_id}.json"
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    assert_unavailable(rig.client.get(session_id))
    assert_unavailable(rig.client.frame(session_id, 1))
    path.write_text("[]")  # valid JSON, but not a session
    assert_unavailable(rig.client.get(session_id))
    path.write_bytes(whole)
    assert rig.client.get(session_id).status == 200


def test_a_temporary_file_left_by_a_killed_writer_is_removed_when_a_store_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -9, done.stderr[-2000:]
    session_id = done.stdout.split("SESSION ", 1)[1].split()[0]
    sessions = tmp_path / "sessions"
    assert len(list(sessions.rglob(".*.tmp"))) == 1  # what the killed writer left (a session or an attempt record)
    rig = file_rig(tmp_path)  # a new store on the folder: a restarted server, or a worker replacing the dead one
    assert list(sessions.rglob(".*.tmp")) == []
    assert rig.client.get(session_id).status == 200
