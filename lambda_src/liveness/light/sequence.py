"""A fresh colour sequence for one light challenge, drawn with ``secrets`` and stored with the session.

The palette has no saturated red, each colour is held 450-750 ms (never more than ~2.2 changes a second,
within WCAG 2.3.1), the first colour is dark (the reference the others are read against) and one is white.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Name -> "#rrggbb". Dark is black: the screen's own black level is what the face sees.
PALETTE: dict[str, str] = {
    "dark": "#000000",
    "white": "#ffffff",
    "blue": "#0000ff",
    "green": "#00ff00",
    "yellow": "#ffff00",
    "cyan": "#00ffff",
    "magenta": "#ff00ff",
}
SEQUENCE_LENGTH = 6
MIN_HOLD_MS = 450
MAX_HOLD_MS = 750
# Frames are taken this long after a colour starts (the camera's latency and exposure have passed) and this
# long before it ends (negative: from the end). Two moments per colour let the decision check the timing.
CAPTURE_OFFSETS_MS = (260, -60)


@dataclass(frozen=True)
class LightColour:
    hex: str  # "#rrggbb"
    duration_ms: int

    @property
    def rgb(self) -> tuple[float, float, float]:
        """The colour's channels as 0-1 fractions of the screen's full output, red first."""
        value = int(self.hex[1:], 16)
        return ((value >> 16 & 255) / 255.0, (value >> 8 & 255) / 255.0, (value & 255) / 255.0)


@dataclass(frozen=True)
class LightSequence:
    challenge_id: str
    colours: tuple[LightColour, ...]
    capture_offsets_ms: tuple[int, ...] = CAPTURE_OFFSETS_MS

    def start_ms(self, index: int) -> int:
        return sum(colour.duration_ms for colour in self.colours[:index])

    @property
    def total_ms(self) -> int:
        return self.start_ms(len(self.colours))

    def capture_ms(self, index: int, offset_ms: int) -> int:
        """When a frame at ``offset_ms`` within colour ``index`` is taken, from the sequence's start."""
        within = offset_ms if offset_ms >= 0 else self.colours[index].duration_ms + offset_ms
        return self.start_ms(index) + within

    def colour_at(self, time_ms: float) -> LightColour | None:
        """The colour on screen at ``time_ms`` from the start; None before the start or after the end."""
        if time_ms < 0:
            return None
        for index, colour in enumerate(self.colours):
            if time_ms < self.start_ms(index + 1):
                return colour
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "challengeId": self.challenge_id,
            "colors": [{"color": colour.hex, "durationMs": colour.duration_ms} for colour in self.colours],
            "captureOffsetsMs": list(self.capture_offsets_ms),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LightSequence:
        return cls(
            challenge_id=str(raw["challengeId"]),
            colours=tuple(LightColour(str(item["color"]), int(item["durationMs"])) for item in raw["colors"]),
            capture_offsets_ms=tuple(int(offset) for offset in raw["captureOffsetsMs"]),
        )


def draw_sequence(length: int = SEQUENCE_LENGTH, randbelow: Callable[[int], int] = secrets.randbelow) -> LightSequence:
    """Dark first, at least one white, no colour twice in a row, each held a random 450-750 ms.

    ``randbelow``: the OS's CSPRNG; only the simulation harness passes a seeded one, to replay a sweep."""
    names = ["dark"]
    white_at = 1 + randbelow(length - 1)
    for index in range(1, length):
        if index == white_at:
            names.append("white")
            continue
        choices = [name for name in PALETTE if name != names[-1] and not (index == white_at - 1 and name == "white")]
        names.append(choices[randbelow(len(choices))])
    colours = tuple(
        LightColour(PALETTE[name], MIN_HOLD_MS + randbelow(MAX_HOLD_MS - MIN_HOLD_MS + 1)) for name in names
    )
    return LightSequence(challenge_id=secrets.token_urlsafe(12), colours=colours)
