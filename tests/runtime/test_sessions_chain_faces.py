"""The identity chain with real faces: real images through the real service, the embedded analyzer's detection
and same-person comparison (only the head pose is scripted: the photographs are frontal, the chain is about poses).

Two Yale subjects from ``../shared/faces/dev``: frames of two people interleaved at human pace do not chain, and
a morph (an aligned cross-dissolve) from one to the other over 13 frames never carries the identity across.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from liveness.analyzers.mesh import MeshAnalyzer, largest_face_points
from liveness.challenges import StepCode, Thresholds
from liveness.faces import FaceComparison, FaceDetail, Frame, Pose
from liveness.settings import Settings
from moto import mock_aws

from testkit import headturn
from tests.runtime.session_helpers import aws_rig, fake_aws_env, seeded_session  # noqa: F401  (a fixture)

DEV = Path(__file__).resolve().parents[2].parent / "shared" / "faces" / "dev"
PERSON_A, PERSON_B = DEV / "yale_02_normal.png", DEV / "yale_08_normal.png"
FRAME_SECONDS = 0.3  # the web client's pace, about 3 frames a second

pytestmark = pytest.mark.skipif(
    not PERSON_A.is_file(), reason=f"needs the developers' faces {DEV} (../shared is absent in a fresh clone)"
)


class PosedFaces:
    """The embedded analyzer, with the head pose of each frame set by the test (the faces are real)."""

    name = "local-mesh"
    pose_robust_comparison = False

    def __init__(self, analyzer: MeshAnalyzer) -> None:
        self.analyzer = analyzer
        self.poses: list[tuple[float, float]] = []
        self.similarities: list[float | None] = []

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        yaw, pitch = self.poses.pop(0)
        return [
            replace(found, pose=Pose(roll=0.0, yaw=yaw, pitch=pitch)) for found in self.analyzer.detect_faces(frame)
        ]

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        compared = self.analyzer.compare_faces(reference, candidate)
        self.similarities.append(compared.similarity)
        return compared


def _upload(bgr: np.ndarray, rng: np.random.Generator) -> str:
    """As a camera sends it: with fresh sensor noise, so no two uploads are the same bytes."""
    noisy = np.clip(bgr.astype(np.float32) + rng.normal(0.0, 2.0, bgr.shape), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _morph(analyzer: MeshAnalyzer, count: int) -> list[np.ndarray]:
    """A to B: B aligned on A by a similarity transform of the five face points (eyes, nose, mouth), then blended."""
    first, second = cv2.imread(str(PERSON_A)), cv2.imread(str(PERSON_B))
    with analyzer._lock:
        points_a = largest_face_points(analyzer._loaded(), first)
        points_b = largest_face_points(analyzer._loaded(), second)
    matrix, _ = cv2.estimateAffinePartial2D(np.float32(points_b), np.float32(points_a))
    aligned = cv2.warpAffine(second, matrix, (first.shape[1], first.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    return [cv2.addWeighted(first, 1 - share, aligned, share, 0) for share in np.linspace(0, 1, count)]


def _run(analyzer: MeshAnalyzer, frames: list[tuple[np.ndarray, float, float]], thresholds: Thresholds | None = None):
    """The neutral start with person A, then ``frames`` (image, yaw, pitch) at the client's pace."""
    posed, rng = PosedFaces(analyzer), np.random.default_rng(7)
    settings = Settings() if thresholds is None else replace(Settings(), thresholds=thresholds)
    with mock_aws():
        rig = aws_rig(settings=settings, analyzer=posed)
        session_id = seeded_session(rig, StepCode.TURN_LEFT, StepCode.LOOK_UP)
        posed.poses.append((0.0, 0.0))
        start = rig.client.frame(session_id, image=_upload(cv2.imread(str(PERSON_A)), rng)).body
        assert start["verdict"] == "ACCEPTED" and start["stepCode"] == "LOOK_STRAIGHT", start
        answers: list[dict[str, Any]] = []
        for image, yaw, pitch in frames:
            rig.clock.advance(FRAME_SECONDS)
            posed.poses.append((yaw, pitch))
            reply = rig.client.frame(session_id, image=_upload(image, rng))
            if reply.status == 409:
                break
            answers.append(reply.body)
        audit = rig.client.get(session_id).body
    return answers, audit


pytestmark = [pytestmark, pytest.mark.usefixtures("fake_aws_env")]  # moto's fake credentials


def test_the_same_person_is_followed_beyond_the_comparison_range(analyzer: MeshAnalyzer) -> None:
    person = cv2.imread(str(PERSON_A))
    answers, _ = _run(analyzer, [(person, 14.0, 0.0), (person, 28.0, 0.0)])
    on_the_way, far = answers
    assert on_the_way["reasonCode"] == "POSE_NOT_MET" and on_the_way["similarity"] >= 90  # verified, a link
    assert far["verdict"] == "ACCEPTED" and far["stepCode"] == "TURN_LEFT", far
    assert far["link"] == {"frameId": on_the_way["frameId"], "hops": 1, "gapDegrees": 14.0}


