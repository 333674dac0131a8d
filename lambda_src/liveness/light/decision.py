"""Did the face reflect the drawn colours? The response fit and the verdict.

Per frame, F = log(region / background) per channel: the camera's gains act on the whole frame, so they
cancel, and the background (far from the screen) is barely lit. With the batch mean removed, F is fitted
against the drawn colours minus their mean: rho (does it follow) and alpha (how strongly). A lit 3D face
responds less on its sides (turned away) than at its centre: flatness = sides' gain / centre's gain, read on
the linear gain over the dark frames (exp(F - F_dark) - 1), as the log would squash a strong response to 1.
Early-offset and late-offset frames are fitted apart, so a tint that arrives late fails the early ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

import numpy as np

from ..faces import FaceDetail
from .alignment import aligned, shifts
from .regions import RegionMeans, face_regions, region_means
from .sequence import LightSequence
from .stillness import stillness

EPSILON = 1e-4  # linear light; keeps log() finite on a black region


class LightOutcome(str, Enum):
    PASSED = "PASSED"
    LIGHT_NOT_FOLLOWED = "LIGHT_NOT_FOLLOWED"  # a response that does not follow the colours, or a flat one
    LIGHT_TOO_BRIGHT = "LIGHT_TOO_BRIGHT"  # no measurable response: abstain and coach
    LIGHT_FACE_MOVED = "LIGHT_FACE_MOVED"  # the face moved, was covered, or its regions are not in the frame


@dataclass(frozen=True)
class LightThresholds:
    """Defaults from the simulation sweep (bench/light.py); the report gives the measured ranges. Each has an
    environment variable (settings.LIGHT_ENV); a session keeps the set in force when it was created."""

    min_correlation: float = 0.8  # rho, early and late frames apart
    min_response: float = 0.04  # alpha at the face's centre and against each side: below it, too bright to judge
    max_flatness: float = 0.88  # sides over centre: a real face 0.5-0.75, a print 0.98-1.05, a screen sheen > 1.3
    min_background_balance: float = 0.7  # genuine >= 0.8 even with a wall at 1 m on one side only; a print < 0.45
    # A weak response (alpha below this) that partly follows (rho above the next) is put down to bright
    # surroundings: abstain and coach, rather than call it not followed.
    clear_response: float = 0.06
    # ... and partly follows: rho at least this (a weak, partial follower is put down to bright surroundings)
    partial_correlation: float = 0.5
    max_sway_px: float = 6.0  # the largest shift undone before reading the regions (stillness judges more)
    min_stillness: float = 0.6  # the lowest frame's gradient correlation with the analysed frame

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LightThresholds:
        return cls(**{item.name: float(raw[item.name]) for item in fields(cls) if item.name in raw})


def light_threshold_problems(t: LightThresholds) -> list[str]:
    """Why a light threshold set cannot work; empty when it is fine."""
    problems = []
    if not 0 < t.min_correlation <= 1 or not 0 <= t.partial_correlation <= 1 or not 0 < t.min_stillness <= 1:
        problems.append("LIGHT_MIN_CORRELATION, LIGHT_PARTIAL_CORRELATION and LIGHT_MIN_STILLNESS must be in (0, 1]")
    if t.min_response <= 0 or t.max_flatness <= 0 or t.max_sway_px < 0 or t.clear_response < t.min_response:
        problems.append(
            "LIGHT_MIN_RESPONSE and LIGHT_MAX_FLATNESS must be positive, LIGHT_MAX_SWAY_PX 0 or more, and "
            "LIGHT_CLEAR_RESPONSE at least LIGHT_MIN_RESPONSE"
        )
    if not 0 <= t.min_background_balance <= 1:
        problems.append("LIGHT_MIN_BACKGROUND_BALANCE must be between 0 and 1")
    return problems


@dataclass(frozen=True)
class LightFrame:
    bgr: np.ndarray  # the decoded frame
    colour_index: int
    offset_ms: int  # as the sequence's capture offsets: >= 0 from the colour's start, < 0 from its end


@dataclass(frozen=True)
class Fit:
    rho: float
    alpha: float


@dataclass(frozen=True)
class LightVerdict:
    outcome: LightOutcome
    measured: dict[str, Any] = field(default_factory=dict)  # JSON-able, for the frame log and the audit

    @property
    def passed(self) -> bool:
        return self.outcome is LightOutcome.PASSED


def fit(response: np.ndarray, expected: np.ndarray) -> Fit:
    """rho and alpha of a (frames x channels) response against the expected pattern, both mean-removed."""
    response = response - response.mean(axis=0)
    expected = expected - expected.mean(axis=0)
    energy = float((expected * expected).sum())
    norm = math.sqrt(float((response * response).sum()) * energy)
    product = float((response * expected).sum())
    return Fit(rho=product / norm if norm > 0 else 0.0, alpha=product / energy if energy > 0 else 0.0)


def log_ratio(means: list[RegionMeans], region: str, side: int | None = None) -> np.ndarray:
    """Per frame, log(region / background) per channel; ``side``: against that background side alone."""
    return np.array(
        [
            np.log(getattr(m, region) + EPSILON)
            - np.log((m.background if side is None else m.backgrounds[side]) + EPSILON)
            for m in means
        ]
    )


def linear_gain(response: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The response as a linear gain over the frames under the darkest colour (the first one is dark)."""
    darkest = expected.sum(axis=1) == expected.sum(axis=1).min()
    return np.expm1(response - response[darkest].mean(axis=0))


