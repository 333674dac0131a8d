"""``make load``: many users at once against ``make run``'s server, on loopback only, bounded in count and time.

Starts ``python -m local`` (the real handler, the embedded analyzer, files under a temporary directory, WORKERS
worker processes) on 127.0.0.1, then:

1. 32 concurrent clients on ``POST /detect``, each sending DETECT_ROUNDS frames one after another;
2. 16 concurrent sessions, each driven by a client that creates it and posts SESSION_FRAMES frames, one at a
   time (each waits for the answer to the previous one, as the web client does).

Prints throughput and p50/p99 latency for each, and checks that nothing failed and nothing was lost: every
request answered 2xx, every /detect answer's two archive objects exist, every session's frame count equals the
frames it was sent, and every frame's upload is in the archive. Targets on a 2-core machine: p99 <= 500 ms, no
error, nothing lost. LOAD_SECONDS bounds the whole run.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from skimage import data as skimage_data

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
P99_TARGET_MS = 500.0


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    cpu_seconds: float | None = None  # the server's and its workers' CPU time, and the load generator's
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, ms: float, error: str | None = None) -> None:
        with self.lock:
            self.latencies_ms.append(ms)
            if error:
                self.errors.append(error)

    def report(self) -> bool:
        count = len(self.latencies_ms)
        seconds = self.ended - self.started
        ordered = sorted(self.latencies_ms)
        p50 = statistics.median(ordered) if ordered else float("nan")
        p99 = ordered[min(count - 1, int(round(0.99 * count)) - 1)] if ordered else float("nan")
        ok = p99 <= P99_TARGET_MS and not self.errors and not self.lost
        print(
            f"  {self.name:34} {count:5d} requests in {seconds:5.1f} s  {count / seconds:6.1f}/s  "
            f"p50 {p50:6.0f} ms  p99 {p99:6.0f} ms  errors {len(self.errors)}  lost {len(self.lost)}  "
            f"{'met' if ok else 'MISSED'}"
        )
        if self.cpu_seconds is not None:
            cores = os.cpu_count() or 1
            share = self.cpu_seconds / (seconds * cores)
            print(
                f"    CPU used by the server, its workers and the clients: {self.cpu_seconds:.1f} s of "
                f"{seconds * cores:.1f} core-seconds ({share:.0%}; the rest went to other processes on the machine)"
            )
        for problem in (self.errors + self.lost)[:5]:
            print(f"    {problem}")
        return ok


def post(
    port: int, method: str, path: str, body: Any = None, timeout: float = 60, user: str | None = None
) -> tuple[int, dict[str, Any]]:
    """``user``: whom the local gateway takes the caller for (each session client is its own person)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if user is not None:
            headers["X-Local-User"] = user
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, (json.loads(raw) if raw else {})
    finally:
        connection.close()


def timed(phase: Phase, call: Callable[[], tuple[int, dict[str, Any]]], what: str) -> dict[str, Any] | None:
    started = time.perf_counter()
    try:
        status, body = call()
    except OSError as error:
        phase.record((time.perf_counter() - started) * 1000, f"{what}: {type(error).__name__}")
        return None
    ms = (time.perf_counter() - started) * 1000
    if not 200 <= status < 300:
        phase.record(ms, f"{what}: {status} {body.get('code')}")
        return None
    phase.record(ms)
    return body


def frames(count: int) -> list[str]:
    """Distinct JPEGs of one real face (a repeated frame is answered without analysis)."""
    bgr = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    bgr = cv2.resize(bgr, (640, 640))[80:560]  # 640x480, as a webcam sends
    images = []
    for index in range(count):
        marked = bgr.copy()
        marked[:8, :8] = index * 4 % 256  # one corner block differs: distinct uploads (bytes after the end are refused)
        raw = cv2.imencode(".jpg", marked, [cv2.IMWRITE_JPEG_QUALITY, 70 + index % 25])[1].tobytes()
        images.append("data:image/jpeg;base64," + base64.b64encode(raw).decode())
    return images


def run_detect(port: int, archive: Path, clients: int, rounds: int, images: list[str], deadline: float) -> Phase:
    phase = Phase(f"POST /detect, {clients} clients")

    def client(index: int) -> None:
        for round_index in range(rounds):
            if time.monotonic() > deadline:
                phase.errors.append("stopped at LOAD_SECONDS")
                return
            image = images[(index * rounds + round_index) % len(images)]
            body = timed(phase, lambda image=image: post(port, "POST", "/detect", {"image_bytes": image}), "detect")
            if body is not None:
                for key in (body["archive"]["frameKey"], body["archive"]["faceKey"]):
                    if not (archive / key).is_file():
                        phase.lost.append(f"not archived: {key}")

    return _run_clients(phase, clients, client)


