"""A stand-in for Amazon Rekognition on real images: a fake boto3 ``rekognition`` client for the tests and
benchmarks of the Rekognition path (the real service cannot be called here).

``detect_faces`` answers in DetectFaces' response shape, computed from the image by the embedded analyzer, with a
measured disagreement: each pose angle is the embedded one minus its bias against the AFLW labels in
../shared/faces/dev, plus noise of the spread measured there (``MEASURED``; ``make bench-analyzer`` prints both).
The noise is drawn from the image's bytes and a seed, so a run is reproducible whatever the order of the calls.
``compare_faces`` answers from the embedded face embedding, made pose-robust as Rekognition's CompareFaces is
assumed to be. Every call is counted per operation (the cost). docs/analyzers.md, "The stand-in for
Rekognition", has the numbers and the assumptions.
"""

from __future__ import annotations

import collections
import hashlib
import math
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from botocore.exceptions import ClientError
from liveness.analyzers import face_embedding
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.faces import FaceDetail, Frame


@dataclass(frozen=True)
class Disagreement:
    """Rekognition's pose minus the embedded analyzer's, per axis: ``-bias`` plus noise of ``spread`` (degrees)."""

    yaw_bias: float
    yaw_spread: float
    pitch_bias: float
    pitch_spread: float
    roll_bias: float
    roll_spread: float


# The embedded analyzer minus the AFLW labels (Rekognition's convention) on the 40 posed faces of ../shared/faces/dev,
# measured with testkit.labelled_faces.pose_errors; tests/runtime/test_rekognition_standin.py measures it again.
MEASURED = Disagreement(
    yaw_bias=-0.3, yaw_spread=1.9, pitch_bias=-2.4, pitch_spread=3.4, roll_bias=-0.1, roll_spread=1.8
)

# CompareFaces across poses. The embedded embedding drifts with pose (the clip's own person: descriptor distance
# 0.14-0.19 looking straight, up to 0.58 turned 40 degrees, 0.82 looking 42 degrees up, where another person
# looking straight is 0.63); Rekognition's CompareFaces is assumed to keep the same person above 99 at these poses.
# So the distance is forgiven this much per degree of pose difference between the two faces before it is mapped to
# a similarity with the embedded analyzer's own calibration (90 at its same-person distance).
FORGIVEN_DISTANCE_PER_DEGREE = 0.008
FORGIVEN_DISTANCE_MAX = 0.36  # reached at 45 degrees
DESCRIBED_CACHE = 64  # frames remembered (a session frame is described, then compared)


