"""Helpers for the browser tests: a Y4M writer for Chromium's fake camera, and an analyzer that plays along."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from liveness.faces import FaceComparison, FaceDetail, Frame

from testkit.faces import face, face_for

Y4M_WIDTH = 640
Y4M_HEIGHT = 480


def letterbox(bgr: np.ndarray, width: int = Y4M_WIDTH, height: int = Y4M_HEIGHT) -> np.ndarray:
    """Fit the picture inside width x height, keeping its aspect ratio, on black."""
    scale = min(width / bgr.shape[1], height / bgr.shape[0])
    resized = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    top = (height - resized.shape[0]) // 2
    left = (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 10) -> Path:
    """A YUV4MPEG2 clip: a text header, then each frame as ``FRAME\\n`` and its I420 (4:2:0) planes.
    Chromium's fake camera plays it in a loop."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{Y4M_WIDTH} H{Y4M_HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for bgr in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(letterbox(bgr), cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def gif_to_y4m(gif: Path, path: Path) -> Path:
    from testkit.headturn import read_frames

    return write_y4m(read_frames(gif), path)


class CooperativeAnalyzer:
    """A stand-in analyzer that sees whatever the open session's current step asks for (it reads the local
    session files). It lets the browser tests reach PASSED without a real face; the real analyzer's own
    judgement is tested elsewhere (tests/local, tests/runtime)."""

    name = "cooperative"

    def __init__(self, sessions_dir: Path) -> None:
        self.sessions_dir = sessions_dir

    def _current_step_code(self) -> str | None:
        files = sorted(self.sessions_dir.glob("*.json"), key=lambda item: item.stat().st_mtime, reverse=True)
        for file in files:
            session = json.loads(file.read_text(encoding="utf-8"))
            if session.get("status") == "IN_PROGRESS":
                return session["steps"][int(session["currentStep"])]["code"]
        return None

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        code = self._current_step_code()
        try:
            return [face_for(code)] if code else [face()]
        except (KeyError, ValueError):  # LOOK_STRAIGHT or a step this helper does not know: a frontal face
            return [face()]

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        return FaceComparison(similarity=99.0, method="cooperative")


def astronaut_y4m(path: Path, frames: int = 20) -> Path:
    """A real face for the fake camera: scikit-image's public-domain astronaut (Eileen Collins), with a little
    sensor-like noise per frame so no two camera pictures are the same bytes (the page skips repeats)."""
    from skimage import data

    # A 4:3 window around her face (the whole portrait leaves the face too small for the analyzer).
    bgr = cv2.cvtColor(data.astronaut()[0:270, 25:385], cv2.COLOR_RGB2BGR)
    random = np.random.default_rng(16)
    clip = [
        np.clip(bgr.astype(np.int16) + random.integers(-2, 3, bgr.shape, dtype=np.int16), 0, 255).astype(np.uint8)
        for _ in range(frames)
    ]
    return write_y4m(clip, path)


class HonestLightAnalyzer(CooperativeAnalyzer):
    """The real analyzer for the light step (its face and the same-person comparison), the cooperative stand-in
    for every other step (a still picture cannot turn its head, and the astronaut smiles, so she is never
    neutral): the light step is judged on the real face, nothing waved through."""

    name = "honest-light"
    REAL_STEPS = frozenset({"FOLLOW_LIGHT"})

    def __init__(self, sessions_dir: Path, real: object) -> None:
        super().__init__(sessions_dir)
        self.real = real

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        if self._current_step_code() in self.REAL_STEPS:
            return self.real.detect_faces(frame)
        return super().detect_faces(frame)

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        if self._current_step_code() in self.REAL_STEPS:
            return self.real.compare_faces(reference, candidate)
        return super().compare_faces(reference, candidate)
