"""Face boxes in pixels, face crops and JPEG encoding."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..faces import BoundingBox, FaceDetail, Frame
from .limits import FACE_MARGIN, JPEG_QUALITY, MIN_SIDE_PX


def encode_jpeg(bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # only on an empty or malformed array, which is a bug on our side
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes()


@dataclass(frozen=True)
class PixelBox:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def face_pixel_box(box: BoundingBox, width: int, height: int, margin: float = FACE_MARGIN) -> PixelBox:
    """Clamp a Rekognition box (which may be negative or exceed 1) to the image, with a margin; never empty."""
    pad_x, pad_y = box.width * margin, box.height * margin
    left = _clamp(round((box.left - pad_x) * width), 0, width - 1)
    top = _clamp(round((box.top - pad_y) * height), 0, height - 1)
    right = _clamp(round((box.left + box.width + pad_x) * width), left + 1, width)
    bottom = _clamp(round((box.top + box.height + pad_y) * height), top + 1, height)
    return PixelBox(left=left, top=top, right=right, bottom=bottom)


def crop_face(frame: Frame, box: BoundingBox, margin: float = FACE_MARGIN) -> np.ndarray:
    pixels = face_pixel_box(box, frame.width, frame.height, margin)
    return frame.bgr[pixels.top : pixels.bottom, pixels.left : pixels.right]


def face_crop_jpeg(frame: Frame, face: FaceDetail) -> bytes:
    """The face with a margin, upscaled if needed: CompareFaces refuses images under 80x80 pixels."""
    crop = crop_face(frame, face.bounding_box)
    short_side = min(crop.shape[0], crop.shape[1])
    if short_side < MIN_SIDE_PX:
        scale = MIN_SIDE_PX / short_side
        crop = cv2.resize(
            crop, (round(crop.shape[1] * scale) + 1, round(crop.shape[0] * scale) + 1), interpolation=cv2.INTER_CUBIC
        )
    return encode_jpeg(crop)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))
