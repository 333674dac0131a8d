"""Typed face descriptions in Amazon Rekognition's shape and sign convention, and the Analyzer protocol.

Every analyzer (Rekognition in AWS, the embedded mesh analyzer locally or in private mode) returns
these models, so the rules, the routes and the archive never see a raw dict.

Sign convention (Rekognition ``DetectFaces``), for an unmirrored frame:
- ``Yaw > 0``: the nose points toward the image's right, i.e. the subject turned to their own left.
- ``Pitch > 0``: chin up.
- ``Roll > 0``: clockwise in the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class BoundingBox:
    """Ratios of the image size. Rekognition may return values below 0 or above 1 at the image edge."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any]) -> BoundingBox:
        return cls(
            left=float(raw.get("Left", 0.0)),
            top=float(raw.get("Top", 0.0)),
            width=float(raw.get("Width", 0.0)),
            height=float(raw.get("Height", 0.0)),
        )

    def to_rekognition(self) -> dict[str, float]:
        return {"Width": self.width, "Height": self.height, "Left": self.left, "Top": self.top}


@dataclass(frozen=True)
class BoolAttribute:
    """A yes/no attribute such as ``Smile`` or ``EyesOpen``; confidence is 0-100 in the reported value."""

    value: bool
    confidence: float

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any] | None) -> BoolAttribute | None:
        if raw is None:
            return None
        return cls(value=bool(raw.get("Value", False)), confidence=float(raw.get("Confidence", 0.0)))

    def to_rekognition(self) -> dict[str, Any]:
        return {"Value": self.value, "Confidence": self.confidence}

    def confidence_that(self, expected: bool) -> float:
        """Confidence (0-100) that the attribute equals ``expected``."""
        return self.confidence if self.value == expected else 100.0 - self.confidence


@dataclass(frozen=True)
class Gender:
    value: str
    confidence: float

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any] | None) -> Gender | None:
        if raw is None:
            return None
        return cls(value=str(raw.get("Value", "")), confidence=float(raw.get("Confidence", 0.0)))

    def to_rekognition(self) -> dict[str, Any]:
        return {"Value": self.value, "Confidence": self.confidence}


@dataclass(frozen=True)
class AgeRange:
    low: int
    high: int

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any] | None) -> AgeRange | None:
        if raw is None:
            return None
        return cls(low=int(raw.get("Low", 0)), high=int(raw.get("High", 0)))

    def to_rekognition(self) -> dict[str, int]:
        return {"Low": self.low, "High": self.high}


@dataclass(frozen=True)
class Pose:
    """Degrees, Rekognition's signs (see the module docstring)."""

    roll: float
    yaw: float
    pitch: float

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any] | None) -> Pose | None:
        if raw is None:
            return None
        return cls(
            roll=float(raw.get("Roll", 0.0)),
            yaw=float(raw.get("Yaw", 0.0)),
            pitch=float(raw.get("Pitch", 0.0)),
        )

    def to_rekognition(self) -> dict[str, float]:
        return {"Roll": self.roll, "Yaw": self.yaw, "Pitch": self.pitch}


@dataclass(frozen=True)
class Quality:
    """Brightness and Sharpness on Rekognition's 0-100 scale."""

    brightness: float
    sharpness: float

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any] | None) -> Quality | None:
        if raw is None:
            return None
        return cls(brightness=float(raw.get("Brightness", 0.0)), sharpness=float(raw.get("Sharpness", 0.0)))

    def to_rekognition(self) -> dict[str, float]:
        return {"Brightness": self.brightness, "Sharpness": self.sharpness}


@dataclass(frozen=True)
class Landmark:
    """A named facial point (``eyeLeft``, ``nose``, ``mouthRight``, ...) as ratios of the image size."""

    type: str
    x: float
    y: float

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any]) -> Landmark:
        return cls(type=str(raw.get("Type", "")), x=float(raw.get("X", 0.0)), y=float(raw.get("Y", 0.0)))

    def to_rekognition(self) -> dict[str, Any]:
        return {"Type": self.type, "X": self.x, "Y": self.y}


