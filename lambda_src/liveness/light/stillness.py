"""Did the face hold still? Each frame's face-region gradients (its sway undone) against the analysed frame's.

Gradients of the log of the brightness (not pixels), so the flashed colour and the camera's gains, which
multiply the light, do not count as change; a blurred, downsized crop, so what is left of the sway does not
either. A turned, covered or changed face decorrelates.
"""

from __future__ import annotations

import cv2
import numpy as np

from .regions import Rect

CROP_SIDE = 48
BLUR_SIGMA = 1.5
LOG_OFFSET = 8.0  # 8-bit levels: keeps the sensor noise in dark areas from dominating the log


def gradient_signature(bgr: np.ndarray, face: Rect) -> np.ndarray:
    x0, y0, x1, y1 = face
    grey = cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    small = cv2.resize(grey, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(np.log(small + LOG_OFFSET), (0, 0), 1.0)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = cv2.GaussianBlur(cv2.magnitude(gx, gy), (0, 0), BLUR_SIGMA).ravel()
    return magnitude - magnitude.mean()


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    denominator = float(np.linalg.norm(first) * np.linalg.norm(second))
    return float(first @ second) / denominator if denominator > 0 else 0.0


def stillness(frames: list[np.ndarray], reference: np.ndarray, face: Rect) -> list[float]:
    """Per frame, the normalised correlation (-1..1) of its face gradients with the reference frame's."""
    anchor = gradient_signature(reference, face)
    return [correlation(gradient_signature(frame, face), anchor) for frame in frames]
