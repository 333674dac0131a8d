"""Rekognition-shaped faces (FaceDetail) for scripted analyzers: any pose or expression, or one performing a step."""

from __future__ import annotations

from liveness.challenges import StepCode
from liveness.faces import FaceDetail


def face(
    *,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    smile: bool = False,
    mouth_open: bool = False,
    eyes_open: bool = True,
    attribute_confidence: float = 95.0,
    confidence: float = 99.9,
    width: float = 0.35,
    brightness: float = 80.0,
    sharpness: float = 60.0,
    occluded: tuple[bool, float] = (False, 99.0),
    sunglasses: tuple[bool, float] = (False, 99.0),
) -> FaceDetail:
    """A Rekognition-shaped face (parsed from the raw dict, as the real analyzer does)."""
    raw = {
        "BoundingBox": {"Width": width, "Height": width * 1.3, "Left": 0.5 - width / 2, "Top": 0.2},
        "Confidence": confidence,
        "Pose": {"Yaw": yaw, "Pitch": pitch, "Roll": roll},
        "Quality": {"Brightness": brightness, "Sharpness": sharpness},
        "Smile": {"Value": smile, "Confidence": attribute_confidence},
        "MouthOpen": {"Value": mouth_open, "Confidence": attribute_confidence},
        "EyesOpen": {"Value": eyes_open, "Confidence": attribute_confidence},
        "FaceOccluded": {"Value": occluded[0], "Confidence": occluded[1]},
        "Sunglasses": {"Value": sunglasses[0], "Confidence": sunglasses[1]},
    }
    return FaceDetail.from_rekognition(raw)


def face_for(step: StepCode | str, *, mirrored: bool = False) -> FaceDetail:
    """A face performing ``step`` as Rekognition would measure it in the frame as sent."""
    step = StepCode(step)
    sign = -1.0 if mirrored else 1.0  # raw yaw of a mirrored frame is the opposite of the user's turn
    return {
        StepCode.LOOK_STRAIGHT: lambda: face(),
        StepCode.TURN_LEFT: lambda: face(yaw=sign * 35.0),
        StepCode.TURN_RIGHT: lambda: face(yaw=sign * -35.0),
        StepCode.LOOK_UP: lambda: face(pitch=22.0),
        StepCode.LOOK_DOWN: lambda: face(pitch=-22.0),
        StepCode.SMILE: lambda: face(smile=True),
        StepCode.OPEN_MOUTH: lambda: face(mouth_open=True),
        StepCode.CLOSE_EYES: lambda: face(eyes_open=False),
    }[step]()
