"""A light step played through the API: the batch a client would send for the sequence the server revealed.

The frames come from the physics harness (light_session.camera_images): the subject lit by the revealed colours
(genuine) or an attack, through the simulated camera, as 320x240 JPEGs. Used by the handler tests, the local
server's tests and the real-time e2e person.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache
from typing import Any

import cv2
import numpy as np
from liveness.faces import FaceDetail
from liveness.images.intake import load_frame
from liveness.light.decision import LightFrame, analysed_frame_index
from liveness.light.sequence import LightSequence, draw_sequence

from .camera import Camera
from .light_session import Conditions, Subject, camera_images, working_frame

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


@cache
def astronaut_subject() -> Subject:
    """scikit-image's public-domain astronaut at the client's frame size, with her face mesh (found once)."""
    from skimage import data  # a dev dependency: always there for the tests

    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return Subject(working_frame(bgr, top=0.0))


def genuine_light(started: dict[str, Any], seed: int = 0) -> tuple[dict[str, Any], FaceDetail]:
    """A genuine batch for the revealed sequence, and the face the embedded analyzer finds in its analysed frame
    (what a scripted analyzer should answer for it)."""
    subject = astronaut_subject()
    batch = play_batch(subject, started, np.random.default_rng(seed))
    faces = subject.analyzer.detect_faces(batch.analysed_frame())
    if len(faces) != 1:
        raise AssertionError("the lit astronaut's analysed frame should hold one face")
    return batch.body, faces[0]