@dataclass(frozen=True)
class FaceDetail:
    """One face as ``DetectFaces`` with ``Attributes=["ALL"]`` describes it (the subset we use)."""

    bounding_box: BoundingBox
    confidence: float
    pose: Pose | None = None
    quality: Quality | None = None
    smile: BoolAttribute | None = None
    eyes_open: BoolAttribute | None = None
    mouth_open: BoolAttribute | None = None
    sunglasses: BoolAttribute | None = None
    eyeglasses: BoolAttribute | None = None
    face_occluded: BoolAttribute | None = None
    gender: Gender | None = None
    age_range: AgeRange | None = None
    landmarks: tuple[Landmark, ...] = field(default_factory=tuple)

    @classmethod
    def from_rekognition(cls, raw: dict[str, Any]) -> FaceDetail:
        return cls(
            bounding_box=BoundingBox.from_rekognition(raw.get("BoundingBox", {})),
            confidence=float(raw.get("Confidence", 0.0)),
            pose=Pose.from_rekognition(raw.get("Pose")),
            quality=Quality.from_rekognition(raw.get("Quality")),
            smile=BoolAttribute.from_rekognition(raw.get("Smile")),
            eyes_open=BoolAttribute.from_rekognition(raw.get("EyesOpen")),
            mouth_open=BoolAttribute.from_rekognition(raw.get("MouthOpen")),
            sunglasses=BoolAttribute.from_rekognition(raw.get("Sunglasses")),
            eyeglasses=BoolAttribute.from_rekognition(raw.get("Eyeglasses")),
            face_occluded=BoolAttribute.from_rekognition(raw.get("FaceOccluded")),
            gender=Gender.from_rekognition(raw.get("Gender")),
            age_range=AgeRange.from_rekognition(raw.get("AgeRange")),
            landmarks=tuple(Landmark.from_rekognition(item) for item in raw.get("Landmarks", [])),
        )

    def to_rekognition(self) -> dict[str, Any]:
        """The Rekognition-shaped dict (for the audit record and for stubs in tests)."""
        optional = {
            "Pose": self.pose,
            "Quality": self.quality,
            "Smile": self.smile,
            "EyesOpen": self.eyes_open,
            "MouthOpen": self.mouth_open,
            "Sunglasses": self.sunglasses,
            "Eyeglasses": self.eyeglasses,
            "FaceOccluded": self.face_occluded,
            "Gender": self.gender,
            "AgeRange": self.age_range,
        }
        shaped: dict[str, Any] = {"BoundingBox": self.bounding_box.to_rekognition(), "Confidence": self.confidence}
        shaped.update({key: value.to_rekognition() for key, value in optional.items() if value is not None})
        if self.landmarks:
            shaped["Landmarks"] = [landmark.to_rekognition() for landmark in self.landmarks]
        return shaped

    def landmark(self, landmark_type: str) -> Landmark | None:
        return next((item for item in self.landmarks if item.type == landmark_type), None)


@dataclass(frozen=True)
class Frame:
    """A validated camera frame: the decoded pixels plus the JPEG/PNG bytes an analyzer may send on."""

    bgr: np.ndarray  # H x W x 3, uint8
    encoded: bytes  # PNG or JPEG, at most Rekognition's 5 MB
    content_type: str  # "image/jpeg" or "image/png"

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])


@dataclass(frozen=True)
class FaceComparison:
    """The result of comparing two faces. ``similarity`` is None when the analyzer cannot compare."""

    similarity: float | None
    method: str

    @property
    def available(self) -> bool:
        return self.similarity is not None


@runtime_checkable
class Analyzer(Protocol):
    """What the routes and rules need from a face analyzer. Implementations: Rekognition, local mesh."""

    name: str
    # The comparison holds across head poses (Rekognition's CompareFaces): a low score at any pose means another
    # person, and no identity chain is needed. False: reliable only near the reference's pose (the embedded model).
    pose_robust_comparison: bool

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        """All faces in the frame, in Rekognition's shape and sign convention."""
        ...

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        """Similarity (0-100) of the largest face in each frame, or ``similarity=None`` if unavailable."""
        ...
