"""``make bench-slowloris``: how a normal request fares while slow clients hold connections to ``make run``'s server.

Starts ``python -m local`` (WORKERS=1, files under a temporary directory, the refusal tarpit off: the probe is a
refusal itself) on 127.0.0.1, then measures the median latency of ``GET /sessions/{id}`` (a 404 from the real
handler) three times in the same run:

1. idle;
2. while SLOW_CLIENTS connections trickle a header byte each second, never finishing (under the connection cap);
3. while FLOOD_CLIENTS do the same (over the cap: the busy ones are refused with 503 at once).

Each slow client reconnects when the server cuts it (the read timeout), so the pressure never stops. Prints each
median, its ratio to the idle one, the share of answers that were 503 SERVER_BUSY, and the server's thread count
(Linux). Nothing is asserted: the figures go to docs/local-mode.md.
"""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
SLOW_CLIENTS = 100
FLOOD_CLIENTS = 400
REQUESTS = 200
SESSION_PATH = "/sessions/00000000-0000-4000-8000-000000000001"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_server(port: int, data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "WORKERS": "1", "PYTHONUNBUFFERED": "1"}
    env["LOCAL_REFUSAL_PENALTY_MS"] = "0"  # the probe is a 404 on purpose (the handler's cheapest answer): never held
    command = [sys.executable, "-m", "local", "--port", str(port), "--data-dir", str(data_dir)]
    command += ["--web-dir", str(data_dir / "no-web")]
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    for line in server.stdout:
        if line.startswith("Press Ctrl-C"):
            threading.Thread(target=server.stdout.read, daemon=True).start()  # keep the pipe drained
            return server
    raise RuntimeError("the server did not start")


def one_request(port: int) -> tuple[float, int]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", SESSION_PATH)
        response = connection.getresponse()
        response.read()
        return (time.perf_counter() - started) * 1000, response.status
    finally:
        connection.close()


def measure(port: int) -> tuple[float, float]:
    """The median latency in ms, and the share of 503 answers."""
    answers = []
    for _ in range(REQUESTS):
        answers.append(one_request(port))
        time.sleep(0.005)
    return statistics.median(ms for ms, _ in answers), sum(status == 503 for _, status in answers) / len(answers)


def trickle(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection((HOST, port), timeout=5) as connection:
                connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                while not stop.wait(1.0):
                    connection.sendall(b"X")
        except OSError:
            stop.wait(0.1)  # cut or refused: come back


def server_threads(pid: int) -> str:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return "n/a"
    return next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("Threads:"))


def under_slowloris(port: int, pid: int, clients: int) -> tuple[float, float, str]:
    stop = threading.Event()
    threads = [threading.Thread(target=trickle, args=(port, stop), daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # every slow client connected
    try:
        median, busy = measure(port)
        return median, busy, server_threads(pid)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        server = start_server(port, Path(folder))
        try:
            idle, _ = measure(port)
            print(f"idle:                      median {idle:6.1f} ms, threads {server_threads(server.pid)}")
            for clients in (SLOW_CLIENTS, FLOOD_CLIENTS):
                median, busy, threads = under_slowloris(port, server.pid, clients)
                print(
                    f"{clients:4d} slow connections:     median {median:6.1f} ms ({median / idle:4.1f}x idle), "
                    f"503 SERVER_BUSY {busy:5.1%}, server threads {threads}"
                )
        finally:
            server.terminate()
            server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
