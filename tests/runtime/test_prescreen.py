"""The pre-screen on the Rekognition path (sessions/prescreen.py): real images through the real decode and the
embedded analyzer; Rekognition is botocore's Stubber, which fails the test on any call it was not given."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from botocore.stub import Stubber
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.challenges import Measured, ReasonCode, StepCode, Thresholds, challenge
from liveness.faces import BoundingBox, FaceDetail
from liveness.light.decision import LightThresholds
from liveness.sessions.model import PendingFrame
from liveness.sessions.prescreen import PITCH_MARGIN, YAW_MARGIN, screen_reason
from liveness.sessions.store import SessionConflict
from liveness.sessions.transitions import new_session, reserve_frame
from liveness.settings import Settings, prescreen_from_env
from liveness.wiring import build_prescreen
from moto import mock_aws

from testkit import headturn
from testkit.rekognition import detect_faces_response, face_detail
from tests.local.support import neutral_astronaut_bgr
from tests.runtime.session_helpers import OWNER, Rig, aws_rig, fake_aws_env, light_off, seeded_session  # noqa: F401

pytestmark = pytest.mark.usefixtures("light_off")
T = Thresholds()
FACE = FaceDetail(bounding_box=BoundingBox(0.3, 0.4, 0.35, 0.2), confidence=99.0)


def _moved(yaw: float = 0.0, pitch: float = 0.0, **expression: float) -> Measured:
    return Measured(yaw=yaw, pitch=pitch, roll=0.0, **expression)


def test_a_head_still_near_its_baseline_is_refused_and_one_within_the_margin_is_not() -> None:
    assert screen_reason(StepCode.TURN_LEFT, [FACE], _moved(yaw=2.0), T) is ReasonCode.POSE_NOT_MET
    assert screen_reason(StepCode.TURN_LEFT, [FACE], _moved(yaw=T.turn_yaw - YAW_MARGIN + 0.5), T) is None
    assert screen_reason(StepCode.TURN_LEFT, [FACE], _moved(yaw=-20.0), T) is ReasonCode.POSE_NOT_MET  # wrong way
    assert screen_reason(StepCode.LOOK_UP, [FACE], _moved(pitch=T.tilt_pitch - PITCH_MARGIN - 1), T) is not None
    assert screen_reason(StepCode.LOOK_UP, [FACE], _moved(pitch=T.tilt_pitch - PITCH_MARGIN + 1), T) is None


def test_faces_and_expressions() -> None:
    assert screen_reason(StepCode.TURN_LEFT, [FACE, FACE], _moved(yaw=30.0), T) is ReasonCode.MULTIPLE_FACES
    assert screen_reason(StepCode.LOOK_STRAIGHT, [], Measured(), T) is ReasonCode.NO_FACE
    assert screen_reason(StepCode.TURN_LEFT, [], Measured(), T) is None  # turned far: Rekognition may still see it
    assert screen_reason(StepCode.SMILE, [FACE], _moved(smile=3.0), T) is ReasonCode.EXPRESSION_NOT_MET
    assert screen_reason(StepCode.SMILE, [FACE], _moved(smile=40.0), T) is None  # unsure: Rekognition decides
    # The neutral start: an expression is Rekognition's to see; only a head clearly turned away is refused.
    assert screen_reason(StepCode.LOOK_STRAIGHT, [FACE], _moved(smile=99.0), T) is None
    assert screen_reason(StepCode.LOOK_STRAIGHT, [FACE], _moved(yaw=45.0), T) is ReasonCode.NOT_LOOKING_STRAIGHT


def test_the_switch_and_where_the_prescreen_runs(mesh_analyzer: MeshAnalyzer) -> None:
    rekognition = RekognitionAnalyzer(boto3.client("rekognition", region_name="us-east-1"))
    assert isinstance(build_prescreen(Settings(), rekognition), MeshAnalyzer)  # on by default
    assert build_prescreen(Settings(prescreen=False), rekognition) is None
    assert build_prescreen(Settings(), mesh_analyzer) is None  # local mode: the embedded analyzer judges alone
    assert prescreen_from_env(" OFF ") is False and prescreen_from_env("on") is True
    with pytest.raises(ValueError, match="PRESCREEN"):
        prescreen_from_env("maybe")


# ---------------------------------------------------------------------------------------------------------
# Through the service: real frames, the real RekognitionAnalyzer on a Stubber.


@pytest.fixture
def stubbed(fake_aws_env: None, mesh_analyzer: MeshAnalyzer) -> Iterator[tuple[Rig, Stubber]]:
    with mock_aws():
        client = boto3.client("rekognition", region_name="us-east-1")
        with Stubber(client) as stubber:
            rig = aws_rig(analyzer=RekognitionAnalyzer(client))
            rig.deps.prescreen = mesh_analyzer
            yield rig, stubber
            stubber.assert_no_pending_responses()


def _upload(bgr: np.ndarray, seed: int) -> str:
    noisy = np.clip(bgr.astype(np.float32) + np.random.default_rng(seed).normal(0, 2.0, bgr.shape), 0, 255)
    ok, encoded = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


FRONTAL = {"Pose": {"Yaw": 0.0, "Pitch": 0.0, "Roll": 0.0}}


def _neutral_start(rig: Rig, stubber: Stubber, session_id: str, bgr: np.ndarray) -> dict[str, Any]:
    stubber.add_response("detect_faces", detect_faces_response(face_detail(**FRONTAL)))
    reply = rig.client.frame(session_id, image=_upload(bgr, 0)).body
    assert reply["verdict"] == "ACCEPTED" and reply["judgedBy"] == "rekognition", reply
    return reply


def test_a_frame_that_cannot_meet_its_step_costs_no_rekognition_call(stubbed: tuple[Rig, Stubber]) -> None:
    """After the neutral start (Rekognition's DetectFaces), the same straight face for a turn: the pre-screen
    refuses it from its own measurement, with its coaching, and the Stubber shows no call was made."""
    rig, stubber = stubbed
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    stored = rig.store.get(session_id)
    assert stored.baseline is not None and stored.screen_baseline is not None  # each analyzer's own straight
    for seed in (1, 2, 3):
        reply = rig.client.frame(session_id, image=_upload(face, seed)).body
        assert reply["reasonCode"] == "POSE_NOT_MET" and reply["judgedBy"] == "local-mesh", reply
        assert reply["message"] and abs(reply["measured"]["movement"]["yaw"]) < 5, reply
    audit = rig.store.get(session_id).frames[-1]
    assert audit.judged_by == "local-mesh" and audit.reason is ReasonCode.POSE_NOT_MET


def test_with_the_prescreen_off_every_frame_goes_to_rekognition(stubbed: tuple[Rig, Stubber]) -> None:
    rig, stubber = stubbed
    rig.deps.prescreen = None
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.SMILE, StepCode.TURN_LEFT)
    _neutral_start(rig, stubber, session_id, face)
    stubber.add_response("detect_faces", detect_faces_response(face_detail(**FRONTAL)))
    reply = rig.client.frame(session_id, image=_upload(face, 1)).body
    assert reply["reasonCode"] == "EXPRESSION_NOT_MET" and reply["judgedBy"] == "rekognition", reply
    assert rig.store.get(session_id).screen_baseline is None


@pytest.mark.skipif(not headturn.available(), reason=f"needs the developers' webcam clip {headturn.CLIP}")
def test_a_real_turn_goes_to_rekognition_in_one_call(stubbed: tuple[Rig, Stubber]) -> None:
    """The clip's person turned 34 degrees: the pre-screen lets it through, and one CompareFaces call (which
    describes the face it compares) judges the step and the identity."""
    rig, stubber = stubbed
    clip = headturn.read_frames()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, clip[headturn.STRAIGHT[2]])
    turned = face_detail(Pose={"Yaw": 30.0, "Pitch": 2.0, "Roll": 0.0})
    compared = {key: turned[key] for key in ("BoundingBox", "Confidence", "Pose", "Quality")}
    stubber.add_response(
        "compare_faces",
        {"SourceImageFace": {"Confidence": 99.9}, "FaceMatches": [{"Similarity": 99.1, "Face": compared}]},
    )
    reply = rig.client.frame(session_id, image=_upload(clip[9], 1)).body
    assert reply["verdict"] == "ACCEPTED" and reply["stepCode"] == "TURN_LEFT", reply
    assert reply["judgedBy"] == "rekognition" and reply["similarity"] == 99.1


def test_a_prescreen_refusal_keeps_the_sessions_rules(stubbed: tuple[Rig, Stubber]) -> None:
    """A refused frame takes its slot and counts toward the step's budget like any rejected frame."""
    rig, stubber = stubbed
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    before = rig.store.get(session_id)
    rig.client.frame(session_id, image=_upload(face, 5))
    after = rig.store.get(session_id)
    assert after.frames_received == before.frames_received + 1 and after.steps[1].attempts == 1


