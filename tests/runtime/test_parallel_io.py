"""The archive writes run alongside the analysis, and the answer still waits for every write it reports.

No timing is measured: each test makes one call wait, at botocore's own hooks (the seam its Stubber uses),
for a sign that another call is in flight at that moment. Run one after the other, the waiting call would
never see it and the test fails (the waits are bounded, so a regression fails instead of hanging). DynamoDB
and S3 are moto; the analyzer is the scripted one (it sits across the network).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from liveness.faces import FaceDetail, Frame
from liveness.sessions.keys import face_crop_key
from moto import mock_aws

from testkit.faces import face_for
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    Rig,
    ScriptedAnalyzer,
    aws_rig,
    data_url,
    fake_aws_env,
    light_off,
    start_session,
    step_codes,
)

# These tests are about frames, storage and concurrency of the other steps: the light step (tested in
# test_sessions_light.py, and walked by the genuine sessions of test_sessions_routes.py) is irrelevant here.
pytestmark = pytest.mark.usefixtures("light_off")

# Long enough for any machine to start a thread; a correct implementation never waits this long.
IN_FLIGHT_SECONDS = 10


class _AnalysisThatWaits(ScriptedAnalyzer):
    """DetectFaces that meets each call in ``meet`` (a two-party barrier the call's hook also waits at): both
    are in flight at the same moment, or the barrier breaks."""

    def __init__(self) -> None:
        super().__init__()
        self.meet: list[threading.Barrier] = []
        self.detect_finished = threading.Event()

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        for barrier in self.meet:
            barrier.wait()  # BrokenBarrierError if the call does not run alongside the analysis
        try:
            return super().detect_faces(frame)
        finally:
            self.detect_finished.set()


def _on(client: Any, event: str, handler: Any) -> None:
    client.meta.events.register(event, handler)


@pytest.fixture
def aws_parallel(fake_aws_env: None) -> Any:
    with mock_aws():
        analyzer = _AnalysisThatWaits()
        rig = aws_rig(analyzer=analyzer)
        rig.analyzer = analyzer
        yield rig


def test_detect_writes_the_upload_and_the_crop_at_once(aws_parallel: Rig) -> None:
    rig = aws_parallel
    rig.analyzer.default_faces = [face_for("SMILE")]
    both_in_flight = threading.Barrier(2, timeout=IN_FLIGHT_SECONDS)
    keys: list[str] = []

    def put(params: dict[str, Any], **_: Any) -> None:
        keys.append(params["Key"])
        both_in_flight.wait()  # BrokenBarrierError (a 500) if the other write does not start meanwhile

    _on(rig.deps.archive.client, "before-parameter-build.s3.PutObject", put)
    reply = rig.client.call("POST", "/detect", {"image_bytes": data_url(1)})
    assert reply.status == 200, reply.body
    archive = reply.body["archive"]
    assert sorted(keys) == sorted([archive["frameKey"], archive["faceKey"]])
    assert rig.stored(archive["frameKey"]) and rig.stored(archive["faceKey"])  # the answer came after both


def test_a_session_frame_is_archived_while_it_is_analysed(aws_parallel: Rig) -> None:
    rig = aws_parallel
    created = start_session(rig)
    upload_in_flight = threading.Barrier(2, timeout=IN_FLIGHT_SECONDS)

    def put(params: dict[str, Any], **_: Any) -> None:
        if "/frames/" in params["Key"] and not params["Key"].endswith("-face.jpg"):
            upload_in_flight.wait()

    _on(rig.deps.archive.client, "before-parameter-build.s3.PutObject", put)
    rig.analyzer.meet = [upload_in_flight]
    rig.analyzer.script(face_for("LOOK_STRAIGHT"))
    reply = rig.client.frame(created["sessionId"], 1)
    assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body


def test_the_reference_face_is_read_while_the_next_frame_is_analysed(aws_parallel: Rig) -> None:
    rig = aws_parallel
    created = start_session(rig)
    session_id = created["sessionId"]
    rig.analyzer.script(face_for("LOOK_STRAIGHT"))
    assert rig.client.frame(session_id, 1).body["verdict"] == "ACCEPTED"
    reference_in_flight = threading.Barrier(2, timeout=IN_FLIGHT_SECONDS)
    reference_key = face_crop_key(session_id, rig.store.get(session_id).reference_frame_id)

    def get(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == reference_key:
            reference_in_flight.wait()

    _on(rig.deps.archive.client, "before-parameter-build.s3.GetObject", get)
    rig.analyzer.meet = [reference_in_flight]
    rig.analyzer.script(face_for(step_codes(created)[1]))
    reply = rig.client.frame(session_id, 2)
    assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body
    assert rig.analyzer.compare_calls  # the reference read ahead was the one compared with


def test_the_verdict_is_saved_only_after_the_uploads_write_completed(aws_parallel: Rig) -> None:
    """The upload's write is held until the analysis is over; the verdict's save must still come after it."""
    rig = aws_parallel
    created = start_session(rig)
    upload_done = threading.Event()
    saves_before_upload_done: list[bool] = []

    def put(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "/frames/" in params["Key"] and not params["Key"].endswith("-face.jpg"):
            context["the upload"] = True  # the request's own context: after-call sees which write it was
            assert rig.analyzer.detect_finished.wait(IN_FLIGHT_SECONDS)

    def put_done(context: dict[str, Any], **_: Any) -> None:
        if context.get("the upload"):  # not the neutral frame's face crop, written in the same request
            upload_done.set()

    def save(**_: Any) -> None:
        saves_before_upload_done.append(not upload_done.is_set())

    archive_client = rig.deps.archive.client
    _on(archive_client, "before-parameter-build.s3.PutObject", put)
    _on(archive_client, "after-call.s3.PutObject", put_done)
    _on(rig.store.client, "before-parameter-build.dynamodb.PutItem", save)
    rig.analyzer.script(face_for("LOOK_STRAIGHT"))
    reply = rig.client.frame(created["sessionId"], 1)
    assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body
    # The reservation is saved before the upload starts; the verdict (the last save) after it completed.
    assert saves_before_upload_done == [True, False], saves_before_upload_done