def balance(by_side: list[Fit]) -> float:
    """The weaker side's response over the stronger's: a far background leaves them alike (a wall near one
    side differs by its own small share), a print's edge between the face and one side does not."""
    alphas = [item.alpha for item in by_side]
    if len(alphas) < 2 or max(alphas) <= 0:
        return 1.0
    return min(alphas) / max(alphas)


def analysed_frame_index(frames: list[LightFrame], sequence: LightSequence) -> int:
    """The frame to send to the analyzer: the last one under the brightest colour (white)."""
    brightness = [sum(sequence.colours[frame.colour_index].rgb) + (frame.offset_ms < 0) * 0.1 for frame in frames]
    return int(np.argmax(brightness))


def batch_problem(frames: list[LightFrame], sequence: LightSequence) -> str | None:
    """Why a batch cannot be judged (a client error), or None: every colour at every capture offset, once."""
    wanted = {(index, offset) for index in range(len(sequence.colours)) for offset in sequence.capture_offsets_ms}
    got = [(frame.colour_index, frame.offset_ms) for frame in frames]
    if len(set(got)) != len(got):
        return "a colour and offset was sent twice"
    if set(got) != wanted:
        return f"expected one frame per colour at offsets {list(sequence.capture_offsets_ms)}"
    if len({frame.bgr.shape[:2] for frame in frames}) != 1:
        return "the frames differ in size"
    return None


def judge_light(
    frames: list[LightFrame],
    sequence: LightSequence,
    face: FaceDetail,
    thresholds: LightThresholds | None = None,
    analysed: int | None = None,
) -> LightVerdict:
    """The verdict on one batch; ``face`` is the analyzer's face in ``frames[analysed]``.

    Raises ValueError when ``batch_problem`` finds the batch malformed (check it first, answer a 4xx)."""
    problem = batch_problem(frames, sequence)
    if problem is not None:
        raise ValueError(problem)
    limits = thresholds or LightThresholds()
    index = analysed_frame_index(frames, sequence) if analysed is None else analysed
    height, width = frames[index].bgr.shape[:2]
    regions = face_regions(face, width, height)
    if regions is None or not regions.background:
        return LightVerdict(LightOutcome.LIGHT_FACE_MOVED, {"regions": "face or background out of the frame"})
    pictures = [frame.bgr for frame in frames]
    still = stillness(pictures, frames[index].bgr, regions.face)
    moves = shifts(pictures, frames[index].bgr, regions.face, limits.max_sway_px)
    means = [region_means(aligned(picture, move), regions) for picture, move in zip(pictures, moves, strict=True)]
    measured = measure(frames, sequence, means)
    measured["stillness"] = round(min(still), 4)
    measured["swayPx"] = round(max(max(abs(dx), abs(dy)) for dx, dy in moves), 2)
    measured["failed"] = failed_checks(measured, limits)
    return LightVerdict(decide(measured, limits), measured)


