"""A light step played through the API: the batch a client would send for the sequence the server revealed.

The frames come from the physics harness (light_session.camera_images): the subject lit by the revealed colours
(genuine) or an attack, through the simulated camera, as 320x240 JPEGs. Used by the handler tests, the local
server's tests and the real-time e2e person.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
from liveness.images.intake import load_frame
from liveness.light.decision import LightFrame, analysed_frame_index
from liveness.light.sequence import LightSequence, draw_sequence

from .camera import Camera
from .light_session import Conditions, Subject, camera_images

GENUINE_LUX = 200.0  # an ordinary room: the harness's genuine subject passes well clear of every threshold


@dataclass(frozen=True)
class Batch:
    body: dict[str, Any]  # the POST /light/frames body
    images: list[bytes]  # the JPEGs, in the body's order
    analysed: int  # the frame the server sends to the analyzer

    def analysed_frame(self) -> Any:
        return load_frame(self.images[self.analysed])


def sequence_of(started: dict[str, Any]) -> LightSequence:
    """The sequence a POST /light answer revealed."""
    return LightSequence.from_json(started)


def play_batch(
    subject: Subject,
    started: dict[str, Any],
    rng: np.random.Generator,
    kind: str = "genuine",
    ambient_lux: float = GENUINE_LUX,
) -> Batch:
    """The batch ``kind`` (light_attacks.RENDERERS: genuine, replay, still...) sends for the revealed sequence."""
    sequence = sequence_of(started)
    captures = [(index, offset) for index in range(len(sequence.colours)) for offset in sequence.capture_offsets_ms]
    conditions = Conditions(ambient_lux, 110.0, (1.5, 1.8))
    images = camera_images(kind, subject, conditions, sequence, draw_sequence(), Camera.random(rng), captures, rng)
    return batch_of(started["challengeId"], sequence, images, captures)


def batch_of(challenge_id: str, sequence: LightSequence, images: list[bytes], captures: list[tuple[int, int]]) -> Batch:
    frames = [
        {"image": "data:image/jpeg;base64," + base64.b64encode(raw).decode("ascii"), "colorIndex": i, "offsetMs": o}
        for raw, (i, o) in zip(images, captures, strict=True)
    ]
    light_frames = [LightFrame(np.zeros((1, 1, 3), np.uint8), i, o) for i, o in captures]
    return Batch({"challengeId": challenge_id, "frames": frames}, images, analysed_frame_index(light_frames, sequence))
