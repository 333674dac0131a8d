"""The light challenge's library on its own: the drawn sequence's rules, its JSON form, the fit, and the
outcomes a moved face or a missing landmark give (real astronaut frames, lit by the simulation)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from liveness.faces import BoundingBox, FaceDetail, Frame
from liveness.light.decision import LightFrame, LightOutcome, batch_problem, fit, judge_light
from liveness.light.sequence import MAX_HOLD_MS, MIN_HOLD_MS, PALETTE, LightSequence, draw_sequence

from testkit.light_physics import lit, to_bgr8
from testkit.light_session import Subject, working_frame


def test_a_drawn_sequence_keeps_the_rules() -> None:
    for _ in range(200):
        sequence = draw_sequence()
        hexes = [colour.hex for colour in sequence.colours]
        assert len(hexes) == 6 and hexes[0] == PALETTE["dark"] and PALETTE["white"] in hexes
        assert set(hexes) <= set(PALETTE.values()) and all(a != b for a, b in zip(hexes, hexes[1:]))
        assert all(MIN_HOLD_MS <= colour.duration_ms <= MAX_HOLD_MS for colour in sequence.colours)
        assert all(colour.rgb != (1.0, 0.0, 0.0) for colour in sequence.colours)  # never saturated red


def test_sequences_are_fresh_and_survive_json() -> None:
    drawn = [draw_sequence() for _ in range(20)]
    assert len({tuple(c.hex for c in s.colours[1:]) + (s.challenge_id,) for s in drawn}) == 20
    assert LightSequence.from_json(drawn[0].to_json()) == drawn[0]
    assert drawn[0].to_json()["captureOffsetsMs"] == [260, -60]


def test_capture_moments_fall_inside_their_colour() -> None:
    sequence = draw_sequence()
    for index, colour in enumerate(sequence.colours):
        for offset in sequence.capture_offsets_ms:
            assert sequence.colour_at(sequence.capture_ms(index, offset)) == colour


def test_the_fit_reads_correlation_and_amplitude() -> None:
    expected = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 1], [0, 1, 0], [1, 1, 0], [1, 0, 1]], float)
    followed = fit(0.1 * expected + 5.0, expected)
    assert followed.rho == pytest.approx(1.0) and followed.alpha == pytest.approx(0.1)
    reversed_ = fit(-0.1 * expected, expected)
    assert reversed_.rho == pytest.approx(-1.0)


@pytest.fixture(scope="module")
def subject(astronaut: np.ndarray, analyzer) -> Subject:  # noqa: ANN001
    return Subject(working_frame(astronaut, top=0.0), analyzer=analyzer)


def lit_batch(subject: Subject, sequence: LightSequence, shift_px: int = 0) -> list[LightFrame]:
    """Frames lit by the sequence at 100 lux, with no camera; every other frame shifted by ``shift_px``."""
    scene = subject.scene((1.5, 1.5))
    frames = []
    for index, colour in enumerate(sequence.colours):
        for n, offset in enumerate(sequence.capture_offsets_ms):
            bgr = to_bgr8(lit(scene, colour.rgb, 1.0) * 0.5)
            if n and shift_px:
                bgr = np.roll(bgr, shift_px, axis=1)
            frames.append(LightFrame(bgr, index, offset))
    return frames


def test_a_lit_still_face_passes_and_a_moving_one_does_not(subject: Subject, analyzer) -> None:  # noqa: ANN001
    sequence = draw_sequence()
    frames = lit_batch(subject, sequence)
    face = analyzer.detect_faces(Frame(bgr=frames[0].bgr, encoded=b"", content_type="image/jpeg"))[0]
    verdict = judge_light(frames, sequence, face, analysed=0)
    assert verdict.outcome is LightOutcome.PASSED, verdict.measured
    assert json.loads(json.dumps(verdict.measured)) == verdict.measured and verdict.measured["failed"] == []
    moved = judge_light(lit_batch(subject, sequence, shift_px=8), sequence, face, analysed=0)
    assert moved.outcome is LightOutcome.LIGHT_FACE_MOVED, moved.measured
    assert "stillness" in moved.measured["failed"]


def test_a_covered_face_does_not_pass(subject: Subject, analyzer) -> None:  # noqa: ANN001
    """A hand over the lower face in the late frames: the face's gradients change."""
    sequence = draw_sequence()
    frames = lit_batch(subject, sequence)
    face = analyzer.detect_faces(Frame(bgr=frames[0].bgr, encoded=b"", content_type="image/jpeg"))[0]
    box, (height, width) = face.bounding_box, frames[0].bgr.shape[:2]
    x0, x1 = int(box.left * width), int((box.left + box.width) * width)
    y0, y1 = int((box.top + box.height / 2) * height), int((box.top + box.height) * height)
    for frame in frames[1::2]:
        frame.bgr[y0:y1, x0:x1] = (90, 120, 170)
    covered = judge_light(frames, sequence, face, analysed=0)
    assert covered.outcome is LightOutcome.LIGHT_FACE_MOVED, covered.measured


def test_a_face_without_landmarks_cannot_be_read(subject: Subject, analyzer) -> None:  # noqa: ANN001
    sequence = draw_sequence()
    frames = lit_batch(subject, sequence)
    face = analyzer.detect_faces(Frame(bgr=frames[0].bgr, encoded=b"", content_type="image/jpeg"))[0]
    bare = dataclasses.replace(face, landmarks=())
    assert judge_light(frames, sequence, bare, analysed=0).outcome is LightOutcome.LIGHT_FACE_MOVED


def test_rekognitions_shape_is_enough(subject: Subject, analyzer) -> None:  # noqa: ANN001
    """Only the box and the five landmarks Rekognition's DetectFaces gives are read: the same verdict."""
    sequence = draw_sequence()
    frames = lit_batch(subject, sequence)
    face = analyzer.detect_faces(Frame(bgr=frames[0].bgr, encoded=b"", content_type="image/jpeg"))[0]
    raw = face.to_rekognition()
    five = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
    shaped = {"BoundingBox": raw["BoundingBox"], "Landmarks": [lm for lm in raw["Landmarks"] if lm["Type"] in five]}
    as_rekognition = judge_light(frames, sequence, FaceDetail.from_rekognition(shaped), analysed=0)
    assert as_rekognition.outcome is LightOutcome.PASSED
    assert as_rekognition.measured == judge_light(frames, sequence, face, analysed=0).measured


def test_a_malformed_batch_is_refused(subject: Subject) -> None:
    sequence = draw_sequence()
    frames = lit_batch(subject, sequence)
    assert batch_problem(frames, sequence) is None
    assert batch_problem(frames[:-1], sequence) is not None
    assert batch_problem([*frames[:-1], frames[0]], sequence) == "a colour and offset was sent twice"
    with pytest.raises(ValueError):
        judge_light(frames[:-1], sequence, FaceDetail(bounding_box=BoundingBox(0.3, 0.2, 0.3, 0.4), confidence=99))
