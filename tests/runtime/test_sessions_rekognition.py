"""Sessions through the REAL RekognitionAnalyzer: botocore's Stubber scripts DetectFaces per frame and
CompareFaces, and checks every request's parameters; S3 and DynamoDB are moto."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.challenges import HEAD_MOVEMENTS, StepCode, challenge
from liveness.sessions.keys import face_crop_key
from moto import mock_aws

from testkit.images import png_bytes
from testkit.rekognition import detect_faces_response, face_detail
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    Rig,
    aws_rig,
    fake_aws_env,
    jpeg_bytes,
    light_off,
    seeded_session,
    start_session,
    step_codes,
)

# These tests are about frames, storage and concurrency of the other steps: the light step (tested in
# test_sessions_light.py, and walked by the genuine sessions of test_sessions_routes.py) is irrelevant here.
pytestmark = pytest.mark.usefixtures("light_off")

FRONTAL = {"Yaw": 0.0, "Pitch": 0.0, "Roll": 0.0}
# What DetectFaces reports for a user performing each step in an unmirrored frame (Rekognition's signs). Every
# pose is within COMPARE_MAX_DEGREES (25) of the frontal neutral start, so a low similarity on any step is a mismatch.
DETAIL_FOR = {
    "LOOK_STRAIGHT": {"Pose": FRONTAL},
    "TURN_LEFT": {"Pose": {"Yaw": 25.0, "Pitch": 2.0, "Roll": -1.0}},
    "TURN_RIGHT": {"Pose": {"Yaw": -25.0, "Pitch": 2.0, "Roll": 1.0}},
    "LOOK_UP": {"Pose": {"Yaw": 3.0, "Pitch": 22.0, "Roll": 0.5}},
    "LOOK_DOWN": {"Pose": {"Yaw": -3.0, "Pitch": -22.0, "Roll": 0.5}},
    "SMILE": {"Pose": FRONTAL, "Smile": {"Value": True, "Confidence": 97.0}},
    "OPEN_MOUTH": {"Pose": FRONTAL, "MouthOpen": {"Value": True, "Confidence": 96.0}},
    "CLOSE_EYES": {"Pose": FRONTAL, "EyesOpen": {"Value": False, "Confidence": 95.0}},
}
BOX = {"Width": 0.3, "Height": 0.45, "Left": 0.35, "Top": 0.2}
HEAD_MOVEMENT_CODES = {code.value for code in HEAD_MOVEMENTS}
# What CompareFaces tells of each face it compares (a ComparedFace): no eyes, mouth, occlusion or sunglasses.
COMPARED_FACE_KEYS = ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality", "Smile", "Emotions")


class Stubbed:
    """The Stubber plus the expectations a session needs."""

    def __init__(self, stubber: Stubber) -> None:
        self.stubber = stubber

    def detect(self, upload: bytes, step: str) -> None:
        self.stubber.add_response(
            "detect_faces",
            detect_faces_response(face_detail(**DETAIL_FOR[step])),
            expected_params={"Image": {"Bytes": upload}, "Attributes": ["ALL"]},
        )

    def compare(self, reference: bytes, candidate: bytes, similarity: float) -> None:
        response = {
            "SourceImageFace": {"BoundingBox": BOX, "Confidence": 99.9},
            "FaceMatches": [{"Similarity": similarity, "Face": {"BoundingBox": BOX, "Confidence": 99.8}}],
            "UnmatchedFaces": [],
        }
        self.stubber.add_response("compare_faces", response, expected_params=_compare_params(reference, candidate))

    def describe_and_compare(self, reference: bytes, candidate: bytes, similarity: float, detail: dict) -> None:
        """CompareFaces describing the target's face as a ComparedFace (box, confidence, pose, quality, landmarks,
        smile): a head movement's one call."""
        compared = {key: value for key, value in face_detail(**detail).items() if key in COMPARED_FACE_KEYS}
        response = {
            "SourceImageFace": {"BoundingBox": BOX, "Confidence": 99.9},
            "FaceMatches": [{"Similarity": similarity, "Face": compared}],
            "UnmatchedFaces": [],
        }
        self.stubber.add_response("compare_faces", response, expected_params=_compare_params(reference, candidate))

    def step(self, reference: bytes, candidate: bytes, step: str, similarity: float) -> None:
        """What a frame meeting ``step`` costs: one CompareFaces for a head movement, else DetectFaces + CompareFaces."""
        if step in HEAD_MOVEMENT_CODES:
            self.describe_and_compare(reference, candidate, similarity, DETAIL_FOR[step])
        else:
            self.detect(candidate, step)
            self.compare(reference, candidate, similarity)

    def compare_fails(self, reference: bytes, candidate: bytes, code: str, status: int) -> None:
        self.stubber.add_client_error(
            "compare_faces",
            service_error_code=code,
            service_message=f"scripted {code}",
            http_status_code=status,
            expected_params=_compare_params(reference, candidate),
        )


