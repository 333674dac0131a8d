"""The light step through the real handler (issue 19): POST /sessions/{id}/light and /light/frames.

The embedded analyzer judges real frames: the astronaut (scikit-image's public-domain photo) looks straight, then
the physics harness lights her with the colours the server revealed (genuine) or plays an attack, through the
simulated camera and the real decode. S3 and DynamoDB are moto; Rekognition is botocore's Stubber.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.stub import Stubber
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.images.crop import encode_jpeg
from liveness.images.intake import load_frame
from liveness.light.decision import LightThresholds
from liveness.light.regions import LANDMARKS
from liveness.sessions.attempts import counted_failures, owner_digest
from liveness.sessions.keys import audit_key
from liveness.settings import Settings
from moto import mock_aws

from testkit.aws import OWNER
from testkit.light_client import Batch, play_batch
from testkit.light_session import Subject, working_frame
from testkit.rekognition import detect_faces_response
from tests.runtime.session_helpers import Rig, aws_rig, data_url, fake_aws_env  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def subject(astronaut: np.ndarray, analyzer: MeshAnalyzer) -> Subject:
    return Subject(working_frame(astronaut, top=0.0), analyzer=analyzer)


# The astronaut smiles (the embedded analyzer reads 95): the neutral start, which refuses an expression, is not
# what these tests are about, so its expression bar is raised above her smile.
NEUTRAL_SMILE_ALLOWED = {"EXPRESSION_CONFIDENCE": "99"}


def light_rig(mode: str, analyzer: Any) -> Rig:
    return aws_rig(Settings.from_env({"LIGHT_CHALLENGE": mode, **NEUTRAL_SMILE_ALLOWED}), analyzer=analyzer)


@pytest.fixture
def enforce(fake_aws_env: None, analyzer: MeshAnalyzer) -> Iterator[Rig]:
    with mock_aws():
        yield light_rig("enforce", analyzer)


def straight_image(subject: Subject) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(subject.bgr)).decode("ascii")


def through_neutral_start(rig: Rig, subject: Subject) -> str:
    created = rig.client.create()
    assert created.status == 201, created.body
    session_id = created.body["sessionId"]
    reply = rig.client.frame(session_id, image=straight_image(subject))
    assert reply.body["verdict"] == "ACCEPTED", reply.body
    return session_id


def start_light(rig: Rig, session_id: str) -> dict[str, Any]:
    reply = rig.client.call("POST", f"/sessions/{session_id}/light", {})
    assert reply.status == 201, reply.body
    return reply.body


def send(rig: Rig, session_id: str, batch: Batch) -> Any:
    return rig.client.call("POST", f"/sessions/{session_id}/light/frames", batch.body)


def failures_of(rig: Rig) -> list[str]:
    """The sessions the owner's attempt record counts as failed (sessions/attempts.py)."""
    record = rig.store.get_attempts(owner_digest(OWNER))
    return list(counted_failures(record, rig.clock().timestamp(), rig.deps.settings.attempt_limits))


def test_a_lit_face_passes_the_light_step_and_the_session_moves_on(enforce: Rig, subject: Subject) -> None:
    session_id = through_neutral_start(enforce, subject)
    assert enforce.client.get(session_id).body["steps"][1]["code"] == "FOLLOW_LIGHT"
    started = start_light(enforce, session_id)
    assert len(started["colors"]) == 6 and started["captureOffsetsMs"] == [260, -60]
    assert (started["frameWidth"], started["frameHeight"], started["attempt"], started["maxAttempts"]) == (
        320,
        240,
        1,
        2,
    )
    reply = send(enforce, session_id, play_batch(subject, started, np.random.default_rng(1)))
    assert reply.status == 200, reply.body
    body = reply.body
    assert (body["verdict"], body["stepCode"], body["stepIndex"], body["currentStep"]) == (
        "ACCEPTED",
        "FOLLOW_LIGHT",
        1,
        2,
    )
    assert body["measured"]["light"]["outcome"] == "PASSED" and body["measured"]["light"]["rho"] >= 0.8
    prefix = f"sessions/{session_id}/light/{started['challengeId']}/"
    assert len(enforce.keys(prefix)) == 12  # every frame archived
    assert body["similarity"] is not None  # compared with the reference face


