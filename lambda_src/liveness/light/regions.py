"""Where the light is read: face regions from a Rekognition-shaped face (box + five landmarks, which both
analyzers give), and their mean colours in linear RGB."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..faces import FaceDetail

LANDMARKS = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
MIN_REGION_PX = 4  # a region narrower or shorter than this (cut by the frame's edge) is not read
# The outer cheeks, as fractions of the box's width: turned away from the screen, inside the face's edge.
SIDE_SPANS = ((0.02, 0.12), (0.88, 0.98))

# sRGB to linear light, per 8-bit code: the light adds up in linear units, not in gamma-encoded ones.
_CODES = np.arange(256, dtype=np.float64) / 255.0
LINEAR_LUT = np.where(_CODES <= 0.04045, _CODES / 12.92, ((_CODES + 0.055) / 1.055) ** 2.4).astype(np.float32)

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end excluded


@dataclass(frozen=True)
class FaceRegions:
    """Rectangles in one frame's pixels. The background is left and right of the head, a face width away."""

    centre: Rect  # nose and inner cheeks: faces the screen
    forehead: Rect
    sides: tuple[Rect, ...]  # the outer cheeks: turned away from the screen
    background: tuple[Rect, ...]  # zero, one or two (cut by the frame's edge)
    face: Rect  # the bounding box, for the stillness check


def face_regions(face: FaceDetail, width: int, height: int) -> FaceRegions | None:
    """The regions, or None when a landmark is missing or a face region falls off the frame."""
    points = {name: face.landmark(name) for name in LANDMARKS}
    if any(point is None for point in points.values()):
        return None
    at = {name: (point.x * width, point.y * height) for name, point in points.items() if point is not None}
    box = face.bounding_box
    x0, y0, bw, bh = box.left * width, box.top * height, box.width * width, box.height * height
    eye_y = (at["eyeLeft"][1] + at["eyeRight"][1]) / 2
    mouth_y = (at["mouthLeft"][1] + at["mouthRight"][1]) / 2
    eye_x0, eye_x1 = sorted((at["eyeLeft"][0], at["eyeRight"][0]))
    eyes = max(eye_x1 - eye_x0, 1.0)
    nose_x = at["nose"][0]

    def rect(xa: float, ya: float, xb: float, yb: float) -> Rect | None:
        r = (max(0, round(xa)), max(0, round(ya)), min(width, round(xb)), min(height, round(yb)))
        return r if r[2] - r[0] >= MIN_REGION_PX and r[3] - r[1] >= MIN_REGION_PX else None

    centre = rect(nose_x - 0.45 * eyes, eye_y + 0.15 * eyes, nose_x + 0.45 * eyes, mouth_y - 0.1 * eyes)
    forehead = rect(eye_x0, eye_y - 0.75 * eyes, eye_x1, eye_y - 0.35 * eyes)
    sides = [rect(x0 + a * bw, eye_y + 0.3 * eyes, x0 + b * bw, mouth_y) for a, b in SIDE_SPANS]
    upper = (y0 - 0.2 * bh, y0 + 0.5 * bh)
    background = [rect(x0 - 1.5 * bw, upper[0], x0 - 0.6 * bw, upper[1])]
    background.append(rect(x0 + 1.6 * bw, upper[0], x0 + 2.5 * bw, upper[1]))
    whole = rect(x0, y0, x0 + bw, y0 + bh)
    if centre is None or forehead is None or whole is None or None in sides:
        return None
    return FaceRegions(
        centre=centre,
        forehead=forehead,
        sides=tuple(side for side in sides if side is not None),
        background=tuple(item for item in background if item is not None),
        face=whole,
    )


def linear_rgb(bgr: np.ndarray) -> np.ndarray:
    """An 8-bit BGR frame as linear RGB floats."""
    return LINEAR_LUT[bgr[..., ::-1]]


def mean_rgb(linear: np.ndarray, rects: tuple[Rect, ...]) -> np.ndarray:
    """The pixel-weighted mean linear RGB over one or more rectangles."""
    total = np.zeros(3, np.float64)
    count = 0
    for x0, y0, x1, y1 in rects:
        patch = linear[y0:y1, x0:x1].reshape(-1, 3)
        total += patch.sum(axis=0, dtype=np.float64)
        count += patch.shape[0]
    return total / max(count, 1)


@dataclass(frozen=True)
class RegionMeans:
    centre: np.ndarray
    forehead: np.ndarray
    sides: np.ndarray
    background: np.ndarray  # both sides together
    backgrounds: tuple[np.ndarray, ...]  # each side alone: a print's edge may hide one of them


def region_means(bgr: np.ndarray, regions: FaceRegions) -> RegionMeans:
    linear = linear_rgb(bgr)
    return RegionMeans(
        centre=mean_rgb(linear, (regions.centre,)),
        forehead=mean_rgb(linear, (regions.forehead,)),
        sides=mean_rgb(linear, regions.sides),
        background=mean_rgb(linear, regions.background),
        backgrounds=tuple(mean_rgb(linear, (side,)) for side in regions.background),
    )
