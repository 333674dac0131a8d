"""The animated-photo attacker (issue 19): one frontal photo, its 468 mesh landmarks, the mesh turned to a
requested yaw and pitch, and the photo warped over the mesh triangles; then sensor noise and JPEG.

Around the mesh, a ring (hair, ears: behind the face's edge) turns with the head, and an outer ring and the
photo's corners stay put, so the whole head turns and the background stays where it was.

Signs as Rekognition's (``liveness.faces``): yaw > 0 turns the nose toward the image's right, pitch > 0 is
chin up. The mesh's z is negative toward the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.analyzers.mesh_geometry import NUM_LANDMARKS
from scipy.spatial import ConvexHull, Delaunay

from .light_physics import mesh_points

# The mesh model's z is flatter than a head; deepening it makes the turned face read its requested yaw.
DEPTH_SCALE = 2.0
HEAD_RING = 1.35  # x the face's outline from its centre: the head's edge
HEAD_RING_DEPTH = 0.5  # x the face's width behind the outline (before DEPTH_SCALE)
ANCHOR_RING = 2.2  # beyond this the photo does not move


@lru_cache(maxsize=1)
def shared_analyzer() -> MeshAnalyzer:
    return MeshAnalyzer()


@dataclass(frozen=True)
class PuppetMesh:
    points: np.ndarray  # the face mesh and the head ring: these turn
    anchors: np.ndarray  # the outer ring and the corners: these stay
    triangles: np.ndarray  # over points then anchors


@lru_cache(maxsize=8)
def _photo_mesh(photo_bytes: bytes, shape: tuple[int, ...]) -> PuppetMesh:
    photo = np.frombuffer(photo_bytes, np.uint8).reshape(shape)
    face = mesh_points(shared_analyzer(), photo)
    if face is None:
        raise ValueError("no face in the puppet's photo")
    outline = face[ConvexHull(face[:, :2]).vertices]
    centre = face.mean(axis=0)
    depth = float(outline[:, 2].mean()) + HEAD_RING_DEPTH * float(np.ptp(face[:, 0]))
    head = np.column_stack([centre[:2] + (outline[:, :2] - centre[:2]) * HEAD_RING, np.full(len(outline), depth)])
    anchors_xy = centre[:2] + (outline[:, :2] - centre[:2]) * ANCHOR_RING
    height, width = shape[:2]
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], np.float64)
    far = float(face[:, 2].max()) + 10.0 * float(np.ptp(face[:, 0]))  # drawn first, under everything
    anchors = np.column_stack([np.vstack([anchors_xy, corners]), np.full(len(anchors_xy) + 4, far)])
    points = np.vstack([face, head])
    return PuppetMesh(points, anchors, Delaunay(np.vstack([points, anchors])[:, :2]).simplices)


def turned(points: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """The mesh rotated about its centre: yaw about the vertical axis, then pitch about the horizontal one."""
    centre = points[:NUM_LANDMARKS].mean(axis=0)  # the face's centre, not the ring's
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
    mesh = _photo_mesh(photo.tobytes(), photo.shape)
    source = np.vstack([mesh.points, mesh.anchors])
    target = np.vstack([turned(mesh.points, yaw, pitch), mesh.anchors])
    frame = warp_over_mesh(photo, source, target, mesh.triangles)
    noisy = np.clip(frame.astype(np.float32) + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 93))])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
