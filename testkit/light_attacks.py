"""What attackers show the camera (or inject) during a light challenge, as linear frames or finished JPEGs.

Each renderer takes the scene, the drawn sequence, the capture time and the session's screen-to-ambient
ratio, and returns linear BGR light before the camera (``None`` marks an injected frame made elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from liveness.light.sequence import LightSequence

from .light_physics import HEAD_RING_FACTOR, Scene, lit, screen_light

LATE_TINT_S = 0.3
SHEEN_REFLECTANCE = 0.05  # a glossy screen mirrors ~5% of the flash back to the camera


def colour_rgb(sequence: LightSequence, time_s: float) -> tuple[float, float, float] | None:
    colour = sequence.colour_at(time_s * 1000.0)
    if colour is None and time_s * 1000.0 >= sequence.total_ms:
        colour = sequence.colours[-1]  # the page holds the last colour until the batch is sent
    return colour.rgb if colour is not None else None


def genuine(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    return lit(scene, colour_rgb(sequence, t), ratio)


def replay(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    """A recording of the person made during another session: lit by that session's sequence."""
    return lit(scene, colour_rgb(other, t), ratio)


def still(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    """A photo (or an animated one) held up or injected: the room's light only."""
    return scene.linear


def screen_sheen(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    """A screen replaying the person, held to the camera: its picture plus a glossy reflection of the flash,
    over the whole screen alike (a little stronger toward one edge)."""
    width = scene.linear.shape[1]
    level = float(scene.linear.mean())  # the reflection scales with the light the screen's picture gives
    sheen = SHEEN_REFLECTANCE * ratio * level * screen_light(colour_rgb(sequence, t))
    across = np.linspace(0.7, 1.0, width, dtype=np.float32)[None, :, None]
    return scene.linear * 0.9 + sheen[None, None, :] * across


def flat_print(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    """A print filling the middle three-quarters of the frame, lit evenly (a plane facing the screen); the
    room beyond it at the background's distance."""
    width = scene.linear.shape[1]
    flat = Scene(scene.linear, np.full_like(scene.factor, float(scene.factor.min())))
    flat.factor[:, int(0.12 * width) : int(0.88 * width)] = 0.9
    return lit(flat, colour_rgb(sequence, t), ratio)


def head_sized_print(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    """A print cut to the head (half a face width beyond each cheek): the room shows on both sides, so only
    the face's flat shading can give it away (the issue's print fills the frame; this one is harder)."""
    columns = np.flatnonzero((scene.factor > HEAD_RING_FACTOR + 0.01).any(axis=0))
    left, right = int(columns.min()), int(columns.max())
    margin = (right - left) // 2
    flat = Scene(scene.linear, np.full_like(scene.factor, float(scene.factor.min())))
    flat.factor[:, max(left - margin, 0) : right + margin] = 0.9
    return lit(flat, colour_rgb(sequence, t), ratio)


def tint(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    """An injected feed tinted evenly by the flashed colour (the attacker read the sequence)."""
    return lit(Scene(scene.linear, np.full_like(scene.factor, 0.5)), colour_rgb(sequence, t), ratio)


def late_tint(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    return tint(scene, sequence, other, t - LATE_TINT_S, ratio)


def no_tint(scene: Scene, sequence: LightSequence, other: LightSequence, t: float, ratio: float) -> np.ndarray:
    """An injected feed of the person, not lit by the screen at all."""
    return scene.linear


Renderer = Callable[[Scene, LightSequence, LightSequence, float, float], np.ndarray]
# Attack name -> renderer. "puppet" (the animated photo, injected) has no renderer: testkit.puppet makes it.
RENDERERS: dict[str, Renderer] = {
    "genuine": genuine,
    "replay": replay,
    "still": still,
    "sheen": screen_sheen,
    "print": flat_print,
    "print_head_sized": head_sized_print,
    "inject_no_tint": no_tint,
    "inject_tint": tint,
    "inject_late_tint": late_tint,
}
ATTACKS = (
    "replay",
    "still",
    "puppet",
    "sheen",
    "print",
    "print_head_sized",
    "inject_no_tint",
    "inject_tint",
    "inject_late_tint",
)
