"""The stand-in for Rekognition (testkit/rekognition_standin.py) on real images, through the REAL
RekognitionAnalyzer: what it answers, in which shape, how it disagrees with the embedded analyzer, and what it
counts. The clip and the labelled faces are in ../shared: those tests skip without it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.errors import ErrorCode, LivenessError
from liveness.faces import Frame

from testkit import headturn
from testkit.labelled_faces import analyse, frame_of, load_labels, pose_errors
from testkit.rekognition_standin import MEASURED, Disagreement, RekognitionStandIn

LABELLED = headturn.SHARED / "faces" / "dev"
needs_clip = pytest.mark.skipif(not headturn.available(), reason=f"needs the webcam clip {headturn.CLIP} (../shared)")
needs_labels = pytest.mark.skipif(
    not (LABELLED / "labels.json").is_file(), reason=f"needs the labelled faces {LABELLED} (../shared)"
)
NO_DISAGREEMENT = Disagreement(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def decoded(frame: Frame) -> Frame:
    return Frame(cv2.imdecode(np.frombuffer(frame.encoded, np.uint8), cv2.IMREAD_COLOR), frame.encoded, "image/jpeg")


@pytest.fixture(scope="module")
def stand_in(mesh_analyzer: MeshAnalyzer) -> RekognitionStandIn:
    return RekognitionStandIn(mesh_analyzer)


def test_detect_faces_answers_in_rekognitions_shape_from_the_image(stand_in, mesh_analyzer, astronaut) -> None:
    frame = frame_of(astronaut)
    before = stand_in.calls["detect_faces"]
    raw = stand_in.detect_faces(Image={"Bytes": frame.encoded}, Attributes=["ALL"])
    assert stand_in.calls["detect_faces"] == before + 1
    (face,) = raw["FaceDetails"]
    for key in ("BoundingBox", "Confidence", "Pose", "Quality", "Landmarks", "EyesOpen", "Smile", "MouthOpen"):
        assert key in face
    assert face["Sunglasses"]["Value"] is False and face["FaceOccluded"]["Value"] is False
    embedded = mesh_analyzer.detect_faces(decoded(frame))[0]  # what the stand-in sees: the bytes sent
    assert face["BoundingBox"] == embedded.bounding_box.to_rekognition()
    # The pose is the embedded one, moved by the bias and within a few spreads of noise.
    assert abs(face["Pose"]["Yaw"] - (embedded.pose.yaw - MEASURED.yaw_bias)) <= 4 * MEASURED.yaw_spread
    assert abs(face["Pose"]["Pitch"] - (embedded.pose.pitch - MEASURED.pitch_bias)) <= 4 * MEASURED.pitch_spread
    # Through the real analyzer: the same typed face the rules read.
    read = RekognitionAnalyzer(stand_in).detect_faces(frame)
    assert len(read) == 1 and read[0].pose.yaw == face["Pose"]["Yaw"]


def test_the_disagreement_is_reproducible_and_differs_per_image(mesh_analyzer, astronaut) -> None:
    frame = frame_of(astronaut)
    reencoded = cv2.imencode(".jpg", astronaut, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    first, again = RekognitionStandIn(mesh_analyzer, seed=1), RekognitionStandIn(mesh_analyzer, seed=1)

    def pose(client: RekognitionStandIn, image: bytes) -> dict:
        return client.detect_faces(Image={"Bytes": image}, Attributes=["ALL"])["FaceDetails"][0]["Pose"]

    assert pose(first, frame.encoded) == pose(again, frame.encoded)  # the same image, the same seed
    assert pose(first, frame.encoded) != pose(RekognitionStandIn(mesh_analyzer, seed=2), frame.encoded)
    assert pose(first, frame.encoded) != pose(first, reencoded)  # each upload gets its own noise
    exact = RekognitionStandIn(mesh_analyzer, disagreement=NO_DISAGREEMENT)
    embedded_yaw = mesh_analyzer.detect_faces(decoded(frame))[0].pose.yaw
    assert pose(exact, frame.encoded)["Yaw"] == pytest.approx(embedded_yaw, abs=1e-3)


def test_no_face_and_bad_bytes_answer_as_rekognition_does(stand_in) -> None:
    blank = frame_of(np.full((480, 640, 3), 128, np.uint8))
    assert stand_in.detect_faces(Image={"Bytes": blank.encoded}, Attributes=["ALL"]) == {"FaceDetails": []}
    garbage = Frame(bgr=np.zeros((8, 8, 3), np.uint8), encoded=b"not an image", content_type="image/jpeg")
    with pytest.raises(LivenessError) as refused:
        RekognitionAnalyzer(stand_in).detect_faces(garbage)
    assert refused.value.code is ErrorCode.INVALID_IMAGE


def test_compare_faces_counts_and_matches_the_same_photo(stand_in, astronaut) -> None:
    analyzer = RekognitionAnalyzer(stand_in)
    before = stand_in.calls["compare_faces"]
    same = analyzer.compare_faces(frame_of(astronaut), frame_of(cv2.GaussianBlur(astronaut, (3, 3), 0)))
    assert same.similarity >= 99.0 and same.method == "rekognition:CompareFaces"
    blank = frame_of(np.full((480, 640, 3), 128, np.uint8))
    assert analyzer.compare_faces(blank, frame_of(astronaut)).similarity == 0.0  # no face in the source: an error
    assert analyzer.compare_faces(frame_of(astronaut), blank).similarity == 0.0  # none in the target: no match
    # CompareFaces describes the target face as DetectFaces does (the same disagreement), more briefly.
    target = frame_of(cv2.GaussianBlur(astronaut, (5, 5), 0)).encoded
    raw = stand_in.compare_faces(SourceImage={"Bytes": frame_of(astronaut).encoded}, TargetImage={"Bytes": target})
    described = stand_in.detect_faces(Image={"Bytes": target}, Attributes=["ALL"])["FaceDetails"][0]
    (match,) = raw["FaceMatches"]
    assert match["Face"]["Pose"] == described["Pose"] and match["Face"]["Smile"] == described["Smile"]
    assert {point["Type"] for point in match["Face"]["Landmarks"]} == {
        "eyeLeft",
        "eyeRight",
        "mouthLeft",
        "mouthRight",
        "nose",
    }
    assert stand_in.calls["compare_faces"] == before + 4
    assert stand_in.image_calls == stand_in.calls["detect_faces"] + stand_in.calls["compare_faces"]


@needs_clip
def test_compare_faces_is_pose_robust_yet_tells_another_person(stand_in, mesh_analyzer, astronaut) -> None:
    """The clip's person looking straight against their own peaks: the embedded similarity falls below the
    session's 90 at the far poses, the stand-in (as Rekognition) keeps them; another person stays far below."""
    clip = [cv2.resize(frame, (640, 352)) for frame in headturn.read_frames()]
    straight = frame_of(clip[headturn.STRAIGHT[2]])
    analyzer = RekognitionAnalyzer(stand_in)
    peaks = [move.peak[len(move.peak) // 2] for move in headturn.MOVES.values()]
    embedded = [mesh_analyzer.compare_faces(straight, frame_of(clip[index])).similarity for index in peaks]
    assert min(embedded) < 90.0, "the far poses would pass without the stand-in's pose robustness"
    for index in peaks:
        for image in (clip[index], clip[index][:, ::-1]):  # plain and mirrored
            assert analyzer.compare_faces(straight, frame_of(np.ascontiguousarray(image))).similarity >= 95.0
    other = frame_of(cv2.resize(astronaut[0:282], (640, 352)))
    assert analyzer.compare_faces(other, straight).similarity < 90.0  # the session's default min_similarity


@needs_labels
def test_the_measured_disagreement_is_the_one_on_the_labelled_faces(mesh_analyzer) -> None:
    labels = load_labels(LABELLED)
    results = {item["file"]: analyse(mesh_analyzer, Path(LABELLED, item["file"]), timing=False) for item in labels}
    errors = pose_errors(labels, results)
    assert errors["Yaw"].faces >= 30
    measured = {
        "Yaw": (MEASURED.yaw_bias, MEASURED.yaw_spread),
        "Pitch": (MEASURED.pitch_bias, MEASURED.pitch_spread),
        "Roll": (MEASURED.roll_bias, MEASURED.roll_spread),
    }
    for axis, (bias, spread) in measured.items():
        assert errors[axis].bias == pytest.approx(bias, abs=0.15), axis
        assert errors[axis].spread == pytest.approx(spread, abs=0.15), axis
