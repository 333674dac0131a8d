"""The client that films the simulated person (testkit/person.py) in real time against a real server: it posts
frames at the client's pace, one request in flight, and plays the light step as the page does.

The light step (FOLLOW_LIGHT), as the page and the person do it: a countdown (~1 s), the page asks for the
challenge, shows the colours in real time while the person holds still, and sends the frames taken at the
server's offsets as one batch when the last colour ends. The frames are the person's straight frame lit by the
physics harness with the colours on screen (testkit/light_session.py: the screen's light on the face, the camera's
gains, noise and JPEG), or what an attacker's picture gives under the same screen. Nothing here decides anything:
the server's answers drive the person.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from testkit.light_client import play_batch
from testkit.person import (  # noqa: F401  (the manners, re-exported for the suites)
    FAR_AND_HOLDING,
    FRAME_INTERVAL_SECONDS,
    FRAME_JITTER_SECONDS,
    ORDINARY,
    OVERSHOOTING,
    SLOW,
    Camera,
    Manner,
    Person,
    lit_subject,
)
from tests.local.support import call

TERMINAL = {"PASSED", "FAILED", "EXPIRED"}
LIGHT_COUNTDOWN_SECONDS = 1.0  # the page's countdown before it asks for the light challenge


@dataclass
class SessionRun:
    created: dict[str, Any]
    answers: list[dict[str, Any]]
    final: dict[str, Any]
    seconds: float
    uploads: list[str | None]  # the image (data URL) each answer judged; None for a light batch

    @property
    def status(self) -> str:
        return self.final["status"]

    @property
    def reasons(self) -> list[str | None]:
        return [answer.get("reasonCode") for answer in self.answers]


def play_light(
    base_url: str, session_id: str, picture: np.ndarray, *, user: str, mirrored: bool, kind: str, seed: int
) -> Any:
    """One light challenge in real time: countdown, start, the colours, then the batch. Answers the batch's reply,
    or the start's when it was refused (the session closed meanwhile)."""
    time.sleep(LIGHT_COUNTDOWN_SECONDS)
    started = call(base_url, "POST", f"/sessions/{session_id}/light", {}, user=user)
    if started.status != 201:
        return started
    shown_at = time.monotonic()
    batch = play_batch(lit_subject(picture, mirrored), started.json, np.random.default_rng(seed), kind)
    colours_seconds = sum(colour["durationMs"] for colour in started.json["colors"]) / 1000.0
    time.sleep(max(0.0, shown_at + colours_seconds - time.monotonic()))  # the page sends after the last colour
    return call(base_url, "POST", f"/sessions/{session_id}/light/frames", batch.body, user=user)


def create_session(base_url: str, *, user: str, mirrored: bool) -> dict[str, Any]:
    reply = call(base_url, "POST", "/sessions", {"excludeExpressions": True, "mirrored": mirrored}, user=user)
    assert reply.status == 201, reply.raw[:300]
    return reply.json


def run_session(
    base_url: str,
    frames: list[np.ndarray],
    *,
    user: str,
    mirrored: bool,
    show=None,
    stand_in: np.ndarray | None = None,
    created: dict[str, Any] | None = None,
    max_seconds: float = 60.0,
    manner: Manner = ORDINARY,
    light: str = "genuine",
    light_picture: np.ndarray | None = None,
) -> SessionRun:
    """Create a head-movements-only session and play the person until it ends. ``show`` picks the clip frame
    (default: the reacting ``Person``); attack tests pass their own, or a ``stand_in`` (another person) who gives
    the neutral start before the person takes over. ``created`` is a session already created for ``user``.
    The light step: ``light`` is how the picture in front of the camera answers the screen (``genuine``: a face
    lit by it; an attack of testkit/light_attacks.py), ``light_picture`` that picture (default: what ``show``
    shows when the step comes)."""
    created = created or create_session(base_url, user=user, mirrored=mirrored)
    session_id, started = created["sessionId"], time.monotonic()
    person, camera, rng = Person(frames, seen_at=started, manner=manner), Camera(mirrored), random.Random()
    show = show or (
        lambda now: stand_in
        if stand_in is not None and person.step == "LOOK_STRAIGHT"
        else frames[person.frame_index(now)]
    )
    answers: list[dict[str, Any]] = []
    uploads: list[str | None] = []
    status = "IN_PROGRESS"
    while status not in TERMINAL and time.monotonic() - started < max_seconds:
        if answers and created["steps"][answers[-1]["currentStep"]]["code"] == "FOLLOW_LIGHT":
            picture = light_picture if light_picture is not None else show(time.monotonic())
            reply = play_light(
                base_url, session_id, picture, user=user, mirrored=mirrored, kind=light, seed=len(answers)
            )
            if reply.status == 409:  # closed meanwhile, or the challenge expired: the GET below tells how
                if reply.json.get("code") == "SESSION_CLOSED":
                    break
                continue
            assert reply.status == 200, reply.raw[:300]
            answers.append(reply.json)
            uploads.append(None)
            status = reply.json["status"]
            if status == "IN_PROGRESS":
                person.react(created["steps"][reply.json["currentStep"]]["code"], time.monotonic())
            continue
        sent_at = time.monotonic()
        image = camera.shoot(show(sent_at))
        reply = call(base_url, "POST", f"/sessions/{session_id}/frames", {"image": image}, user=user)
        if reply.status == 409:  # closed meanwhile (a deadline): the GET below tells how
            break
        assert reply.status == 200, reply.raw[:300]
        answer = reply.json
        answers.append(answer)
        uploads.append(image)
        status = answer["status"]
        if status == "IN_PROGRESS":
            person.react(created["steps"][answer["currentStep"]]["code"], time.monotonic(), answer["reasonCode"])
        pause = FRAME_INTERVAL_SECONDS + rng.uniform(-FRAME_JITTER_SECONDS, FRAME_JITTER_SECONDS)
        time.sleep(max(0.0, pause - (time.monotonic() - sent_at)))
    final = call(base_url, "GET", f"/sessions/{session_id}", user=user).json
    return SessionRun(
        created=created, answers=answers, final=final, seconds=time.monotonic() - started, uploads=uploads
    )


def run_planned(
    base_url: str,
    frames: list[np.ndarray],
    plans: list[tuple[tuple, bool]],
    ordered_draws: collections.deque,
    *,
    people: int,
    manner: Manner = ORDINARY,
) -> list[SessionRun]:
    """One person per plan (a step order, mirrored or not), ``people`` at a time; each session gets the order
    planned for it through ``ordered_draws`` (the e2e conftest's fixture)."""
    creating = threading.Lock()

    def one(index: int) -> SessionRun:
        order, mirrored = plans[index]
        user = f"person-{index}"
        with creating:
            ordered_draws.append(order)
            created = create_session(base_url, user=user, mirrored=mirrored)
        return run_session(base_url, frames, user=user, mirrored=mirrored, created=created, manner=manner)

    with ThreadPoolExecutor(max_workers=people) as pool:
        return list(pool.map(one, range(len(plans))))
