"""The light challenge's long sweep: pass rates of genuine faces and of each attack, per ambient level.

Ambient 50-2000 lux, screen 60-150 lux, camera lags 0.3-2 s, latency 30-180 ms, random per session. Faces:
the astronaut photo, and the webcam clip's straight frames (plain and mirrored) when ../shared is there.
LIGHT_SESSIONS (default 20) sessions per cell. Prints outcomes and the measured ranges (rho, alpha, flatness).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter, defaultdict

import cv2
import numpy as np

from testkit import headturn
from testkit.light_attacks import ATTACKS
from testkit.light_session import Conditions, Played, Subject, play, working_frame
from testkit.puppet import shared_analyzer

AMBIENT_LUX = (50, 100, 200, 350, 500, 750, 1000, 2000)


def subjects() -> list[Subject]:
    from skimage import data  # a dev dependency

    analyzer = shared_analyzer()
    found = [Subject(working_frame(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), top=0.0), analyzer=analyzer)]
    if headturn.available():
        frames = headturn.read_frames()
        straight = [working_frame(frames[index]) for index in headturn.STRAIGHT[::3]]
        found += [
            Subject(np.ascontiguousarray(f), analyzer=analyzer) for f in straight + [f[:, ::-1] for f in straight]
        ]
    return found


def spread(played: list[Played], key: str) -> str:
    values = []
    for item in played:
        if item.verdict is None:
            continue
        value = item.verdict.measured.get(key)
        value = value["centre"] if isinstance(value, dict) else value
        if value is not None:
            values.append(value)
    if not values:
        return f"{key} -"
    low, mid, high = np.percentile(values, [2, 50, 98])
    return f"{key} {low:.3f}/{mid:.3f}/{high:.3f}"


def main() -> int:
    sessions = int(os.environ.get("LIGHT_SESSIONS", "20"))
    kinds = ("genuine", *ATTACKS)
    found = subjects()
    rng = np.random.default_rng(int(os.environ.get("LIGHT_SEED", "19")))
    print(f"{len(found)} faces, {sessions} sessions per cell; rates: passed / all. Ranges: 2nd/50th/98th percentile")
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    started = time.perf_counter()
    for lux in AMBIENT_LUX:
        for kind in kinds:
            played = [play(kind, found[n % len(found)], Conditions.random(rng, lux), rng) for n in range(sessions)]
            outcomes = Counter(item.outcome for item in played)
            totals[kind if lux <= 500 else f"{kind} >500"] += outcomes
            print(
                f"{lux:5d} lux {kind:17s} passed {outcomes['PASSED']:3d}/{sessions}  "
                f"{spread(played, 'rhoEarly')}  {spread(played, 'alpha')}  {spread(played, 'flatness')}  "
                f"{dict(outcomes)}",
                flush=True,
            )
    print(f"\nUp to 500 lux, and above ({time.perf_counter() - started:.0f} s):")
    for name, outcomes in sorted(totals.items()):
        print(f"  {name:22s} passed {outcomes['PASSED']:4d}/{sum(outcomes.values()):4d}  {dict(outcomes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
