"""``make bench-cost`` (``python -m bench.cost``): what a passed check costs on the Rekognition path, with the
pre-screen on and off, measured in the same run.

Part 1, the sessions. Simulated genuine people (testkit/person.py: the developers' webcam clip, reacting to each
step at human speed) go through the real handler with ``ANALYZER=rekognition``, the real RekognitionAnalyzer on
the stand-in client (testkit/rekognition_standin.py: DetectFaces and CompareFaces computed from the real image,
with the measured disagreement) and file storage, every order of three head movements, plain and mirrored
(``BENCH_SESSIONS`` caps how many; ``BENCH_SPREAD_SCALE`` multiplies the disagreement's spreads), once with
``PRESCREEN=on`` and once with ``off``. They run on a simulated clock, the server's and the person's: a frame's answer arrives after the handler's own measured time (the
stand-in's work taken out) plus the AWS latencies of ``make bench MODE=latency`` for the calls it made, and the
client posts its next frame at its own pace after that. Printed: Rekognition image calls per passed 3-step check
(fewest, median, most), the cost per check at $0.001 an image against Face Liveness' $0.015, and the genuine pass
rate with and without the pre-screen.

Part 2, the server time of a frame. With every AWS call stubbed in-process (the stand-in for Rekognition, moto for
S3 and DynamoDB) behind the latencies of ``make bench MODE=latency`` (real sleeps, ``BENCH_*_MS``), the median
wall time of: a frame the pre-screen refuses (a straight face during a turn), the same kind of frame with the
pre-screen off (it goes to Rekognition and is refused there), and a frame that meets its step (Rekognition).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from liveness import handler
from liveness.analyzers.mesh import MeshAnalyzer
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.challenges import HEAD_MOVEMENTS, StepCode
from liveness.dependencies import Dependencies
from liveness.sessions import service as session_service
from liveness.settings import Settings
from liveness.wiring import build_dependencies

from bench.floor import quiet_stdout
from bench.latency import BENCH_ATTEMPTS, Latencies, latent_handler
from testkit import headturn
from testkit.events import LambdaContext, api_event
from testkit.light_client import play_batch
from testkit.person import FRAME_INTERVAL_SECONDS, FRAME_JITTER_SECONDS, ORDINARY, Camera, Manner, Person, lit_subject
from testkit.rekognition_standin import MEASURED, Disagreement, RekognitionStandIn

PRICE_PER_IMAGE = 0.001  # Rekognition image APIs, first million a month (docs/operations.md, Cost)
FACE_LIVENESS_PRICE = 0.015  # Rekognition Face Liveness, per check
TARGET_TYPICAL_CALLS = 8
TARGET_WORST_CALLS = 20
TARGET_REFUSED_MS = 50.0
TARGET_PASS_RATE_POINTS = 1.0
TERMINAL = {"PASSED", "FAILED", "EXPIRED"}
LIGHT_COUNTDOWN_SECONDS = 1.0  # the page's countdown before it asks for the light challenge
MAX_SESSION_SECONDS = 60.0
PRESCREEN_JUDGE = "local-mesh"
TIMED_ORDER = (StepCode.TURN_LEFT, StepCode.TURN_RIGHT, StepCode.LOOK_UP)


# -- the simulated clock and the counted stand-in ------------------------------------------------------------------


@dataclass
class SimulatedClock:
    """Seconds since the run began; the server reads it as its clock, the person and the client as theirs."""

    seconds: float = 0.0
    start: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def advance(self, seconds: float) -> None:
        self.seconds += max(0.0, seconds)


class TimedStandIn:
    """The stand-in client, timing its own work (done by AWS in production, so taken out of the server's time)."""

    def __init__(self, stand_in: RekognitionStandIn) -> None:
        self.stand_in = stand_in
        self.seconds = 0.0
        self._lock = threading.Lock()

    def _timed(self, operation: Callable[..., Any], **params: Any) -> Any:
        started = time.perf_counter()
        try:
            return operation(**params)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started

    def detect_faces(self, **params: Any) -> Any:
        return self._timed(self.stand_in.detect_faces, **params)

    def compare_faces(self, **params: Any) -> Any:
        return self._timed(self.stand_in.compare_faces, **params)


@contextlib.contextmanager
def every_order_once(orders: list[tuple[StepCode, ...]]) -> Iterator[collections.deque]:
    """The server's random draw of the steps replaced (only that), so that each planned order runs once."""
    queue: collections.deque = collections.deque(orders)
    original = session_service.draw_steps

    def draw(count: int, *, exclude_expressions: bool = False) -> tuple[StepCode, ...]:
        return tuple(queue.popleft())[:count]

    session_service.draw_steps = draw
    try:
        yield queue
    finally:
        session_service.draw_steps = original


def invoke(method: str, path: str, body: Any, user: str) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(api_event(method, path, body, sub=user), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


# -- part 1: simulated people ------------------------------------------------------------------------------------


@dataclass
class FrameRecord:
    judged_by: str | None
    calls: int  # Rekognition image calls this request made
    server_seconds: float  # simulated: own CPU plus the modelled AWS latencies


@dataclass
class SessionResult:
    status: str
    failure: str | None
    calls: int
    frames: list[FrameRecord] = field(default_factory=list)


@dataclass
class Simulation:
    """One deployment (pre-screen on or off) with its stand-in, on a simulated clock."""

    deps: Dependencies
    stand_in: RekognitionStandIn
    timed: TimedStandIn
    clock: SimulatedClock
    latencies: Latencies

    def request(self, method: str, path: str, body: Any, user: str) -> tuple[int, dict[str, Any], FrameRecord]:
        """One request: the clock moves by the handler's own time and the AWS latencies of the calls it made."""
        calls_before = dict(self.stand_in.calls)
        own_before = self.timed.seconds
        started = time.perf_counter()
        status, body_out = invoke(method, path, body, user)
        elapsed = time.perf_counter() - started - (self.timed.seconds - own_before)
        detects = self.stand_in.calls["detect_faces"] - calls_before.get("detect_faces", 0)
        compares = self.stand_in.calls["compare_faces"] - calls_before.get("compare_faces", 0)
        lat = self.latencies
        # What bench/latency.py's critical path puts around the analysis: the session's read, the slot's
        # reservation and the verdict's save (the upload's PUT runs beside the analysis).
        network_ms = lat.dynamodb_read + 2 * lat.dynamodb_write + max(lat.s3_put, detects * lat.detect_faces)
        network_ms += compares * lat.compare_faces
        server = elapsed + network_ms / 1000.0
        self.clock.advance(server)
        return status, body_out, FrameRecord(body_out.get("judgedBy"), detects + compares, server)


def scaled(disagreement: Disagreement, factor: float) -> Disagreement:
    """The same biases, every spread times ``factor`` (BENCH_SPREAD_SCALE: how much disagreement the margins take)."""
    spreads = {name: getattr(disagreement, name) * factor for name in ("yaw_spread", "pitch_spread", "roll_spread")}
    return dataclasses.replace(disagreement, **spreads)


def build_simulation(
    data_dir: Path, prescreen: bool, mesh: MeshAnalyzer, latencies: Latencies, seed: int, disagreement: Disagreement
) -> Simulation:
    env = {"ANALYZER": "rekognition", "STORAGE": "file", "DATA_DIR": str(data_dir)}
    settings = Settings.from_env({**env, "PRESCREEN": "on" if prescreen else "off"})
    settings = dataclasses.replace(settings, attempt_limits=BENCH_ATTEMPTS)
    stand_in = RekognitionStandIn(MeshAnalyzer(), disagreement=disagreement, seed=seed)
    timed = TimedStandIn(stand_in)
    clock = SimulatedClock()
    deps = build_dependencies(settings, analyzer=RekognitionAnalyzer(timed), prescreen=mesh if prescreen else None)
    deps = dataclasses.replace(deps, clock=clock.now)
    return Simulation(deps, stand_in, timed, clock, latencies)


def run_person(
    sim: Simulation, clip: list[np.ndarray], *, user: str, mirrored: bool, manner: Manner, seed: int
) -> SessionResult:
    """``tests/e2e/person.py``'s ``run_session``, in-process and on the simulated clock."""
    rng = random.Random(seed)
    calls_before = sim.stand_in.image_calls
    status, created = invoke("POST", "/sessions", {"excludeExpressions": True, "mirrored": mirrored}, user)
    assert status == 201, created
    session_id, started = created["sessionId"], sim.clock.seconds
    person = Person(clip, seen_at=started, manner=manner, rng=random.Random(seed))
    camera = Camera(mirrored, rng=np.random.default_rng(seed))
    frames: list[FrameRecord] = []
    state, step = "IN_PROGRESS", created["steps"][0]["code"]
    while state not in TERMINAL and sim.clock.seconds - started < MAX_SESSION_SECONDS:
        if step == "FOLLOW_LIGHT":
            reply = play_light(sim, session_id, clip[person.frame_index(sim.clock.seconds)], user, mirrored, seed)
        else:
            sent_at = sim.clock.seconds
            upload = {"image": camera.shoot(clip[person.frame_index(sent_at)])}
            code, answer, record = sim.request("POST", f"/sessions/{session_id}/frames", upload, user)
            if code == 409:
                break
            assert code == 200, answer
            frames.append(record)
            reply = answer
            pause = FRAME_INTERVAL_SECONDS + rng.uniform(-FRAME_JITTER_SECONDS, FRAME_JITTER_SECONDS)
            sim.clock.advance(pause - (sim.clock.seconds - sent_at))
        if reply is None:
            break
        state = reply["status"]
        if state == "IN_PROGRESS":
            step = created["steps"][reply["currentStep"]]["code"]
            person.react(step, sim.clock.seconds, reply.get("reasonCode"))
    _code, final = invoke("GET", f"/sessions/{session_id}", None, user)
    return SessionResult(final["status"], final.get("failureReason"), sim.stand_in.image_calls - calls_before, frames)


def play_light(
    sim: Simulation, session_id: str, picture: np.ndarray, user: str, mirrored: bool, seed: int
) -> dict[str, Any] | None:
    """The page's light step: countdown, the challenge, the colours shown, then the batch."""
    sim.clock.advance(LIGHT_COUNTDOWN_SECONDS)
    code, started, _record = sim.request("POST", f"/sessions/{session_id}/light", {}, user)
    if code != 201:
        return None
    batch = play_batch(lit_subject(picture, mirrored), started, np.random.default_rng(seed), "genuine")
    sim.clock.advance(sum(colour["durationMs"] for colour in started["colors"]) / 1000.0)
    code, answer, _record = sim.request("POST", f"/sessions/{session_id}/light/frames", batch.body, user)
    return answer if code == 200 else None


def run_people(
    data_dir: Path,
    prescreen: bool,
    mesh: MeshAnalyzer,
    latencies: Latencies,
    plans: list,
    clip: list[np.ndarray],
    disagreement: Disagreement = MEASURED,
) -> list[SessionResult]:
    sim = build_simulation(data_dir, prescreen, mesh, latencies, seed=17, disagreement=disagreement)
    handler.use_dependencies(sim.deps)
    results = []
    with every_order_once([order for order, _mirrored in plans]):
        for index, (_order, mirrored) in enumerate(plans):
            user = f"person-{'on' if prescreen else 'off'}-{index}"
            results.append(run_person(sim, clip, user=user, mirrored=mirrored, manner=ORDINARY, seed=index))
    return results


# -- part 2: the server time of a frame, with the AWS latencies slept -------------------------------------------


def latent_aws(
    latencies: Latencies, prescreen: MeshAnalyzer | None, stand_in: RekognitionStandIn, archive_screened: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """bench/latency.py's wiring, with the stand-in for Rekognition (the frames timed are a head movement's)."""
    return latent_handler(
        latencies,
        lambda: stand_in,
        prescreen,
        prescreen=prescreen is not None,
        archive_screened=archive_screened,
    )


def timed_frames(
    latencies: Latencies, mesh: MeshAnalyzer, clip: list[np.ndarray], samples: int
) -> dict[str, list[float]]:
    """Per sample and mode, one session: its neutral start, a straight frame during a turn (timed), and with the
    pre-screen on, the turn itself (timed). The modes: pre-screen on, on with ARCHIVE_SCREENED, and off."""
    times: dict[str, list[float]] = collections.defaultdict(list)
    stand_in = RekognitionStandIn(MeshAnalyzer())
    turn = headturn.MOVES[TIMED_ORDER[0].value]
    modes = (("refused", mesh, False), ("refused_archived", mesh, True), ("off", None, False))
    for index in range(samples + 1):  # the first round warms up and is not counted
        for kind, prescreen, archive_screened in modes:
            with latent_aws(latencies, prescreen, stand_in, archive_screened), every_order_once([TIMED_ORDER]):
                camera = Camera(False, rng=np.random.default_rng(index))
                _code, created = invoke("POST", "/sessions", {"excludeExpressions": True}, "timed")
                frames_path = f"/sessions/{created['sessionId']}/frames"

                neutral_start(camera, frames_path, clip)
                straight_ms, answer = post(camera, frames_path, clip[headturn.STRAIGHT[2]])
                assert answer["verdict"] == "REJECTED", answer
                timing_turn = kind == "refused"
                turned_ms, turned = post(camera, frames_path, clip[turn.peak[1]]) if timing_turn else (0.0, {})
            if not index:
                continue
            times[kind].append(straight_ms)
            if prescreen:
                assert answer.get("judgedBy") == PRESCREEN_JUDGE, answer
            if timing_turn:
                assert turned["verdict"] == "ACCEPTED", turned
                times["accepted"].append(turned_ms)
    return times


def neutral_start(camera: Camera, path: str, clip: list[np.ndarray]) -> None:
    """Straight frames until the neutral start is accepted (the first may be refused, e.g. as too dark)."""
    for frame in itertools.islice(itertools.cycle(headturn.STRAIGHT), 10):
        _ms, answer = post(camera, path, clip[frame])
        if answer.get("currentStep") == 1:
            return
    raise AssertionError(f"the neutral start was not accepted: {answer}")


def post(camera: Camera, path: str, picture: np.ndarray) -> tuple[float, dict[str, Any]]:
    """One frame through the handler: its wall time (ms) and its answer."""
    upload = {"image": camera.shoot(picture)}
    started = time.perf_counter()
    _code, answer = invoke("POST", path, upload, "timed")
    return (time.perf_counter() - started) * 1000.0, answer


# -- the report ---------------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def describe(label: str, results: list[SessionResult]) -> dict[str, Any]:
    passed = [result for result in results if result.status == "PASSED"]
    calls = sorted(result.calls for result in passed)
    frames = [frame for result in results for frame in result.frames]
    refused = [frame for frame in frames if frame.judged_by == PRESCREEN_JUDGE]
    return {
        "label": label,
        "sessions": len(results),
        "passed": len(passed),
        "rate": len(passed) / len(results) if results else 0.0,
        "failures": collections.Counter(result.failure for result in results if result.status != "PASSED"),
        "fewest": calls[0] if calls else 0,
        "typical": median(calls),
        "most": calls[-1] if calls else 0,
        "frames": median([len(result.frames) for result in passed]),
        "refused": len(refused),
        "refused_calling": sum(1 for frame in refused if frame.calls),
        "all_frames": len(frames),
    }


def main(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    if not headturn.available():
        print(f"needs the developers' webcam clip {headturn.CLIP} (../shared)")
        return 2
    latencies = Latencies.from_env(env)
    cv2.setNumThreads(1)
    clip = headturn.read_frames()
    mesh = MeshAnalyzer()
    mesh.warm_up()
    orders = [(order, mirrored) for order in itertools.permutations(HEAD_MOVEMENTS, 3) for mirrored in (False, True)]
    plans = orders[: int(env.get("BENCH_SESSIONS", len(orders)))]
    disagreement = scaled(MEASURED, float(env.get("BENCH_SPREAD_SCALE", "1")))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch, quiet_stdout():
        off_runs = run_people(Path(scratch, "off"), False, mesh, latencies, plans, clip, disagreement)
        on_runs = run_people(Path(scratch, "on"), True, mesh, latencies, plans, clip, disagreement)
        off, on = describe("pre-screen off", off_runs), describe("pre-screen on", on_runs)
        samples = int(env.get("BENCH_FRAMES", "10"))
        times = timed_frames(latencies, mesh, clip, samples)
        no_latency = timed_frames(Latencies(0.0, 0.0, 0.0, 0.0, 0.0, 0.0), mesh, clip, samples)
    print(
        f"{len(plans)} simulated genuine sessions per mode (every order of 3 head movements, plain and mirrored, "
        f"ordinary manner), simulated clock; {time.perf_counter() - started:.0f} s of real time in all; the stand-in's "
        f"pose disagreement: yaw {disagreement.yaw_bias:+g} +/- {disagreement.yaw_spread:.1f}, pitch "
        f"{disagreement.pitch_bias:+g} +/- {disagreement.pitch_spread:.1f}, roll {disagreement.roll_bias:+g} +/- "
        f"{disagreement.roll_spread:.1f} degrees"
    )
    print(
        f"  {'':16} {'passed':>8} {'calls: fewest':>14} {'typical':>8} {'most':>5} {'$ typical':>10} "
        f"{'$ worst':>8} {'frames':>7} {'refused by pre-screen':>22}"
    )
    for row in (off, on):
        print(
            f"  {row['label']:16} {row['passed']:>3}/{row['sessions']:<4} {row['fewest']:>14} {row['typical']:>8g} "
            f"{row['most']:>5} {row['typical'] * PRICE_PER_IMAGE:>10.3f} {row['most'] * PRICE_PER_IMAGE:>8.3f} "
            f"{row['frames']:>7g} {row['refused']:>8}/{row['all_frames']} (with a call: {row['refused_calling']})"
        )
        if row["failures"]:
            print(f"    failures: {dict(row['failures'])}")
    print(f"  Face Liveness: ${FACE_LIVENESS_PRICE:.3f} a check; Rekognition images ${PRICE_PER_IMAGE:.3f} each")
    refused, off_ms, accepted = median(times["refused"]), median(times["off"]), median(times["accepted"])
    print(
        f"Server time per frame, median of {len(times['refused'])}, AWS latencies slept (DetectFaces "
        f"{latencies.detect_faces:g} ms, CompareFaces {latencies.compare_faces:g} ms, S3 PUT {latencies.s3_put:g}, "
        f"DynamoDB read {latencies.dynamodb_read:g}, write {latencies.dynamodb_write:g}):"
    )
    print(
        f"  refused by the pre-screen        {refused:7.1f} ms  (with no AWS latency: "
        f"{median(no_latency['refused']):.1f} ms, the handler's own work and the in-process stubs)"
    )
    archived = median(times["refused_archived"])
    print(f"  the same, ARCHIVE_SCREENED=on    {archived:7.1f} ms  ({archived / refused:.1f}x)")
    print(f"  the same frame, pre-screen off   {off_ms:7.1f} ms  ({off_ms / refused:.1f}x)")
    print(f"  a frame that meets its step      {accepted:7.1f} ms  ({accepted / refused:.1f}x)")
    points = 100 * (off["rate"] - on["rate"])
    verdicts = [
        ("typical calls", on["typical"] <= TARGET_TYPICAL_CALLS, f"{on['typical']:g} <= {TARGET_TYPICAL_CALLS}"),
        ("worst calls", on["most"] <= TARGET_WORST_CALLS, f"{on['most']} <= {TARGET_WORST_CALLS}"),
        ("refused frame", refused <= TARGET_REFUSED_MS, f"{refused:.1f} ms <= {TARGET_REFUSED_MS:g} ms"),
        ("pass rate", points <= TARGET_PASS_RATE_POINTS, f"{points:+.1f} points (off - on) <= 1"),
        ("no Rekognition call on a refusal", on["refused_calling"] == 0, f"{on['refused_calling']} with a call"),
    ]
    for name, met, detail in verdicts:
        print(f"Target {name}: {'met' if met else 'MISSED'} ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