def measure(frames: list[LightFrame], sequence: LightSequence, means: list[RegionMeans]) -> dict[str, Any]:
    expected = np.array([sequence.colours[frame.colour_index].rgb for frame in frames])
    early = np.array([frame.offset_ms >= 0 for frame in frames])
    centre = log_ratio(means, "centre")
    whole = {region: fit(log_ratio(means, region), expected) for region in ("centre", "forehead", "sides")}
    gains = {region: fit(linear_gain(log_ratio(means, region), expected), expected) for region in ("centre", "sides")}
    parts = {name: fit(centre[mask], expected[mask]) for name, mask in (("early", early), ("late", ~early))}
    # Against each background side alone: a plane (a print, a screen) reaching one side responds there too.
    by_side = [fit(log_ratio(means, "centre", side), expected) for side in range(len(means[0].backgrounds))]
    centred = centre - centre.mean(axis=0)
    spread = expected - expected.mean(axis=0)
    return {
        "rho": round(whole["centre"].rho, 4),
        "rhoEarly": round(parts["early"].rho, 4),
        "rhoLate": round(parts["late"].rho, 4),
        "alpha": {region: round(item.alpha, 4) for region, item in whole.items()},
        "alphaBySide": [round(item.alpha, 4) for item in by_side],
        "rhoBySide": [round(item.rho, 4) for item in by_side],
        "backgroundBalance": round(balance(by_side), 4),
        "flatness": round(gains["sides"].alpha / gains["centre"].alpha, 4)
        if abs(gains["centre"].alpha) > 1e-6
        else None,
        # How much the face-to-background ratio moved at all, in the alpha scale of a perfect follower.
        "responseSpread": round(math.sqrt(float((centred**2).sum()) / max(float((spread**2).sum()), 1e-12)), 4),
        "backgroundLevel": round(float(np.mean([m.background.mean() for m in means])), 5),
        "frames": len(frames),
    }


def failed_checks(measured: dict[str, Any], limits: LightThresholds) -> list[str]:
    """The names of the checks the measurement misses (recorded, so a deployer can see what fails)."""
    checks = {
        "stillness": measured["stillness"] >= limits.min_stillness,
        "correlation": min(measured["rhoEarly"], measured["rhoLate"], *measured["rhoBySide"]) >= limits.min_correlation,
        "response": min(measured["alpha"]["centre"], *measured["alphaBySide"]) >= limits.min_response,
        "flatness": measured["flatness"] is not None and measured["flatness"] <= limits.max_flatness,
        "backgroundBalance": measured["backgroundBalance"] >= limits.min_background_balance,
    }
    return [name for name, ok in checks.items() if not ok]


def decide(measured: dict[str, Any], limits: LightThresholds) -> LightOutcome:
    failed = failed_checks(measured, limits)
    if "stillness" in failed:
        return LightOutcome.LIGHT_FACE_MOVED
    if measured["responseSpread"] < limits.min_response:
        return LightOutcome.LIGHT_TOO_BRIGHT
    if not failed:
        return LightOutcome.PASSED
    faint = 0 < measured["alpha"]["centre"] < limits.clear_response and measured["rho"] >= limits.partial_correlation
    return LightOutcome.LIGHT_TOO_BRIGHT if faint else LightOutcome.LIGHT_NOT_FOLLOWED