def _compare_params(reference: bytes, candidate: bytes) -> dict[str, Any]:
    # SimilarityThreshold 0: Rekognition then reports any similarity, and MIN_SIMILARITY decides, in our code.
    return {"SourceImage": {"Bytes": reference}, "TargetImage": {"Bytes": candidate}, "SimilarityThreshold": 0}


@pytest.fixture
def rekognition(fake_aws_env: None) -> Iterator[tuple[Rig, Stubbed]]:
    with mock_aws():
        client = boto3.client("rekognition", region_name="us-east-1")
        with Stubber(client) as stubber:
            yield aws_rig(analyzer=RekognitionAnalyzer(client)), Stubbed(stubber)
            stubber.assert_no_pending_responses()  # every scripted call was made


def _data_url(raw: bytes, media_type: str = "image/jpeg") -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode('ascii')}"


def _first_step(rig: Rig, stub: Stubbed, *steps: StepCode) -> tuple[dict[str, Any], bytes]:
    """Start a session (with these drawn steps, or drawn by the server) and pass its first step, the neutral
    start; returns the session and the reference crop it produced."""
    if steps:
        session_id = seeded_session(rig, *steps)
        created = {"sessionId": session_id, "steps": [{"code": code.value} for code in challenge(steps)]}
    else:
        created = start_session(rig)
    upload = jpeg_bytes(seed=0)
    assert step_codes(created)[0] == "LOOK_STRAIGHT"
    stub.detect(upload, step_codes(created)[0])
    reply = rig.client.frame(created["sessionId"], image=_data_url(upload))
    assert reply.body["verdict"] == "ACCEPTED" and reply.body["similarity"] is None, reply.body
    crop = rig.stored(face_crop_key(created["sessionId"], reply.body["frameId"]))
    assert crop is not None and crop.startswith(b"\xff\xd8\xff")  # CompareFaces gets a JPEG reference
    return created, crop


def test_a_session_passes_through_the_real_analyzer(rekognition: tuple[Rig, Stubbed]) -> None:
    rig, stub = rekognition
    created, crop = _first_step(rig, stub)
    codes = step_codes(created)
    second = png_bytes()  # a PNG upload reaches CompareFaces as the PNG it is
    stub.step(crop, second, codes[1], 99.4)
    reply = rig.client.frame(created["sessionId"], image=_data_url(second, "image/png"))
    assert reply.body["verdict"] == "ACCEPTED" and reply.body["similarity"] == 99.4
    assert reply.body["judgedBy"] == "rekognition"
    third = jpeg_bytes(seed=3)
    stub.step(crop, third, codes[2], 98.1)
    assert rig.client.frame(created["sessionId"], image=_data_url(third)).body["verdict"] == "ACCEPTED"
    fourth = jpeg_bytes(seed=4)
    stub.step(crop, fourth, codes[3], 97.5)
    last = rig.client.frame(created["sessionId"], image=_data_url(fourth))
    assert last.body["status"] == "PASSED" and last.body["sessionVerdict"]["samePersonVerified"] is True
    assert rig.store.get(created["sessionId"]).analyzer == "rekognition"


def test_no_face_in_one_compared_image_fails_the_session(rekognition: tuple[Rig, Stubbed]) -> None:
    """An expression: DetectFaces saw the face, then CompareFaces found none to compare: not the same person."""
    rig, stub = rekognition
    created, crop = _first_step(rig, stub, StepCode.SMILE, StepCode.TURN_LEFT)
    second = jpeg_bytes(seed=1)
    stub.detect(second, "SMILE")
    stub.compare_fails(crop, second, "InvalidParameterException", 400)  # Rekognition: no face in an image
    reply = rig.client.frame(created["sessionId"], image=_data_url(second))
    assert reply.status == 200 and reply.body["reasonCode"] == "FACE_MISMATCH" and reply.body["similarity"] == 0.0
    assert reply.body["status"] == "FAILED" and reply.body["failureReason"] == "FACE_MISMATCH"
    assert rig.store.get(created["sessionId"]).same_person_check.value == "failed"


