"""Undo a person's small sway before the regions are read: each frame shifted onto the analysed frame.

The regions are fixed in the analysed frame's pixels; a pixel of sway moves a small region across the face's
edge and adds noise that is not light. Phase correlation of the face's log-brightness finds the shift
(sub-pixel); a shift at the cap is a moved face (the decision says so).
"""

from __future__ import annotations

import cv2
import numpy as np

from .regions import Rect

MARGIN = 0.25  # of the face box, around it: the face's outline is what the correlation locks on
LOG_OFFSET = 8.0  # 8-bit levels, as in stillness: the flashed colour multiplies, the log takes it out


def _log_grey(bgr: np.ndarray, area: Rect) -> np.ndarray:
    x0, y0, x1, y1 = area
    grey = cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    return np.log(grey + LOG_OFFSET)


def around(face: Rect, width: int, height: int) -> Rect:
    x0, y0, x1, y1 = face
    mx, my = round((x1 - x0) * MARGIN), round((y1 - y0) * MARGIN)
    return (max(0, x0 - mx), max(0, y0 - my), min(width, x1 + mx), min(height, y1 + my))


def shifts(frames: list[np.ndarray], reference: np.ndarray, face: Rect, limit_px: float) -> list[tuple[float, float]]:
    """Per frame, its shift (dx, dy) from the reference, each capped at ``limit_px``."""
    area = around(face, reference.shape[1], reference.shape[0])
    anchor = _log_grey(reference, area)
    window = cv2.createHanningWindow((anchor.shape[1], anchor.shape[0]), cv2.CV_32F)
    found = []
    for frame in frames:
        (dx, dy), _response = cv2.phaseCorrelate(anchor, _log_grey(frame, area), window)
        found.append((float(np.clip(dx, -limit_px, limit_px)), float(np.clip(dy, -limit_px, limit_px))))
    return found


def aligned(frame: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """The frame moved back by its shift (edges replicated)."""
    if shift == (0.0, 0.0):
        return frame
    matrix = np.float32([[1, 0, -shift[0]], [0, 1, -shift[1]]])
    return cv2.warpAffine(
        frame, matrix, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
