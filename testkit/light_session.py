"""One simulated light challenge, end to end: a fresh sequence, the screen's light on the subject (or an
attack), the camera, the real decode, one analyzer call for the face, and the library's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.images.crop import encode_jpeg
from liveness.images.intake import load_frame
from liveness.light.decision import LightFrame, LightThresholds, LightVerdict, analysed_frame_index, judge_light
from liveness.light.sequence import LightSequence, draw_sequence

from .camera import TICK_S, Camera
from .light_attacks import RENDERERS
from .light_physics import Scene, light_factor, mesh_points, to_linear
from .puppet import puppet_frame

FRAME_SIZE = (320, 240)  # what the client sends (width, height)
COUNTDOWN_S = 1.5  # the camera runs through the countdown before the first colour, under the page's grey
SWAY_PX = 1.0  # a person holding still still sways a pixel or so between frames
DRIFT_FACE_WIDTHS = 0.04  # and drifts up to this share of the face's width over the sequence, one way
PUPPET_SWAY_DEGREES = 4.0


def working_frame(bgr: np.ndarray, size: tuple[int, int] = FRAME_SIZE, top: float = 0.5) -> np.ndarray:
    """A picture cut to the client's aspect ratio (``top``: where the cut sits, 0 top to 1 bottom), resized."""
    height, width = bgr.shape[:2]
    aspect = size[0] / size[1]
    crop_w, crop_h = min(width, round(height * aspect)), min(height, round(width / aspect))
    x0, y0 = (width - crop_w) // 2, round((height - crop_h) * top)
    return cv2.resize(bgr[y0 : y0 + crop_h, x0 : x0 + crop_w], size, interpolation=cv2.INTER_AREA)


@dataclass
class Subject:
    """A person's frame (at the client's size) and its face mesh, found once."""

    bgr: np.ndarray
    points: np.ndarray = field(init=False)
    analyzer: MeshAnalyzer = field(repr=False, default_factory=MeshAnalyzer)

    def __post_init__(self) -> None:
        found = mesh_points(self.analyzer, self.bgr)
        if found is None:
            raise ValueError("no face in the subject's frame")
        self.points = found

    def scene(self, background_m: tuple[float, float]) -> Scene:
        return Scene(to_linear(self.bgr), light_factor(self.bgr.shape, self.points, background_m))


@dataclass(frozen=True)
class Conditions:
    ambient_lux: float
    screen_lux: float
    background_m: tuple[float, float]  # left and right of the head

    @classmethod
    def random(cls, rng: np.random.Generator, ambient_lux: float) -> Conditions:
        left, right = (float(distance) for distance in rng.uniform(1.0, 2.5, 2))
        return cls(ambient_lux, float(rng.uniform(60, 150)), (left, right))


@dataclass(frozen=True)
class Played:
    verdict: LightVerdict | None  # None: the analyzer found no face in the analysed frame
    sequence: LightSequence

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed

    @property
    def outcome(self) -> str:
        return self.verdict.outcome.value if self.verdict is not None else "NO_FACE"


def sway(linear: np.ndarray, rng: np.random.Generator, drift: np.ndarray) -> np.ndarray:
    """The frame moved by ``drift`` (pixels) plus a random pixel of sway and half a degree of roll."""
    dx, dy = rng.uniform(-SWAY_PX, SWAY_PX, 2) + drift
    matrix = cv2.getRotationMatrix2D((linear.shape[1] / 2, linear.shape[0] / 2), float(rng.uniform(-0.5, 0.5)), 1.0)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(linear, matrix, (linear.shape[1], linear.shape[0]), borderMode=cv2.BORDER_REFLECT)


def play(
    kind: str,
    subject: Subject,
    conditions: Conditions,
    rng: np.random.Generator,
    thresholds: LightThresholds | None = None,
    camera: Camera | None = None,
) -> Played:
    """One challenge played by the genuine subject or an attack (``light_attacks.ATTACKS``)."""

    def seeded(bound: int) -> int:  # so a test or a sweep replays the same sequences
        return int(rng.integers(bound))

    sequence, other = draw_sequence(randbelow=seeded), draw_sequence(randbelow=seeded)
    camera = camera or Camera.random(rng)
    captures = [(index, offset) for index in range(len(sequence.colours)) for offset in sequence.capture_offsets_ms]
    if kind == "puppet":
        images = [puppet_image(subject, rng) for _ in captures]
    else:
        images = camera_images(kind, subject, conditions, sequence, other, camera, captures, rng)
    frames = [
        LightFrame(load_frame(raw).bgr, index, offset) for raw, (index, offset) in zip(images, captures, strict=True)
    ]
    analysed = analysed_frame_index(frames, sequence)
    faces = subject.analyzer.detect_faces(load_frame(images[analysed]))
    if not faces:
        return Played(None, sequence)
    return Played(judge_light(frames, sequence, faces[0], thresholds, analysed=analysed), sequence)


def camera_images(
    kind: str,
    subject: Subject,
    conditions: Conditions,
    sequence: LightSequence,
    other: LightSequence,
    camera: Camera,
    captures: list[tuple[int, int]],
    rng: np.random.Generator,
) -> list[bytes]:
    """The camera runs from the countdown on, its gains following each tick; frames are kept at the captures."""
    render = RENDERERS[kind]
    scene = subject.scene(conditions.background_m)
    metered = scene.reduced(8)  # the gains follow the frame's mean: a small copy gives it cheaply
    ratio = conditions.screen_lux / conditions.ambient_lux
    due = sorted((sequence.capture_ms(index, offset) / 1000.0, n) for n, (index, offset) in enumerate(captures))
    images: list[bytes] = [b""] * len(captures)
    t = -COUNTDOWN_S
    heading = rng.uniform(0, 2 * np.pi)
    reach = rng.uniform(0, DRIFT_FACE_WIDTHS) * float(np.ptp(subject.points[:, 0]))
    drift = reach * np.array([np.cos(heading), np.sin(heading)]) / max(sequence.total_ms / 1000, 1e-3)
    for when, n in due:
        while t < when:
            camera.meter(render(metered, sequence, other, t - camera.latency_s, ratio).reshape(-1, 3).mean(axis=0), t)
            t += TICK_S
        camera.meter(render(metered, sequence, other, when - camera.latency_s, ratio).reshape(-1, 3).mean(axis=0), when)
        shown = render(scene, sequence, other, when - camera.latency_s, ratio)
        images[n] = camera.shoot(sway(shown, rng, drift * when))
    return images


def puppet_image(subject: Subject, rng: np.random.Generator) -> bytes:
    """The animated photo, injected: the subject's frame warped to a small random pose, noise and JPEG."""
    yaw, pitch = rng.uniform(-PUPPET_SWAY_DEGREES, PUPPET_SWAY_DEGREES, 2)
    return encode_jpeg(puppet_frame(subject.bgr, float(yaw), float(pitch), rng))
