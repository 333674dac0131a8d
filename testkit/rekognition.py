"""Amazon Rekognition's answers as its API returns them: one DetectFaces face, and the response around it."""

from __future__ import annotations

import copy
from typing import Any

# One face as DetectFaces (Attributes=["ALL"]) returns it, including the fields newer responses carry.
FACE_DETAIL: dict[str, Any] = {
    "BoundingBox": {"Width": 0.30, "Height": 0.45, "Left": 0.35, "Top": 0.20},
    "AgeRange": {"Low": 26, "High": 43},
    "Smile": {"Value": False, "Confidence": 99.1},
    "Eyeglasses": {"Value": False, "Confidence": 99.4},
    "Sunglasses": {"Value": False, "Confidence": 99.6},
    "Gender": {"Value": "Female", "Confidence": 99.7},
    "Beard": {"Value": False, "Confidence": 97.4},
    "Mustache": {"Value": False, "Confidence": 99.2},
    "EyesOpen": {"Value": True, "Confidence": 99.9},
    "MouthOpen": {"Value": False, "Confidence": 99.8},
    "Emotions": [{"Type": "CALM", "Confidence": 99.4}, {"Type": "HAPPY", "Confidence": 0.3}],
    "Landmarks": [
        {"Type": "eyeLeft", "X": 0.45, "Y": 0.38},
        {"Type": "eyeRight", "X": 0.55, "Y": 0.38},
        {"Type": "nose", "X": 0.50, "Y": 0.47},
        {"Type": "mouthLeft", "X": 0.46, "Y": 0.56},
        {"Type": "mouthRight", "X": 0.54, "Y": 0.56},
    ],
    "Pose": {"Roll": -1.5, "Yaw": -10.9, "Pitch": -4.9},
    "Quality": {"Brightness": 73.8, "Sharpness": 86.8},
    "Confidence": 99.99,
    "FaceOccluded": {"Value": False, "Confidence": 99.0},
    "EyeDirection": {"Yaw": 2.1, "Pitch": -3.0, "Confidence": 99.0},
}


def face_detail(**overrides: Any) -> dict[str, Any]:
    detail = copy.deepcopy(FACE_DETAIL)
    detail.update(overrides)
    return detail


def detect_faces_response(*faces: dict[str, Any]) -> dict[str, Any]:
    return {"FaceDetails": list(faces), "OrientationCorrection": "ROTATE_0"}