def _frames_archived(rig: Rig, session_id: str) -> list[str]:
    return [key for key in rig.keys(f"sessions/{session_id}/frames/") if not key.endswith("-face.jpg")]


def test_a_refusal_keeps_its_record_and_no_image_by_default(stubbed: tuple[Rig, Stubber]) -> None:
    """The refused frame's digest, measurement and reason are logged; its image is not archived (no PUT on the
    refusal's path), while the neutral start's frame, judged by Rekognition, is."""
    rig, stubber = stubbed
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    rig.client.frame(session_id, image=_upload(face, 7))
    start, refused = rig.store.get(session_id).frames[-2:]
    assert refused.judged_by == "local-mesh" and refused.frame_key == "" and refused.sha256
    assert refused.measured.get("yaw") is not None
    assert _frames_archived(rig, session_id) == [start.frame_key] and start.frame_key


def test_archive_screened_keeps_the_refused_image_too(stubbed: tuple[Rig, Stubber]) -> None:
    rig, stubber = stubbed
    rig.deps.settings = replace(rig.deps.settings, archive_screened=True)
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    image = _upload(face, 8)
    rig.client.frame(session_id, image=image)
    refused = rig.store.get(session_id).frames[-1]
    assert refused.judged_by == "local-mesh" and refused.frame_key in _frames_archived(rig, session_id)
    assert rig.stored(refused.frame_key) == base64.b64decode(image.split(",", 1)[1])