def test_two_people_interleaved_at_human_pace_do_not_chain(analyzer: MeshAnalyzer) -> None:
    """A turns on the way (verified directly), B shows the far turn a third of a second later, again and again:
    B's frames are compared with A's verified frames, never pass, and the session fails for them."""
    a, b = cv2.imread(str(PERSON_A)), cv2.imread(str(PERSON_B))
    # A 16-19 degrees into the turn, B 28-31: 12 degrees and 0.3 s from A's last frame, within every link bound.
    count = 2 * int(Thresholds().max_not_comparable) + 2  # enough of B's frames to reach MAX_NOT_COMPARABLE
    frames = [(a, 16.0 + index % 4, 0.0) if index % 2 == 0 else (b, 28.0 + index % 4, 0.0) for index in range(count)]
    answers, _ = _run(analyzer, frames)
    shown_b = [answer for index, answer in enumerate(answers) if index % 2 == 1]
    assert shown_b and all(answer["verdict"] == "REJECTED" for answer in shown_b), answers
    assert {answer["reasonCode"] for answer in shown_b} == {"FACE_NOT_COMPARABLE"}
    assert answers[-1]["status"] == "FAILED" and answers[-1]["failureReason"] == "SAME_PERSON_UNVERIFIED"
    assert all(answer["similarity"] >= 90 for index, answer in enumerate(answers) if index % 2 == 0)


def test_a_morph_from_one_person_to_another_fails(analyzer: MeshAnalyzer) -> None:
    """13 frames from A to B while the head turns 2 degrees a frame: the frames on the way are compared with the
    reference directly, so the morph fails there (FACE_MISMATCH) long before B."""
    morph = _morph(analyzer, 13)
    answers, _ = _run(analyzer, [(image, 12.0 + 2 * index, 0.0) for index, image in enumerate(morph)])
    assert answers[-1]["status"] == "FAILED" and answers[-1]["failureReason"] == "FACE_MISMATCH", answers
    assert all(answer["stepCode"] == "TURN_LEFT" and answer["verdict"] == "REJECTED" for answer in answers)
    assert len(answers) <= 6  # a third of B at most (share 4/12 scored 71 against A)


def test_a_morph_cannot_creep_along_a_long_chain(analyzer: MeshAnalyzer) -> None:
    """With a narrow comparison range and a far turn (so the chain runs through many frames on the way), each
    morph frame matches the one before it (100), but a chain is at most MAX_LINK_HOPS long: past it the frame is
    compared with the reference again, and B is never accepted."""
    thresholds = replace(Thresholds(), compare_max_angle=14.0, turn_yaw=40.0, link_max_angle=6.0)
    morph = _morph(analyzer, 13)
    answers, _ = _run(analyzer, [(image, 10.0 + 2.5 * index, 0.0) for index, image in enumerate(morph)], thresholds)
    accepted = [index for index, answer in enumerate(answers) if answer["verdict"] == "ACCEPTED"]
    assert not accepted, answers
    hops = [answer["link"]["hops"] for answer in answers if answer["link"]]
    assert hops and max(hops) == thresholds.max_link_hops, answers  # the chain grew, up to its bound
    assert answers[-1]["status"] == "FAILED" or answers[-1]["reasonCode"] != "POSE_NOT_MET", answers


def _clip_run(analyzer: MeshAnalyzer, shown: list[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The webcam clip's straight frame as the neutral start, then the clip's frames ``shown`` for LOOK_UP, with
    the poses the analyzer measures (nothing scripted), at the client's pace."""
    clip, rng = headturn.read_frames(), np.random.default_rng(11)
    with mock_aws():
        rig = aws_rig(analyzer=analyzer)
        session_id = seeded_session(rig, StepCode.LOOK_UP, StepCode.TURN_LEFT)
        start = rig.client.frame(session_id, image=_upload(clip[headturn.STRAIGHT[2]], rng)).body
        assert start["verdict"] == "ACCEPTED" and start["stepCode"] == "LOOK_STRAIGHT", start
        answers = []
        for index in shown:
            rig.clock.advance(FRAME_SECONDS)
            answers.append(rig.client.frame(session_id, image=_upload(clip[index], rng)).body)
        return answers, rig.client.get(session_id).body


@pytest.mark.skipif(not headturn.available(), reason=f"needs the developers' webcam clip {headturn.CLIP}")
def test_a_far_look_up_seen_first_is_confirmed_on_the_way_back(analyzer: MeshAnalyzer) -> None:
    """The clip's person looked up between two frames, straight to 33 degrees (nothing to link to yet): the frame
    on the way back (13 degrees up) is verified against the reference and matches the far one, so the step is done."""
    far_first, on_the_way_back = 35, 44
    answers, session = _clip_run(analyzer, [far_first, on_the_way_back])
    far, back = answers
    assert far["reasonCode"] == "FACE_NOT_COMPARABLE" and far["currentStep"] == 1, far
    assert back["verdict"] == "ACCEPTED" and back["stepCode"] == "LOOK_UP" and back["currentStep"] == 2, back
    look_up = session["steps"][1]
    assert look_up["status"] == "PASSED" and look_up["frameId"] == far["frameId"], look_up  # the far frame did it


def test_another_person_far_is_not_confirmed_by_the_real_person_coming_back(analyzer: MeshAnalyzer) -> None:
    """B shows the far turn, then A (the reference's person) comes back through 12 degrees: A is verified, but
    B's far frame does not match A, so the turn is not done."""
    a, b = cv2.imread(str(PERSON_A)), cv2.imread(str(PERSON_B))
    answers, session = _run(analyzer, [(b, 30.0, 0.0), (a, 12.0, 0.0)])
    far, back = answers
    assert far["reasonCode"] == "FACE_NOT_COMPARABLE", far
    assert back["verdict"] == "REJECTED" and back["reasonCode"] == "POSE_NOT_MET" and back["similarity"] >= 90, back
    assert back["currentStep"] == 1 and session["steps"][1]["status"] != "PASSED", session["steps"][1]
