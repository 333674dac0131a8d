"""A webcam: auto-exposure and white balance that lag (0.3-2 s), sensor noise, gamma and JPEG, and a capture
latency (the frame taken at t shows the light of t - latency)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .light_physics import to_bgr8

TARGET_GREY = 0.18  # auto-exposure aims the frame's mean at mid-grey (linear)
TICK_S = 1 / 30  # the camera adjusts its gains at its frame rate, whether or not a frame is sent


@dataclass
class Camera:
    rng: np.random.Generator
    exposure_lag_s: float = 0.6
    balance_lag_s: float = 1.0
    noise: float = 0.01
    quality: int = 85
    latency_s: float = 0.08
    gain: float | None = None
    balance: np.ndarray | None = None
    clock_s: float = field(default=-math.inf)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Camera:
        return cls(
            rng=rng,
            exposure_lag_s=float(rng.uniform(0.3, 2.0)),
            balance_lag_s=float(rng.uniform(0.3, 2.0)),
            noise=float(rng.uniform(0.005, 0.02)),
            quality=int(rng.integers(70, 93)),
            latency_s=float(rng.uniform(0.03, 0.18)),
        )

    def meter(self, mean_bgr: np.ndarray, time_s: float) -> None:
        """Move the gains toward what the frame's mean asks for, by the time passed since the last tick."""
        want_gain = TARGET_GREY / max(float(mean_bgr.mean()), 1e-6)
        want_balance = mean_bgr.mean() / np.maximum(mean_bgr, 1e-6)
        if self.gain is None or self.balance is None:
            self.gain, self.balance, self.clock_s = want_gain, want_balance, time_s
            return
        step = max(time_s - self.clock_s, 0.0)
        exposure = 1 - math.exp(-step / self.exposure_lag_s)
        balance = 1 - math.exp(-step / self.balance_lag_s)
        self.gain += exposure * (want_gain - self.gain)
        self.balance = self.balance + balance * (want_balance - self.balance)
        self.clock_s = time_s

    def shoot(self, linear: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
        """The JPEG the camera makes of a linear BGR frame with its current gains (``size``: width, height)."""
        assert self.gain is not None and self.balance is not None
        image = linear * self.gain * self.balance[None, None, :]
        if size is not None and (image.shape[1], image.shape[0]) != size:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        shot = self.noise * np.sqrt(np.clip(image, 0, 1)) * self.rng.standard_normal(image.shape)
        read = 0.002 * self.rng.standard_normal(image.shape)
        ok, jpeg = cv2.imencode(".jpg", to_bgr8(image + shot + read), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        assert ok
        return jpeg.tobytes()
