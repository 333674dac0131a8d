"""The screen's light on a real frame: how much of it each pixel receives, and the lit frame in linear light.

Face: Lambert's cosine between each mesh triangle's normal (the analyzer's 468 landmarks, triangulated) and
the screen, which sits by the camera. Hair, ears and neck: a ring at the face's distance, mostly turned away.
Background: inverse-square falloff from the face's distance (~0.4 m) to the walls' (1-2.5 m; left and right of
the head may differ).
Ambient light (50-1000 lux) is what the photo already shows; the screen adds tens to ~150 lux on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from liveness.analyzers import mesh
from liveness.light.regions import LINEAR_LUT
from scipy.spatial import Delaunay

FACE_DISTANCE_M = 0.4
HEAD_RING_FACTOR = 0.45  # hair, ears, neck: at the face's distance, turned away from the screen
# How much each camera channel sees of each screen primary (rows: camera R, G, B; columns: screen R, G, B).
CHANNEL_CROSSTALK = np.array([[1.0, 0.08, 0.02], [0.08, 1.0, 0.08], [0.02, 0.1, 1.0]], np.float32)
SCREEN_BLACK = 0.01  # a dark screen still emits about 1% of white


def mesh_points(analyzer: mesh.MeshAnalyzer, bgr: np.ndarray) -> np.ndarray | None:
    """The largest face's 468 landmarks (pixels; z in the same scale, negative toward the camera)."""
    with analyzer._lock:  # the analyzer serialises its networks; testkit reaches in for the raw mesh
        models = analyzer._loaded()
        meshes = [
            found[0]
            for d in mesh.detect(models, bgr, mesh.SHORT_RANGE) or mesh.detect(models, bgr, mesh.FULL_RANGE)
            if (found := mesh.face_mesh(models, bgr, d)) is not None
        ]
    if not meshes:
        return None
    return max(meshes, key=lambda points: float(np.prod(np.ptp(points[:, :2], axis=0))))


def to_linear(bgr: np.ndarray) -> np.ndarray:
    return LINEAR_LUT[bgr]


def to_bgr8(linear: np.ndarray) -> np.ndarray:
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


def light_factor(shape: tuple[int, ...], points: np.ndarray, background_m: tuple[float, float]) -> np.ndarray:
    """Per pixel, the share of the screen's light at the face's distance it receives (0-1); ``background_m``:
    the distance of the background left and right of the head."""
    height, width = shape[:2]
    centre = points[:, :2].mean(axis=0)
    left, right = ((FACE_DISTANCE_M / distance) ** 2 for distance in background_m)
    factor = np.where(np.arange(width)[None, :] < centre[0], left, right).astype(np.float32)
    factor = np.ascontiguousarray(np.broadcast_to(factor, (height, width)))
    face_height = float(np.ptp(points[:, 1]))
    hull = cv2.convexHull(np.round(points[:, :2]).astype(np.int32))[:, 0, :].astype(np.float64)
    ring = np.round((hull - centre) * [1.35, 1.5] + centre - [0, 0.1 * face_height]).astype(np.int32)
    head = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(head, ring, 1)
    neck = int(float(np.ptp(points[:, 0])) * 0.6)
    cv2.rectangle(head, (int(centre[0]) - neck, int(points[:, 1].max())), (int(centre[0]) + neck, height), 1, -1)
    factor[head > 0] = HEAD_RING_FACTOR
    face = face_cosines(shape, points)
    inside = face > 0
    factor[inside] = cv2.GaussianBlur(face, (0, 0), 1.5)[inside]
    return factor


def face_cosines(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    """Each mesh triangle filled with |cos| between its normal and the camera axis (the screen's direction)."""
    out = np.zeros(shape[:2], np.float32)
    for simplex in Delaunay(points[:, :2]).simplices:
        corners = points[simplex]
        normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
        length = float(np.linalg.norm(normal))
        if length > 1e-9:
            cv2.fillConvexPoly(out, np.round(corners[:, :2]).astype(np.int32), float(abs(normal[2]) / length))
    return out


@dataclass(frozen=True)
class Scene:
    """A frame in linear light under ambient light alone, and where the screen's light lands on it."""

    linear: np.ndarray  # H x W x 3, BGR order
    factor: np.ndarray  # H x W

    @classmethod
    def of(cls, analyzer: mesh.MeshAnalyzer, bgr: np.ndarray, background_m: tuple[float, float]) -> Scene:
        points = mesh_points(analyzer, bgr)
        if points is None:
            raise ValueError("no face in the scene's frame")
        return cls(to_linear(bgr), light_factor(bgr.shape, points, background_m))

    def reduced(self, by: int) -> Scene:
        """A copy ``by`` times smaller on each side (for quantities that only need the frame's mean)."""
        size = (max(1, self.linear.shape[1] // by), max(1, self.linear.shape[0] // by))
        shrink = lambda image: cv2.resize(image, size, interpolation=cv2.INTER_AREA)  # noqa: E731
        return Scene(shrink(self.linear), shrink(self.factor))


def screen_light(rgb: tuple[float, float, float] | None) -> np.ndarray:
    """What the camera's B, G, R channels see of a screen colour (None: the page before the sequence, grey)."""
    colour = np.array(rgb if rgb is not None else (0.5, 0.5, 0.5), np.float32)
    seen = CHANNEL_CROSSTALK @ np.maximum(colour, SCREEN_BLACK)
    return seen[::-1]


def lit(scene: Scene, rgb: tuple[float, float, float] | None, screen_over_ambient: float) -> np.ndarray:
    """The scene with the screen showing ``rgb``, its white giving ``screen_over_ambient`` x the ambient light."""
    gain = 1.0 + screen_over_ambient * scene.factor[..., None] * screen_light(rgb)[None, None, :]
    return scene.linear * gain