def test_the_prescreen_judges_the_step_the_frame_reserved(stubbed: tuple[Rig, Stubber]) -> None:
    """The pre-screen measures the frame once, against the state read first. When another frame moves the step
    before the refusal's save (here: that save conflicts with it), the verdict is taken again from the same
    measurement for the fresh state: the smile the frame now stands for, not the turn it was read at."""
    rig, stubber = stubbed
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    store, save = rig.store, rig.store.save
    moved: list[int] = []

    def save_after_another_frame(session: Any, expected_version: int, **status: Any) -> None:
        if not moved:  # the other frame's save lands first: the turn is done
            current = store.get(session_id)
            save(replace(current, current_step=2, version=current.version + 1), current.version)
            moved.append(current.version + 1)
        save(session, expected_version, **status)

    store.save = save_after_another_frame
    reply = rig.client.frame(session_id, image=_upload(face, 9)).body
    assert moved, "the refusal's save was never made"
    assert reply["stepCode"] == "SMILE" and reply["reasonCode"] == "EXPRESSION_NOT_MET", reply
    assert reply["judgedBy"] == "local-mesh", reply
    assert rig.store.get(session_id).frames[-1].step_index == 2


def test_a_refusal_is_one_save_and_the_step_budget_still_closes_the_session(stubbed: tuple[Rig, Stubber]) -> None:
    """No reservation for a clear miss: its slot and its verdict are one conditional save. The budgets hold: the
    step's last frame closes the session (ATTEMPT_LIMIT), and a frame after it is a 409 with no analysis."""
    rig, stubber = stubbed
    limits = replace(rig.deps.settings.session_limits, step_max_frames=3)
    rig.deps.settings = replace(rig.deps.settings, session_limits=limits)
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    store, save = rig.store, rig.store.save
    saves: list[int] = []
    store.save = lambda session, expected_version, **status: (
        saves.append(1),
        save(session, expected_version, **status),
    )
    for seed in (11, 12):
        before, version = len(saves), rig.store.get(session_id).version
        reply = rig.client.frame(session_id, image=_upload(face, seed)).body
        assert reply["judgedBy"] == "local-mesh" and reply["status"] == "IN_PROGRESS", reply
        assert len(saves) - before == 1 and rig.store.get(session_id).version == version + 2
    last = rig.client.frame(session_id, image=_upload(face, 13)).body
    assert last["status"] == "FAILED" and last["failureReason"] == "ATTEMPT_LIMIT", last
    late = rig.client.frame(session_id, image=_upload(face, 14))
    assert late.status == 409 and late.body["code"] == "SESSION_CLOSED", late.body
    assert rig.store.get(session_id).frames_received == 4


def test_the_archive_switch_reads_on_or_off() -> None:
    assert Settings.from_env({}).archive_screened is False
    assert Settings.from_env({"ARCHIVE_SCREENED": " On "}).archive_screened is True
    with pytest.raises(ValueError, match="ARCHIVE_SCREENED"):
        Settings.from_env({"ARCHIVE_SCREENED": "yes"})


