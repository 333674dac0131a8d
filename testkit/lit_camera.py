"""A camera for the browser that the page's own screen lights: what the simulated camera (lit_camera.js) needs.

Python computes, once per picture, where the screen's light lands on the face (``light_physics.light_factor``
from the face mesh) and hands the browser the picture and that light map as PNGs; the browser draws them onto
a canvas stream, lit by the colour the page shows at that moment. A replay is the same stream, unlit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .light_physics import CHANNEL_CROSSTALK, SCREEN_BLACK, light_factor, mesh_points
from .light_session import working_frame

SCRIPT = Path(__file__).with_name("lit_camera.js")
CAMERA_SIZE = (640, 480)  # width, height: what getUserMedia hands the page
BACKGROUND_M = (1.5, 1.8)  # the walls left and right of the head
SCREEN_OVER_AMBIENT = 0.45  # a screen giving ~110 lux of white in a 250-lux room
LATENCY_MS = 80  # the frame shown at t was lit by the screen of t - latency
NOISE = 0.012  # sensor noise, linear light (shot noise scales with the square root of the signal)


@dataclass(frozen=True)
class LitPicture:
    """A picture at the camera's size and its light map (0-255: the share of the screen's light it receives)."""

    png: bytes
    lightmap_png: bytes


def lit_picture(analyzer, bgr: np.ndarray, top: float = 0.5) -> LitPicture:  # noqa: ANN001 - a MeshAnalyzer
    frame = np.ascontiguousarray(working_frame(bgr, CAMERA_SIZE, top=top))
    points = mesh_points(analyzer, frame)
    if points is None:
        raise ValueError("no face in the picture")
    factor = light_factor(frame.shape, points, BACKGROUND_M)
    lightmap = np.round(np.clip(factor, 0, 1) * 255).astype(np.uint8)
    return LitPicture(_png(frame), _png(lightmap))


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def init_script(pictures: int, *, lit: bool = True, fps: float = 15.0, picture_ms: int = 100) -> str:
    """The page's init script: the settings, then lit_camera.js (getUserMedia answered by the canvas stream).
    ``pictures``: how many pictures the route serves (played in a loop, ``picture_ms`` each)."""
    settings = {
        "pictures": pictures,
        "pictureMs": picture_ms,
        "fps": fps,
        "width": CAMERA_SIZE[0],
        "height": CAMERA_SIZE[1],
        "screenOverAmbient": SCREEN_OVER_AMBIENT if lit else 0.0,
        "latencyMs": LATENCY_MS,
        "noise": NOISE,
        "crosstalk": CHANNEL_CROSSTALK.tolist(),
        "screenBlack": SCREEN_BLACK,
    }
    return f"window.__litCamera = {json.dumps(settings)};\n" + SCRIPT.read_text(encoding="utf-8")
