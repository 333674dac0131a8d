"""The developers' webcam clip ``../shared/video/headturn.gif``: its frames and where each head movement is.

One person blinks, turns to their own left and right (about +/-36 degrees of yaw), looks up and down, and tilts,
at 10 frames a second (88 frames, 400x220). The clip stays in ``../shared``: it is read in place, never copied.
The frame ranges are those ``../shared/README.md`` gives (measured by the embedded analyzer, unmirrored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CLIP = SHARED / "video" / "headturn.gif"
CLIP_FPS = 10.0


@dataclass(frozen=True)
class Move:
    """One movement in the clip: the frames from straight to the peak, the peak, and back to straight."""

    out: range  # frames moving away from straight, the peak's first frame excluded
    peak: range
    back: range  # frames returning to straight
    moderate: tuple[int, ...]  # clearly moved, short of the peak (25-35 degrees): "a little less far"


# Step code -> where the person does it in the clip (the person's own directions, in an unmirrored frame).
MOVES = {
    "TURN_LEFT": Move(out=range(5, 9), peak=range(9, 12), back=range(12, 16), moderate=(8, 12, 13)),
    "TURN_RIGHT": Move(out=range(16, 22), peak=range(22, 26), back=range(26, 29), moderate=(21, 22, 25)),
    "LOOK_UP": Move(out=range(33, 37), peak=range(37, 41), back=range(41, 45), moderate=(35, 42)),
    "LOOK_DOWN": Move(out=range(45, 49), peak=range(49, 53), back=range(53, 58), moderate=(48, 53)),
}
STRAIGHT = (0, 1, 2, 3, 29, 30, 31, 32, 58, 59)


def available() -> bool:
    return CLIP.is_file()


def read_frames(path: Path = CLIP) -> list[np.ndarray]:
    """The clip's frames as BGR arrays (OpenCV reads GIFs through its own decoder)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise RuntimeError(f"no frames read from {path}")
    return frames
