"""The animated-photo attacker (issue 19): one frontal photo, its 468 mesh landmarks, the mesh turned to a
requested yaw and pitch, and the photo warped over the mesh triangles; then sensor noise and JPEG.

Signs as Rekognition's (``liveness.faces``): yaw > 0 turns the nose toward the image's right, pitch > 0 is
chin up. The mesh's z is negative toward the camera.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
from liveness.analyzers.mesh import MeshAnalyzer
from scipy.spatial import Delaunay

from .light_physics import mesh_points

# The mesh model's z is flatter than a head; deepening it makes the turned face read its requested yaw.
DEPTH_SCALE = 2.0


@lru_cache(maxsize=1)
def shared_analyzer() -> MeshAnalyzer:
    return MeshAnalyzer()


@lru_cache(maxsize=8)
def _photo_mesh(photo_bytes: bytes, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    photo = np.frombuffer(photo_bytes, np.uint8).reshape(shape)
    points = mesh_points(shared_analyzer(), photo)
    if points is None:
        raise ValueError("no face in the puppet's photo")
    return points, Delaunay(points[:, :2]).simplices


def turned(points: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """The mesh rotated about its centre: yaw about the vertical axis, then pitch about the horizontal one."""
    centre = points.mean(axis=0)
    x, y, z = (points - centre).T * [[1.0], [1.0], [DEPTH_SCALE]]
    a, b = math.radians(yaw), math.radians(pitch)
    x, z = x * math.cos(a) - z * math.sin(a), x * math.sin(a) + z * math.cos(a)
    y, z = y * math.cos(b) + z * math.sin(b), -y * math.sin(b) + z * math.cos(b)
    return np.stack([x, y, z], axis=1) + centre


def warp_over_mesh(photo: np.ndarray, source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """The photo with each source triangle mapped affinely onto its target, farthest triangles drawn first."""
    out = photo.copy()
    height, width = photo.shape[:2]
    depth = target[triangles][:, :, 2].mean(axis=1)
    for simplex in triangles[np.argsort(-depth)]:
        src = source[simplex, :2].astype(np.float32)
        dst = target[simplex, :2].astype(np.float32)
        x, y, w, h = cv2.boundingRect(np.round(dst).astype(np.int32))
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w + 1, width), min(y + h + 1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        matrix = cv2.getAffineTransform(src, dst - np.float32([x0, y0]))
        patch = cv2.warpAffine(photo, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round(dst - [x0, y0]).astype(np.int32), 1)
        region = out[y0:y1, x0:x1]
        region[mask > 0] = patch[mask > 0]
    return out


def puppet_frame(photo_bgr: np.ndarray, yaw: float, pitch: float, rng: np.random.Generator) -> np.ndarray:
    """One frame of the photo's face turned to (yaw, pitch), with sensor noise and a JPEG round trip."""
    photo = np.ascontiguousarray(photo_bgr)
    points, triangles = _photo_mesh(photo.tobytes(), photo.shape)
    frame = warp_over_mesh(photo, points, turned(points, yaw, pitch), triangles)
    noisy = np.clip(frame.astype(np.float32) + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 93))])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
