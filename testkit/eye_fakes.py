"""Crude synthesised closed eyes on an open-eyed photo, as an attacker with an image editor would make them.

Each fake works on the eyes the analyzer itself located (its Rekognition-named eye landmarks), so the edit sits
exactly where the analyzer looks:

- ``squash``: the eye region is squeezed vertically, rows of the opening removed and the lids brought together;
- ``paint``: the eyelid skin just above the eye is copied down over the opening, with a feathered edge;
- ``inpaint``: the opening is filled by OpenCV's inpainting ("content-aware fill") and a lash line drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from liveness.faces import FaceDetail

EYES = (("leftEyeLeft", "leftEyeRight", "leftEyeUp", "leftEyeDown"),)
EYES += (("rightEyeLeft", "rightEyeRight", "rightEyeUp", "rightEyeDown"),)


@dataclass(frozen=True)
class Eye:
    """One eye in pixels: its two corners and the middle of the upper and lower lids."""

    first: np.ndarray
    second: np.ndarray
    up: np.ndarray
    down: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return (self.first + self.second) / 2.0

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.second - self.first))

    @property
    def opening(self) -> float:
        return max(float(self.down[1] - self.up[1]), 1.0)


def eyes_of(face: FaceDetail, width: int, height: int) -> list[Eye]:
    points = {mark.type: np.array([mark.x * width, mark.y * height]) for mark in face.landmarks}
    return [Eye(*(points[name] for name in names)) for names in EYES]


def opening_mask(shape: tuple[int, ...], eye: Eye, grow: float = 1.3) -> np.ndarray:
    """A float mask (0-1) of the eye's opening, an ellipse grown by ``grow`` and feathered."""
    mask = np.zeros(shape[:2], dtype=np.float32)
    centre = (float(eye.centre[0]), float((eye.up[1] + eye.down[1]) / 2.0))
    axes = (eye.width / 2.0 * 1.1, eye.opening / 2.0 * grow)
    angle = float(np.degrees(np.arctan2(*(eye.second - eye.first)[::-1])))
    cv2.ellipse(mask, (centre, (2 * axes[0], 2 * axes[1]), angle), 1.0, -1)
    feather = max(1, int(round(eye.width * 0.08))) * 2 + 1
    return cv2.GaussianBlur(mask, (feather, feather), 0)


def squash(bgr: np.ndarray, eye: Eye) -> np.ndarray:
    """Rows of the region around the eye remapped so the opening's rows vanish and the lids meet."""
    reach = eye.width * 0.7  # rows this far above and below the lid line are stretched to fill the gap
    middle = float((eye.up[1] + eye.down[1]) / 2.0)
    half_gap = eye.opening / 2.0 * 1.2
    ys, xs = np.mgrid[0 : bgr.shape[0], 0 : bgr.shape[1]].astype(np.float32)
    offset = ys - middle
    inside = np.abs(offset) < reach
    scale = (reach - half_gap) / reach
    source = np.where(inside, middle + np.sign(offset) * (half_gap + np.abs(offset) * scale), ys)
    warped = cv2.remap(bgr, xs, source.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    region = np.zeros(bgr.shape[:2], dtype=np.float32)
    x0, x1 = eye.centre[0] - eye.width * 0.9, eye.centre[0] + eye.width * 0.9
    y0, y1 = middle - reach, middle + reach
    cv2.rectangle(region, (int(x0), int(y0)), (int(x1), int(y1)), 1.0, -1)
    feather = max(1, int(round(eye.width * 0.15))) * 2 + 1
    return blend(bgr, warped, cv2.GaussianBlur(region, (feather, feather), 0))


def paint(bgr: np.ndarray, eye: Eye) -> np.ndarray:
    """The skin above the upper lid copied down over the opening."""
    shift = eye.opening * 1.3
    moved = cv2.warpAffine(
        bgr, np.float32([[1, 0, 0], [0, 1, shift]]), (bgr.shape[1], bgr.shape[0]), borderMode=cv2.BORDER_REPLICATE
    )
    return blend(bgr, moved, opening_mask(bgr.shape, eye))


def inpaint(bgr: np.ndarray, eye: Eye) -> np.ndarray:
    """The opening filled from its surroundings, then a dark lash line drawn where the lids would meet."""
    mask = (opening_mask(bgr.shape, eye) > 0.2).astype(np.uint8)
    filled = cv2.inpaint(bgr, mask, max(2.0, eye.opening), cv2.INPAINT_TELEA)
    lash_y = float(eye.up[1] + eye.down[1]) / 2.0 + eye.opening * 0.2
    points = np.array([eye.first, [eye.centre[0], lash_y + eye.opening * 0.15], eye.second], dtype=np.float64)
    curve = np.round(points).astype(np.int32).reshape(-1, 1, 2)
    thickness = max(1, int(round(eye.width * 0.05)))
    lashes = filled.copy()
    cv2.polylines(lashes, [curve], False, (40, 40, 40), thickness, cv2.LINE_AA)
    return cv2.addWeighted(filled, 0.4, lashes, 0.6, 0.0)


def blend(base: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    weight = alpha[..., None]
    return np.clip(base * (1.0 - weight) + over * weight, 0, 255).astype(np.uint8)


FAKES: dict[str, Callable[[np.ndarray, Eye], np.ndarray]] = {"squash": squash, "paint": paint, "inpaint": inpaint}


def close_eyes(bgr: np.ndarray, face: FaceDetail, method: str) -> np.ndarray:
    """``bgr`` with both of ``face``'s eyes closed by ``method`` (a key of ``FAKES``)."""
    height, width = bgr.shape[:2]
    faked = bgr
    for eye in eyes_of(face, width, height):
        faked = FAKES[method](faked, eye)
    return faked
