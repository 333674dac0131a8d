"""``make bench-bombs``: what each image bomb costs, and what a flood of them does to a normal request.

1. Each bomb in a fresh child process, after a normal frame has warmed it up: the intake's answer, its latency
   (median of REPEATS) and the growth of the process's peak memory (``ru_maxrss``) and of its traced peak
   (``tracemalloc``: Python and numpy allocations, so the decoder's output array).
2. ``python -m local`` on loopback (the embedded analyzer, file storage): a normal ``POST /detect``'s median
   alone, then while 8 clients send the bombs in a loop; prints the ratio of the two (target: within 2x) and the
   flood's answered rate (over the flood's first seconds too). Twice, on two servers in the same run: with the
   front's refusal tarpit (the default, which the exit code reflects) and without it
   (``LOCAL_REFUSAL_PENALTY_MS=0``). Each also floods a 5-byte non-image (a control), and the tarpit's server the
   bombs on 32 connections at once, past the answers it holds for one address (what it does not stop).

``BASE=<checkout>`` runs the same against another checkout's runtime package (``lambda_src``; the bombs, the
server front and this script stay this tree's), e.g. the commit before a change, for a comparison in one run.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty
from typing import Any

import cv2
from skimage import data as skimage_data

from bench.load import HOST, free_port, post, start_server
from testkit.bombs import CAMERA_BOMBS, header_only_jpeg, png_length_bomb, scan_bomb

REPO_ROOT = Path(__file__).resolve().parent.parent
FLOOD_CLIENTS = 8
RATIO_TARGET = 2.0
PAST_HOLD_CAP = 32  # requests in flight from one address: twice the 16 answers the tarpit holds for one
PENALTY_ENV = "LOCAL_REFUSAL_PENALTY_MS"  # the local front's refusal tarpit (local/tarpit.py)
JSON = {"Content-Type": "application/json"}

_CHILD = r"""
import json, resource, statistics, sys, time, tracemalloc
from pathlib import Path
from liveness.errors import LivenessError
from liveness.images.intake import load_frame
normal, bomb, repeats = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes(), int(sys.argv[3])
load_frame(normal)  # warm up: the decoder's own buffers are not the bomb's cost
def attempt():
    try:
        load_frame(bomb)
        return "accepted"
    except LivenessError as error:
        return error.code.value
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
answer = attempt()
traced_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
times = []
for _ in range(repeats):
    started = time.perf_counter()
    attempt()
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps({"answer": answer, "ms": statistics.median(times), "rss_mb": rss_growth / 1024,
                  "traced_mb": traced_peak / 2**20}))