# ---------------------------------------------------------------------------------------------------------
# The refusal's one save on its error paths.


class _FailingPrescreen:
    name = "local-mesh"

    def detect_faces(self, frame: Any) -> list[FaceDetail]:
        raise RuntimeError("the embedded analyzer broke")


def test_a_failing_prescreen_leaves_the_frame_to_rekognition(stubbed: tuple[Rig, Stubber]) -> None:
    rig, stubber = stubbed
    rig.deps.prescreen = _FailingPrescreen()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    reply = _neutral_start(rig, stubber, session_id, neutral_astronaut_bgr())
    assert reply["currentStep"] == 1
    assert rig.store.get(session_id).screen_baseline is None  # no measurement of its own: no pre-screen after


def test_a_refusal_whose_save_answer_was_lost_is_logged_once(stubbed: tuple[Rig, Stubber]) -> None:
    """The save committed but its answer was lost (a retried PutItem then fails its condition): the retry finds
    the frame already logged and answers that record, with one slot taken."""
    rig, stubber = stubbed
    face = neutral_astronaut_bgr()
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    before = rig.store.get(session_id)
    store, save = rig.store, rig.store.save
    lost: list[bool] = []

    def save_then_lose_the_answer(session: Any, expected_version: int, **status: Any) -> None:
        save(session, expected_version, **status)
        if not lost:
            lost.append(True)
            raise SessionConflict(session.session_id)

    store.save = save_then_lose_the_answer
    reply = rig.client.frame(session_id, image=_upload(face, 21)).body
    after = rig.store.get(session_id)
    assert lost and reply["judgedBy"] == "local-mesh" and reply["reasonCode"] == "POSE_NOT_MET", reply
    assert [record.frame_id for record in after.frames].count(reply["frameId"]) == 1
    assert after.frames_received == before.frames_received + 1 and after.version == before.version + 2


def test_a_refusal_that_finds_the_light_step_takes_no_slot(stubbed: tuple[Rig, Stubber]) -> None:
    """A clear miss read at the neutral start, whose save finds the light step (another frame passed the neutral
    start meanwhile): 409, as for any frame sent during the light step, and no slot taken."""
    rig, _stubber = stubbed
    session_id = str(uuid.uuid4())
    steps = challenge((StepCode.TURN_LEFT, StepCode.SMILE), light=True)
    limits = rig.deps.settings.session_limits
    light = dict(light_mode="enforce", light_thresholds=LightThresholds())
    created = new_session(
        session_id, OWNER, steps, mirrored=False, analyzer="rekognition", now=rig.clock(), limits=limits, **light
    )
    rig.store.create(created)
    store, save = rig.store, rig.store.save

    def save_after_the_neutral_start(session: Any, expected_version: int, **status: Any) -> None:
        current = store.get(session_id)
        if current.current_step == 0:
            save(replace(current, current_step=1, version=current.version + 1), current.version)
        save(session, expected_version, **status)

    store.save = save_after_the_neutral_start
    blank = np.full((480, 640, 3), 128, np.uint8)  # no face: a clear miss at the neutral start
    reply = rig.client.frame(session_id, image=_upload(blank, 22))
    assert reply.status == 409 and "FOLLOW_LIGHT" in reply.body["message"], reply.body
    assert rig.store.get(session_id).frames_received == 0


def test_a_frame_with_no_slot_left_is_not_analysed(stubbed: tuple[Rig, Stubber]) -> None:
    """Every slot of the step is held by a frame still being judged: 409 before any analysis, the pre-screen's
    included."""
    rig, stubber = stubbed
    face = neutral_astronaut_bgr()
    limits = replace(rig.deps.settings.session_limits, step_max_frames=1)
    rig.deps.settings = replace(rig.deps.settings, session_limits=limits)
    session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.SMILE)
    _neutral_start(rig, stubber, session_id, face)
    current = rig.store.get(session_id)
    held, admitted = reserve_frame(current, rig.clock(), PendingFrame(str(uuid.uuid4()), "", current.current_step))
    assert admitted
    rig.store.save(held, current.version)
    calls: list[int] = []
    measure_faces = rig.deps.prescreen.detect_faces
    rig.deps.prescreen.detect_faces = lambda frame: (calls.append(1), measure_faces(frame))[1]
    reply = rig.client.frame(session_id, image=_upload(face, 23))
    assert reply.status == 409 and "ATTEMPT_LIMIT" in reply.body["message"], reply.body
    assert not calls
