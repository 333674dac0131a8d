"""Test material made in the test: real encoded images, API Gateway events, Rekognition-shaped face details."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

import cv2
import numpy as np

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


def scene_bgr(width: int = 640, height: int = 480, seed: int = 7) -> np.ndarray:
    """A textured, non-uniform picture (gradients plus noise), so codecs do real work on it."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    base = np.concatenate(
        [
            np.broadcast_to(x, (height, width, 1)),
            np.broadcast_to(y, (height, width, 1)),
            np.broadcast_to((x + y) / 2, (height, width, 1)),
        ],
        axis=2,
    )
    noise = rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    image = np.clip(base + noise, 0, 255).astype(np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 4, (200, 180, 160), -1)
    return image


def encode(image: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(ext, image, params or [])
    assert ok
    return buffer.tobytes()


def jpeg_bytes(width: int = 640, height: int = 480, quality: int = 90) -> bytes:
    return encode(scene_bgr(width, height), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality])


def png_bytes(width: int = 640, height: int = 480) -> bytes:
    return encode(scene_bgr(width, height), ".png")


def rgba_png_bytes(width: int = 640, height: int = 480) -> bytes:
    """What a browser canvas's toDataURL('image/png') gives: 4 channels."""
    bgra = cv2.cvtColor(scene_bgr(width, height), cv2.COLOR_BGR2BGRA)
    return encode(bgra, ".png")


def grayscale_png_bytes(width: int = 640, height: int = 480) -> bytes:
    return encode(cv2.cvtColor(scene_bgr(width, height), cv2.COLOR_BGR2GRAY), ".png")


def data_url(raw: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    origin: str | None = None,
    sub: str | None = "user-1",
    path_parameters: dict[str, str] | None = None,
    resource: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as Lambda receives it behind a Cognito authorizer."""
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    claims = {"sub": sub} if sub else None
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": text,
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": f"req-{uuid.uuid4()}",
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "authorizer": {"claims": claims} if claims else None,
            "identity": {"sourceIp": "203.0.113.10"},
        },
    }


class LambdaContext:
    function_name = "liveness"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:liveness"
    aws_request_id = "lambda-request-id"