@pytest.mark.parametrize("attack", ["replay", "still"])
def test_an_attack_is_rejected_and_fails_the_session_after_the_attempts(
    enforce: Rig, subject: Subject, attack: str
) -> None:
    session_id = through_neutral_start(enforce, subject)
    rng = np.random.default_rng(2)
    first = send(enforce, session_id, play_batch(subject, start_light(enforce, session_id), rng, attack)).body
    assert (first["verdict"], first["status"]) == ("REJECTED", "IN_PROGRESS"), first
    assert first["reasonCode"] in ("LIGHT_NOT_FOLLOWED", "LIGHT_TOO_BRIGHT", "LIGHT_FACE_MOVED")
    second = send(enforce, session_id, play_batch(subject, start_light(enforce, session_id), rng, attack)).body
    assert (second["verdict"], second["status"]) == ("REJECTED", "FAILED"), second
    assert second["failureReason"] in ("LIGHT_NOT_FOLLOWED", "LIGHT_UNVERIFIED")
    audit = json.loads(enforce.stored(audit_key(session_id)) or b"{}")
    assert [item["accepted"] for item in audit["light"]["attempts"]] == [False, False]
    assert (
        audit["light"]["mode"] == "enforce"
        and audit["light"]["thresholds"]["min_correlation"] == LightThresholds().min_correlation
    )
    lights = [frame["measured"]["light"] for frame in audit["frames"] if frame["stepCode"] == "FOLLOW_LIGHT"]
    assert len(lights) == 2 and all("rho" in light for light in lights)
    assert failures_of(enforce) == [session_id]  # a failed check for the attempt limits, like any other close


def test_shadow_mode_accepts_and_records_the_verdict(
    fake_aws_env: None, analyzer: MeshAnalyzer, subject: Subject
) -> None:
    with mock_aws():
        rig = light_rig("shadow", analyzer)
        session_id = through_neutral_start(rig, subject)
        started = start_light(rig, session_id)
        reply = send(rig, session_id, play_batch(subject, started, np.random.default_rng(3), "replay")).body
        assert (reply["verdict"], reply["currentStep"]) == ("ACCEPTED", 2), reply
        assert reply["measured"]["light"]["outcome"] != "PASSED" and reply["measured"]["light"]["mode"] == "shadow"
        stored = rig.store.get(session_id)
        assert [(a.outcome != "PASSED", a.accepted) for a in stored.light_attempts] == [(True, True)]


def test_off_mode_has_no_light_step(fake_aws_env: None, analyzer: MeshAnalyzer, subject: Subject) -> None:
    with mock_aws():
        rig = light_rig("off", analyzer)
        created = rig.client.create().body
        assert "FOLLOW_LIGHT" not in [step["code"] for step in created["steps"]] and created["lightChallenge"] == "off"
        session_id = through_neutral_start(rig, subject)
        reply = rig.client.call("POST", f"/sessions/{session_id}/light", {})
        assert (reply.status, reply.body["code"]) == (409, "CONFLICT")


def test_a_start_while_a_challenge_is_open_and_frames_during_the_step_are_409(enforce: Rig, subject: Subject) -> None:
    session_id = through_neutral_start(enforce, subject)
    before_straight = enforce.client.call("POST", f"/sessions/{session_id}/light", {})
    assert before_straight.status == 201  # the neutral start is done: the light step is current
    again = enforce.client.call("POST", f"/sessions/{session_id}/light", {})
    assert (again.status, again.body["code"]) == (409, "CONFLICT") and "already running" in again.body["message"]
    frame = enforce.client.frame(session_id, seed=5)
    assert (frame.status, frame.body["code"]) == (409, "CONFLICT") and "FOLLOW_LIGHT" in frame.body["message"]


def test_a_start_before_the_neutral_start_is_409(enforce: Rig) -> None:
    session_id = enforce.client.create().body["sessionId"]
    reply = enforce.client.call("POST", f"/sessions/{session_id}/light", {})
    assert (reply.status, reply.body["code"]) == (409, "CONFLICT") and "LOOK_STRAIGHT" in reply.body["message"]


def _malformed(batch: Batch, started: dict[str, Any]) -> list[dict[str, Any]]:
    body = batch.body
    frames = body["frames"]
    return [
        {**body, "frames": frames[:-1]},  # a colour and offset missing
        {**body, "frames": [*frames[:-1], frames[0]]},  # one sent twice
        {**body, "challengeId": "another-challenge"},
        {**body, "frames": [{**frames[0], "image": "not-base64!"}, *frames[1:]]},
        {**body, "frames": [{**frames[0], "colorIndex": 9}, *frames[1:]]},
        {"challengeId": started["challengeId"]},
        {**body, "extra": 1},
    ]