def run_sessions(port: int, archive: Path, sessions: int, count: int, images: list[str], deadline: float) -> Phase:
    phase = Phase(f"session frames, {sessions} sessions")

    def client(index: int) -> None:
        user = f"load-user-{index}"  # many people at once, each within the per-user attempt limits
        status, created = post(port, "POST", "/sessions", {}, user=user)
        if status != 201:
            phase.errors.append(f"create: {status} {created.get('code')}")
            return
        session_id = created["sessionId"]
        sent = 0
        for frame_index in range(count):
            if time.monotonic() > deadline:
                phase.errors.append("stopped at LOAD_SECONDS")
                break
            image = images[(index * count + frame_index) % len(images)]
            path = f"/sessions/{session_id}/frames"
            answer = timed(
                phase, lambda image=image, path=path: post(port, "POST", path, {"image": image}, user=user), "frame"
            )
            if answer is None:
                break
            sent += 1
        status, view = post(port, "GET", f"/sessions/{session_id}", user=user)
        if status != 200 or view.get("framesReceived") != sent:
            phase.lost.append(f"session {session_id}: {sent} frames answered, {view.get('framesReceived')} received")
        uploads = [p for p in (archive / "sessions" / session_id / "frames").glob("*") if "-face" not in p.name]
        if len(uploads) != sent:
            phase.lost.append(f"session {session_id}: {sent} frames answered, {len(uploads)} archived")

    return _run_clients(phase, sessions, client)


def _run_clients(phase: Phase, clients: int, client: Callable[[int], None]) -> Phase:
    """All clients at once, one thread each; the phase is timed from the first start to the last end."""
    phase.started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    phase.ended = time.perf_counter()
    return phase


def cpu_seconds(server_pid: int) -> float | None:
    """CPU time (user + system) of the server, its worker processes and this process, from /proc (Linux)."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        pids = [server_pid]
        for task in os.listdir(f"/proc/{server_pid}/task"):
            pids += [int(child) for child in Path(f"/proc/{server_pid}/task/{task}/children").read_text().split()]
        total = 0.0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return None
    own = os.times()
    return total + own.user + own.system


def measured(server_pid: int, run: Callable[[], Phase]) -> Phase:
    before = cpu_seconds(server_pid)
    phase = run()
    after = cpu_seconds(server_pid)
    if before is not None and after is not None:
        phase.cpu_seconds = after - before
    return phase


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_server(data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "local", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir)]
    command += ["--web-dir", str(data_dir / "no-web")]
    server_env = {**env, "POWERTOOLS_LOG_LEVEL": "WARNING", "ANALYZER": "local", "STORAGE": "file"}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=server_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    banner = []
    for line in process.stdout:
        banner.append(line.rstrip())
        if line.startswith("Press Ctrl-C"):
            break
    else:
        raise RuntimeError("the server did not start:\n" + "\n".join(banner))
    print("\n".join(line for line in banner if "workers:" in line or "analyzer:" in line))
    return process


def main() -> int:
    env = dict(os.environ)
    env.setdefault("LOCAL_REFUSAL_PENALTY_MS", "0")  # every answer should be a 2xx; a refusal is not slowed
    detect_clients, sessions = 32, 16
    rounds = int(env.get("DETECT_ROUNDS", "8"))
    count = int(env.get("SESSION_FRAMES", "10"))
    deadline = time.monotonic() + float(env.get("LOAD_SECONDS", "300"))
    images = frames(64)
    with tempfile.TemporaryDirectory(prefix="liveness-load-") as folder:
        data_dir = Path(folder)
        port = free_port()
        server = start_server(data_dir, port, env)
        try:
            print(f"Load on http://{HOST}:{port}, {os.cpu_count()} CPUs:")
            archive = data_dir / "archive"
            detect = measured(server.pid, lambda: run_detect(port, archive, detect_clients, rounds, images, deadline))
            ok = detect.report()
            session_phase = measured(server.pid, lambda: run_sessions(port, archive, sessions, count, images, deadline))
            ok = session_phase.report() and ok
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"Targets: p99 <= {P99_TARGET_MS:.0f} ms, no error, nothing lost: {'met' if ok else 'MISSED'}.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