class RekognitionStandIn:
    """Duck-types the boto3 client's ``detect_faces`` and ``compare_faces``; ``calls`` counts each operation."""

    def __init__(
        self, analyzer: MeshAnalyzer | None = None, disagreement: Disagreement = MEASURED, seed: int = 0
    ) -> None:
        self.analyzer = analyzer or MeshAnalyzer()
        self.disagreement = disagreement
        self.seed = seed
        self.calls: collections.Counter[str] = collections.Counter()
        self.seen: set[bytes] = set()  # the SHA-256 of every image sent to it: which frames reached "Rekognition"
        self._lock = threading.Lock()
        self._described: collections.OrderedDict[bytes, list[FaceDetail]] = collections.OrderedDict()

    @property
    def image_calls(self) -> int:
        """What Rekognition bills: one image per DetectFaces and one per CompareFaces call."""
        with self._lock:
            return self.calls["detect_faces"] + self.calls["compare_faces"]

    def detect_faces(self, *, Image: dict[str, bytes], Attributes: list[str] | None = None) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        self._count("detect_faces")
        faces = self._faces(Image["Bytes"], "detect_faces")
        return {"FaceDetails": [self._answer(face, Image["Bytes"], index) for index, face in enumerate(faces)]}

    def compare_faces(
        self,
        *,
        SourceImage: dict[str, bytes],  # noqa: N803
        TargetImage: dict[str, bytes],  # noqa: N803
        SimilarityThreshold: float = 80.0,  # noqa: N803
    ) -> dict[str, Any]:
        self._count("compare_faces")
        source, target = SourceImage["Bytes"], TargetImage["Bytes"]
        source_faces, target_faces = self._faces(source, "compare_faces"), self._faces(target, "compare_faces")
        if not source_faces:  # as Rekognition: no face in the source image is an error
            raise _client_error("InvalidParameterException", "There are no faces in the source image.", "compare_faces")
        answer: dict[str, Any] = {
            "SourceImageFace": {
                "BoundingBox": source_faces[0].bounding_box.to_rekognition(),
                "Confidence": source_faces[0].confidence,
            },
            "FaceMatches": [],
            "UnmatchedFaces": [],
        }
        if not target_faces:
            return answer
        similarity = self._similarity(source, target, source_faces[0], target_faces[0])
        compared = [compared_face(self._answer(face, target, index)) for index, face in enumerate(target_faces)]
        if similarity >= SimilarityThreshold:
            answer["FaceMatches"].append({"Similarity": similarity, "Face": compared[0]})
        else:
            answer["UnmatchedFaces"].append(compared[0])
        # Only the largest face of the target is compared here (a session frame has one face by then).
        answer["UnmatchedFaces"] += compared[1:]
        return answer

    # -- the embedded measurement, shaped as Rekognition answers --------------------------------------------------

    def _count(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1

    def _faces(self, encoded: bytes, operation: str) -> list[FaceDetail]:
        key = hashlib.sha256(encoded).digest()
        with self._lock:
            self.seen.add(key)
            if key in self._described:
                self._described.move_to_end(key)
                return self._described[key]
        faces = self.analyzer.detect_faces(_frame(encoded, operation))
        with self._lock:
            self._described[key] = faces
            while len(self._described) > DESCRIBED_CACHE:
                self._described.popitem(last=False)
        return faces

    def _answer(self, face: FaceDetail, encoded: bytes, index: int) -> dict[str, Any]:
        shaped = face.to_rekognition()
        assert face.pose is not None  # the embedded analyzer always measures a pose
        d = self.disagreement
        noise = self._noise(encoded, index)
        shaped["Pose"] = {
            "Roll": round(face.pose.roll - d.roll_bias + d.roll_spread * noise[0], 3),
            "Yaw": round(face.pose.yaw - d.yaw_bias + d.yaw_spread * noise[1], 3),
            "Pitch": round(face.pose.pitch - d.pitch_bias + d.pitch_spread * noise[2], 3),
        }
        # What the embedded analyzer does not measure, as Rekognition answers for an ordinary uncovered face.
        shaped["Sunglasses"] = {"Value": False, "Confidence": 99.0}
        shaped["Eyeglasses"] = {"Value": False, "Confidence": 99.0}
        shaped["FaceOccluded"] = {"Value": False, "Confidence": 99.0}
        shaped["EyeDirection"] = {"Yaw": 0.0, "Pitch": 0.0, "Confidence": 99.0}
        return shaped

    def _noise(self, encoded: bytes, index: int) -> np.ndarray:
        """Three standard normal draws, fixed by the image, the face and the seed (not by the order of calls)."""
        digest = hashlib.sha256(encoded + index.to_bytes(4, "big") + self.seed.to_bytes(8, "big", signed=True))
        return np.random.default_rng(int.from_bytes(digest.digest()[:8], "big")).standard_normal(3)

    def _similarity(self, source: bytes, target: bytes, source_face: FaceDetail, target_face: FaceDetail) -> float:
        compared = self.analyzer.compare_faces(_frame(source, "compare_faces"), _frame(target, "compare_faces"))
        if compared.similarity is None:
            raise RuntimeError(
                "the stand-in's CompareFaces needs the embedded same-person model (requirements-embedding)"
            )
        return rekognition_similarity(compared.similarity, pose_difference(source_face, target_face))


# CompareFaces describes each face more briefly than DetectFaces (its ComparedFace type): five landmarks.
_COMPARED_FACE = ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality", "Emotions", "Smile")
_COMPARED_LANDMARKS = ("eyeLeft", "eyeRight", "mouthLeft", "mouthRight", "nose")


def compared_face(detail: dict[str, Any]) -> dict[str, Any]:
    """A DetectFaces face as CompareFaces describes it (the same pose, with the same disagreement)."""
    shaped = {key: value for key, value in detail.items() if key in _COMPARED_FACE}
    shaped["Landmarks"] = [point for point in detail.get("Landmarks", []) if point["Type"] in _COMPARED_LANDMARKS]
    return shaped


def pose_difference(first: FaceDetail, second: FaceDetail) -> float:
    """Degrees between two faces' yaw and pitch (roll is undone by the embedding's alignment)."""
    if first.pose is None or second.pose is None:
        return 0.0
    return math.hypot(first.pose.yaw - second.pose.yaw, first.pose.pitch - second.pose.pitch)


def rekognition_similarity(embedded_similarity: float, pose_degrees: float) -> float:
    """The embedded similarity made pose-robust: back to a descriptor distance, forgiven the pose's share of it."""
    distance = embedded_distance(embedded_similarity)
    forgiven = min(FORGIVEN_DISTANCE_MAX, FORGIVEN_DISTANCE_PER_DEGREE * pose_degrees)
    return round(face_embedding.similarity_from_distance(max(0.0, distance - forgiven)), 3)


def embedded_distance(similarity: float) -> float:
    """The descriptor distance a similarity of ``face_embedding.similarity_from_distance`` came from."""
    clipped = min(max(similarity, 1e-3), 100.0 - 1e-3)  # the similarity is rounded to 3 decimals
    odds = math.log(face_embedding.SAME_PERSON_SIMILARITY / (100.0 - face_embedding.SAME_PERSON_SIMILARITY))
    return face_embedding.SAME_PERSON_DISTANCE + face_embedding.SIMILARITY_SCALE * (
        math.log(100.0 / clipped - 1.0) + odds
    )


def _frame(encoded: bytes, operation: str) -> Frame:
    bgr = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise _client_error("InvalidImageFormatException", "Request has invalid image format", operation)
    content_type = "image/png" if encoded.startswith(b"\x89PNG") else "image/jpeg"
    return Frame(bgr=bgr, encoded=encoded, content_type=content_type)


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)
