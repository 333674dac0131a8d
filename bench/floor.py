"""What both benchmarks measure against: the test frame, the CPU floor of /detect's work, and a quiet stdout."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import sys

import cv2
import numpy as np

from testkit.images import scene_bgr
from testkit.rekognition import face_detail

BOX = face_detail()["BoundingBox"]


def frame_jpeg() -> bytes:
    return cv2.imencode(".jpg", scene_bgr(640, 480), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def floor(payload: str) -> None:
    raw = base64.b64decode(payload.partition(",")[2])
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    height, width = image.shape[:2]
    crop = image[
        int(BOX["Top"] * height) : int((BOX["Top"] + BOX["Height"]) * height),
        int(BOX["Left"] * width) : int((BOX["Left"] + BOX["Width"]) * width),
    ]
    cv2.imencode(".jpg", crop)


@contextlib.contextmanager
def quiet_stdout():
    """Logs and EMF metrics still get written (they are part of the cost), just not to the terminal."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)
