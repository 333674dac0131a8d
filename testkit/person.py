"""A simulated person in front of a webcam, played from the developers' real recording, and the camera that
films them: what the person shows at each moment, given the step the server asked for (no HTTP here: the real-time
suite (tests/e2e/person.py) and the cost bench (bench/cost.py) drive it, on a real or a simulated clock).

The person reacts to the instruction the server sends (about 0.8 s), makes the move at the clip's own speed,
holds it about 1.2 s, comes back, rests, and tries again if the step is still current. Told "a little less far"
(FACE_NOT_COMPARABLE), they hold the move short of its peak from then on, as the page's coaching asks. The client
posts one frame about every 0.28 s (with jitter), one request in flight, each frame with fresh sensor noise, so no
two uploads are the same bytes. A ``Manner`` varies that: as far as the clip goes and held two seconds,
overshooting then correcting, slow to react. ``lit_subject`` is the picture the light step's physics harness
lights (testkit/light_session.py).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from testkit.headturn import CLIP_FPS, MOVES, STRAIGHT
from testkit.light_session import Subject, working_frame

REACTION_SECONDS = 0.8
HOLD_SECONDS = 1.2
REST_SECONDS = 0.6
OVERSHOOT_SECONDS = 0.5
FRAME_INTERVAL_SECONDS = 0.28
FRAME_JITTER_SECONDS = 0.06
SENSOR_NOISE_SIGMA = 3.0
SENT_SIZE = (640, 352)  # the 400x220 clip scaled as a client's 640-wide canvas would carry it


@dataclass(frozen=True)
class Manner:
    """How a person moves: how long they take to react, how long they hold, whether they go past the peak and
    come back to a moderate pose, whether "a little less far" changes their next try."""

    reaction_seconds: tuple[float, float] = (REACTION_SECONDS, REACTION_SECONDS)  # drawn per step
    hold_seconds: float = HOLD_SECONDS
    overshoot: bool = False  # the peak for OVERSHOOT_SECONDS, then the rest of the hold a little less far
    # Told "a little less far", they ease off this long after the answer (0: at once).
    coaching_reaction_seconds: float = 0.0


ORDINARY = Manner()
# As far as the clip goes (33-41 degrees of yaw, 40-42 looking up), held two seconds; told "a little less far",
# they ease off only after reading it.
FAR_AND_HOLDING = Manner(hold_seconds=2.0, coaching_reaction_seconds=REACTION_SECONDS)
OVERSHOOTING = Manner(hold_seconds=2.0, overshoot=True)
SLOW = Manner(reaction_seconds=(1.5, 2.0))


@dataclass
class Person:
    """Which clip frame the person shows at a moment, given the step they are doing and when they saw it."""

    frames: list[np.ndarray]
    step: str = "LOOK_STRAIGHT"
    seen_at: float = 0.0
    less_far_from: float | None = None  # when they ease off, once told "a little less far"
    manner: Manner = ORDINARY
    reaction: float = REACTION_SECONDS
    rng: random.Random = field(default_factory=random.Random)

    def react(self, step: str, now: float, reason: str | None = None) -> None:
        if step != self.step:
            self.step, self.seen_at, self.less_far_from = step, now, None
            self.reaction = self.rng.uniform(*self.manner.reaction_seconds)
        elif reason == "FACE_NOT_COMPARABLE" and self.less_far_from is None:
            self.less_far_from = now + self.manner.coaching_reaction_seconds

    def frame_index(self, now: float) -> int:
        elapsed = now - self.seen_at
        move = MOVES.get(self.step)
        if move is None or elapsed < self.reaction:  # straight: the neutral start, or still reading
            return STRAIGHT[int(elapsed * CLIP_FPS) % len(STRAIGHT)]
        out, back = len(move.out) / CLIP_FPS, len(move.back) / CLIP_FPS
        hold = self.manner.hold_seconds
        cycle = out + hold + back + REST_SECONDS
        t = (elapsed - self.reaction) % cycle  # no progress: try the same move again
        if t < out:
            return move.out[int(t * CLIP_FPS)]
        t -= out
        if t < hold:
            overshooting = self.manner.overshoot and t < OVERSHOOT_SECONDS
            less_far = self.less_far_from is not None and now >= self.less_far_from
            held = move.moderate if (less_far or self.manner.overshoot) and not overshooting else move.peak
            return held[int(t * CLIP_FPS) % len(held)]
        t -= hold
        if t < back:
            return move.back[int(t * CLIP_FPS)]
        return STRAIGHT[int(t * CLIP_FPS) % len(STRAIGHT)]


@dataclass
class Camera:
    """Turns a clip frame into an upload: scaled, optionally mirrored like a selfie preview, with sensor noise."""

    mirrored: bool
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng())

    def shoot(self, bgr: np.ndarray) -> str:
        image = cv2.resize(bgr, SENT_SIZE, interpolation=cv2.INTER_LINEAR).astype(np.float32)
        if self.mirrored:
            image = image[:, ::-1]
        image += self.rng.normal(0.0, SENSOR_NOISE_SIGMA, image.shape).astype(np.float32)
        ok, encoded = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


_SUBJECTS: dict[tuple[int, bool], Subject] = {}
_CLIENT_ANALYZER: list[Any] = []  # the client's own face mesh (the simulated light needs the face's shape)


def lit_subject(bgr: np.ndarray, mirrored: bool) -> Subject:
    """The picture in front of the screen at the client's frame size, mirrored like the uploads, with its mesh."""
    key = (id(bgr), mirrored)
    if key not in _SUBJECTS:
        if not _CLIENT_ANALYZER:
            from liveness.analyzers.mesh import MeshAnalyzer

            _CLIENT_ANALYZER.append(MeshAnalyzer())
        frame = working_frame(bgr[:, ::-1] if mirrored else bgr)
        _SUBJECTS[key] = Subject(np.ascontiguousarray(frame), analyzer=_CLIENT_ANALYZER[0])
    return _SUBJECTS[key]
