"""Real encoded pictures made on the spot: a textured scene as JPEG, PNG (RGB, RGBA, grey) or a data URL."""

from __future__ import annotations

import base64

import cv2
import numpy as np


def scene_bgr(width: int = 640, height: int = 480, seed: int = 7) -> np.ndarray:
    """A textured, non-uniform picture (gradients plus noise), so codecs do real work on it."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    base = np.concatenate(
        [
            np.broadcast_to(x, (height, width, 1)),
            np.broadcast_to(y, (height, width, 1)),
            np.broadcast_to((x + y) / 2, (height, width, 1)),
        ],
        axis=2,
    )
    noise = rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    image = np.clip(base + noise, 0, 255).astype(np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 4, (200, 180, 160), -1)
    return image


def encode(image: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(ext, image, params or [])
    assert ok
    return buffer.tobytes()


def jpeg_bytes(width: int = 640, height: int = 480, quality: int = 90) -> bytes:
    return encode(scene_bgr(width, height), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality])


def png_bytes(width: int = 640, height: int = 480) -> bytes:
    return encode(scene_bgr(width, height), ".png")


def rgba_png_bytes(width: int = 640, height: int = 480) -> bytes:
    """What a browser canvas's toDataURL('image/png') gives: 4 channels."""
    bgra = cv2.cvtColor(scene_bgr(width, height), cv2.COLOR_BGR2BGRA)
    return encode(bgra, ".png")


def grayscale_png_bytes(width: int = 640, height: int = 480) -> bytes:
    return encode(cv2.cvtColor(scene_bgr(width, height), cv2.COLOR_BGR2GRAY), ".png")


def data_url(raw: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"