def test_a_head_movement_costs_one_call_and_no_face_there_is_no_face(rekognition: tuple[Rig, Stubbed]) -> None:
    """A head movement: CompareFaces alone describes the face and compares it. Finding no face in the frame
    (InvalidParameterException) is NO_FACE, as DetectFaces would have said; the next frame passes the step."""
    rig, stub = rekognition
    created, crop = _first_step(rig, stub, StepCode.TURN_LEFT, StepCode.SMILE)
    empty = jpeg_bytes(seed=1)
    stub.compare_fails(crop, empty, "InvalidParameterException", 400)
    reply = rig.client.frame(created["sessionId"], image=_data_url(empty))
    assert reply.body["reasonCode"] == "NO_FACE" and reply.body["status"] == "IN_PROGRESS", reply.body
    turned = jpeg_bytes(seed=2)
    stub.describe_and_compare(crop, turned, 98.7, DETAIL_FOR["TURN_LEFT"])
    reply = rig.client.frame(created["sessionId"], image=_data_url(turned))
    assert reply.body["verdict"] == "ACCEPTED" and reply.body["stepCode"] == "TURN_LEFT", reply.body
    assert reply.body["similarity"] == 98.7 and reply.body["measured"]["yaw"] == 25.0


def test_a_throttled_comparison_answers_503_and_changes_nothing(rekognition: tuple[Rig, Stubbed]) -> None:
    rig, stub = rekognition
    created, crop = _first_step(rig, stub)
    before = rig.store.get(created["sessionId"])
    second = jpeg_bytes(seed=1)
    if step_codes(created)[1] not in HEAD_MOVEMENT_CODES:
        stub.detect(second, step_codes(created)[1])
    stub.compare_fails(crop, second, "ThrottlingException", 400)
    reply = rig.client.frame(created["sessionId"], image=_data_url(second))
    assert (reply.status, reply.body["code"]) == (503, "ANALYZER_UNAVAILABLE")
    assert reply.headers.get("Retry-After") == ["2"]
    after = rig.store.get(created["sessionId"])  # the slot is taken and the frame logged; nothing else moved
    assert after.frames_received == before.frames_received + 1 and after.frames[-1].reason.value == "NOT_JUDGED"
    assert after.current_step == before.current_step
    # The step's share of the budget counts the slot too (STEP_MAX_FRAMES); nothing else about the steps moved.
    current = after.current_step
    assert after.steps[current].frames_received == before.steps[current].frames_received + 1
    assert after.steps == tuple(
        replace(step, frames_received=after.steps[index].frames_received) for index, step in enumerate(before.steps)
    )

    stub.step(crop, second, step_codes(created)[1], 99.0)  # the client retries the same frame
    retry = rig.client.frame(created["sessionId"], image=_data_url(second))
    assert retry.body["verdict"] == "ACCEPTED" and retry.body["stepIndex"] == 1


def _pose(yaw: float = 0.0, pitch: float = 0.0) -> dict[str, Any]:
    return {"Pose": {"Yaw": yaw, "Pitch": pitch, "Roll": 0.0}}


# A head movement on its way (not there yet), and far (40 degrees): Rekognition's signs, unmirrored.
ON_THE_WAY = {"TURN_LEFT": _pose(yaw=15.0), "TURN_RIGHT": _pose(yaw=-15.0), "LOOK_UP": _pose(pitch=12.0)}
ON_THE_WAY["LOOK_DOWN"] = _pose(pitch=-12.0)
FAR = {"TURN_LEFT": _pose(yaw=40.0), "TURN_RIGHT": _pose(yaw=-40.0), "LOOK_UP": _pose(pitch=40.0)}
FAR["LOOK_DOWN"] = _pose(pitch=-40.0)


def test_rekognition_compares_at_any_pose_and_chains_nothing(rekognition: tuple[Rig, Stubbed]) -> None:
    """CompareFaces is robust to pose (pose_robust_comparison): a head on its way costs its one CompareFaces call
    (which describes the face) and is not verified, and a low score 40 degrees out is another person, not "less
    far"."""
    rig, stub = rekognition
    created = start_session(rig, excludeExpressions=True)
    session_id, step = created["sessionId"], step_codes(created)[1]
    neutral = jpeg_bytes(seed=0)
    stub.detect(neutral, "LOOK_STRAIGHT")
    first = rig.client.frame(session_id, image=_data_url(neutral)).body
    crop = rig.stored(face_crop_key(session_id, first["frameId"]))
    on_the_way = jpeg_bytes(seed=1)
    stub.describe_and_compare(crop, on_the_way, 99.0, ON_THE_WAY[step])
    moving = rig.client.frame(session_id, image=_data_url(on_the_way)).body
    assert moving["reasonCode"] == "POSE_NOT_MET" and moving["similarity"] is None and moving["link"] is None
    far = jpeg_bytes(seed=2)
    stub.describe_and_compare(crop, far, 40.0, FAR[step])
    reply = rig.client.frame(session_id, image=_data_url(far)).body
    assert reply["reasonCode"] == "FACE_MISMATCH" and reply["failureReason"] == "FACE_MISMATCH", reply
    assert rig.store.get(session_id).verified == ()