def test_malformed_batches_are_400_and_cost_nothing(enforce: Rig, subject: Subject) -> None:
    session_id = through_neutral_start(enforce, subject)
    started = start_light(enforce, session_id)
    batch = play_batch(subject, started, np.random.default_rng(4))
    calls = enforce.analyzer.detect_calls
    for body in _malformed(batch, started):
        reply = enforce.client.call("POST", f"/sessions/{session_id}/light/frames", body)
        assert reply.status == 400 and reply.body["code"] in ("INVALID_REQUEST", "INVALID_IMAGE"), reply.body
    assert enforce.store.get(session_id).frames_received == 1 and enforce.analyzer.detect_calls == calls
    assert send(enforce, session_id, batch).body["verdict"] == "ACCEPTED"  # the challenge is still open


def test_a_late_batch_is_409_and_uses_an_attempt(enforce: Rig, subject: Subject) -> None:
    session_id = through_neutral_start(enforce, subject)
    for attempt in (1, 2):
        started = start_light(enforce, session_id)
        assert started["attempt"] == attempt
        batch = play_batch(subject, started, np.random.default_rng(attempt))
        enforce.clock.advance(9.6)  # past submitBy (at most 4.5 s of colours + 5 s), within the step's 10 s
        reply = send(enforce, session_id, batch)
        assert (reply.status, reply.body["code"]) == (409, "CONFLICT") and "expired" in reply.body["message"]
    session = enforce.client.get(session_id).body
    assert (session["status"], session["failureReason"]) == ("FAILED", "LIGHT_UNVERIFIED")
    assert failures_of(enforce) == [session_id]


def test_a_batch_is_judged_once(enforce: Rig, subject: Subject) -> None:
    session_id = through_neutral_start(enforce, subject)
    batch = play_batch(subject, start_light(enforce, session_id), np.random.default_rng(6), "still")
    assert send(enforce, session_id, batch).body["verdict"] == "REJECTED"
    replayed = send(enforce, session_id, batch)
    assert (replayed.status, replayed.body["code"]) == (409, "CONFLICT")


# ---------------------------------------------------------------------------------------------------------
# Rekognition: one DetectFaces and one CompareFaces per batch.


def test_rekognition_makes_one_compare_per_batch(fake_aws_env: None, analyzer: MeshAnalyzer, subject: Subject) -> None:
    client = boto3.client("rekognition", region_name="us-east-1")
    stubber = Stubber(client)
    with mock_aws(), stubber:
        rig = light_rig("enforce", RekognitionAnalyzer(client))
        frontal = analyzer.detect_faces(load_frame(encode_jpeg(subject.bgr)))[0]
        detail = {**frontal.to_rekognition(), "Pose": {"Yaw": 0.0, "Pitch": 0.0, "Roll": 0.0}, "Confidence": 99.9}
        detail["Quality"] = {"Brightness": 80.0, "Sharpness": 60.0}
        stubber.add_response("detect_faces", detect_faces_response(detail))
        session_id = through_neutral_start(rig, subject)
        started = start_light(rig, session_id)
        batch = play_batch(subject, started, np.random.default_rng(7))
        lit = analyzer.detect_faces(batch.analysed_frame())[0]
        # CompareFaces describes the face it compares as a ComparedFace: box, confidence, the five landmarks,
        # pose, quality (no occlusion, sunglasses or eyes): all the light step reads.
        compared = {key: detail[key] for key in ("Confidence", "Pose", "Quality")} | _placement(lit)
        stubber.add_response(
            "compare_faces",
            {"SourceImageFace": {"Confidence": 99.9}, "FaceMatches": [{"Similarity": 99.0, "Face": compared}]},
        )
        reply = send(rig, session_id, batch).body
        stubber.assert_no_pending_responses()  # exactly one call: the CompareFaces
        assert (reply["verdict"], reply["currentStep"]) == ("ACCEPTED", 2), reply


def _placement(face: Any) -> dict[str, Any]:
    shaped = face.to_rekognition()
    five = [landmark for landmark in shaped["Landmarks"] if landmark["Type"] in LANDMARKS]
    return {"BoundingBox": shaped["BoundingBox"], "Landmarks": five}