"""


def bombs() -> dict[str, bytes]:
    made = {name: make() for name, (make, _) in CAMERA_BOMBS.items()}
    made["jpeg-40000-scans"] = scan_bomb()
    made["png-chunk-4GB"] = png_length_bomb(0xFFFFFFFF)
    made["jpeg-6000x6600-header-no-data"] = header_only_jpeg()
    return made


def normal_frame() -> bytes:
    bgr = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    return cv2.imencode(".jpg", cv2.resize(bgr, (640, 640))[80:560], [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def runtime_env(base: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if base:  # that checkout's runtime first; this tree (bench, testkit, local) after it
        env["PYTHONPATH"] = os.pathsep.join([str(Path(base) / "lambda_src"), str(REPO_ROOT)])
    return env


def each_bomb(made: dict[str, bytes], normal: bytes, env: dict[str, str], repeats: int) -> None:
    print(f"Each bomb through the intake, in a fresh process (median of {repeats}):")
    print(f"  {'bomb':34} {'size':>9}  {'answer':22} {'latency':>10}  {'peak RSS':>9}  {'traced':>8}")
    with tempfile.TemporaryDirectory(prefix="liveness-bombs-") as folder:
        normal_path = Path(folder) / "normal"
        normal_path.write_bytes(normal)
        for name, raw in made.items():
            path = Path(folder) / name
            path.write_bytes(raw)
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(normal_path), str(path), str(repeats)],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                print(f"  {name:34} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout)
            print(
                f"  {name:34} {len(raw):9,d}  {row['answer']:22} {row['ms']:8.1f} ms  "
                f"{row['rss_mb']:+7.0f} MB  {row['traced_mb']:6.1f} MB"
            )


def detect_median(port: int, image: str, count: int) -> tuple[float, list[str]]:
    times, errors = [], []
    for _ in range(count):
        started = time.perf_counter()
        status, body = post(port, "POST", "/detect", {"image_bytes": image})
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            errors.append(f"{status} {body.get('code')}")
    return statistics.median(times), errors


def bomber(port: int, bodies: list[bytes], first: int, stop: Any, answers: Any, connections: int = 1) -> None:
    """One flooding client, in its own process (so the measured client never waits for this one's GIL): the
    bodies are encoded once, and sent one after another until told to stop, on ``connections`` at once."""
    senders = [
        threading.Thread(target=send_in_turn, args=(port, bodies, first + index, stop, answers))
        for index in range(connections)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()


def send_in_turn(port: int, bodies: list[bytes], first: int, stop: Any, answers: Any) -> None:
    sent = first
    while not stop.is_set():
        connection = http.client.HTTPConnection(HOST, port, timeout=120)
        try:
            connection.request("POST", "/detect", body=bodies[sent % len(bodies)], headers=JSON)
            response = connection.getresponse()
            response.read()
            answers.put(response.status)
        except OSError:
            answers.put(0)
        finally:
            connection.close()
        sent += 1


def flood(made: dict[str, bytes], normal: bytes, env: dict[str, str], count: int) -> bool:
    """The flood twice in the same run: with the refusal tarpit (the default) and without it (penalty 0)."""
    image = "data:image/jpeg;base64," + base64.b64encode(normal).decode()
    bombs_sent = [json.dumps({"image_bytes": base64.b64encode(raw).decode()}).encode() for raw in made.values()]
    print(f"Flood over HTTP ({FLOOD_CLIENTS} clients, one request after another each; {os.cpu_count()} CPUs):")
    default_env = {name: value for name, value in env.items() if name != PENALTY_ENV}
    ok = flood_one_server(default_env, image, count, bombs_sent, "the refusal tarpit on (the default)", judged=True)
    flood_one_server({**env, PENALTY_ENV: "0"}, image, count, bombs_sent, f"the tarpit off ({PENALTY_ENV}=0)")
    return ok


def flood_one_server(
    env: dict[str, str], image: str, count: int, bombs_sent: list[bytes], what: str, *, judged: bool = False
) -> bool:
    """On a fresh server: a normal /detect's median alone, then during a flood of the bombs, then during the same
    flood of a 5-byte non-image (the cheapest refusal there is: its cost is the HTTP front's and the machine's,
    not the decoder's). Each ratio is to this server's idle median."""
    control = [b'{"image_bytes": "aGVsbG8="}']
    print(f" With {what}:")
    with tempfile.TemporaryDirectory(prefix="liveness-bombs-") as folder:
        port = free_port()
        server = start_server(Path(folder), port, env)
        assert server.stdout is not None  # its log: read on, or a full pipe would stall the server
        threading.Thread(target=server.stdout.read, daemon=True).start()
        try:
            detect_median(port, image, 5)  # warm up the workers
            idle, errors = detect_median(port, image, count)
            print(f"  a normal POST /detect alone: median {idle:.0f} ms over {count} ({len(errors)} errors)")
            bombs_what = f"the {len(bombs_sent)} bombs in turn"
            ok = flooded(port, image, count, idle, bombs_sent, bombs_what, judged=judged) and not errors
            flooded(port, image, count, idle, control, "a 5-byte non-image (control)", judged=False)
            if judged:  # what the tarpit does not stop: more requests in flight than it holds for one address
                many = f"the bombs, {PAST_HOLD_CAP} connections at once ({PAST_HOLD_CAP // FLOOD_CLIENTS} a client)"
                flooded(port, image, count, idle, bombs_sent, many, judged=False, connections=PAST_HOLD_CAP)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    return ok


def flooded(
    port: int,
    image: str,
    count: int,
    idle: float,
    bodies: list[bytes],
    what: str,
    *,
    judged: bool,
    connections: int = FLOOD_CLIENTS,
) -> bool:
    context = multiprocessing.get_context("spawn")
    stop, queue = context.Event(), context.Queue()
    each = connections // FLOOD_CLIENTS
    clients = [
        context.Process(target=bomber, args=(port, bodies, index * each, stop, queue, each))
        for index in range(FLOOD_CLIENTS)
    ]
    for client in clients:
        client.start()
    time.sleep(3)  # the clients have started and the flood is under way
    started = time.perf_counter()
    median, errors = detect_median(port, image, count)
    seconds = time.perf_counter() - started
    stop.set()
    answers = drain(queue, clients)
    refused = sum(400 <= status < 500 for status in answers)
    ok = median <= RATIO_TARGET * idle and not errors and refused == len(answers)
    verdict = ("met" if ok else "MISSED") if judged else "not judged"
    print(f"  flooded with {what}: {len(answers)} answered (~{len(answers) / (seconds + 3):.0f}/s), {refused} 4xx")
    print(
        f"    a normal POST /detect meanwhile: median {median:.0f} ms ({len(errors)} errors), "
        f"{median / idle:.2f}x the idle median (target <= {RATIO_TARGET:.0f}x): {verdict}"
    )
    return ok


def drain(queue: Any, clients: list[Any]) -> list[int]:
    answers: list[int] = []
    while True:
        try:
            answers.append(queue.get(timeout=1))
        except Empty:
            if not any(client.is_alive() for client in clients):
                break
    for client in clients:
        client.join()
    return answers


def main() -> int:
    base = os.environ.get("BASE") or None
    repeats = int(os.environ.get("BOMB_REPEATS", "5"))
    count = int(os.environ.get("FLOOD_REQUESTS", "40"))
    env = runtime_env(base)
    print(f"Runtime: {Path(base) / 'lambda_src' if base else REPO_ROOT / 'lambda_src'}")
    made, normal = bombs(), normal_frame()
    each_bomb(made, normal, env, repeats)
    return 0 if flood(made, normal, env, count) else 1


if __name__ == "__main__":
    sys.exit(main())
