"""The local server's worker processes: each request runs in a separate environment, several at once."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from local.server import LocalServer, local_settings
from local.workers import WorkerPool
from tests.local.support import ALLOWED_ORIGINS, astronaut_bgr, call, data_url, jpeg

WAIT_SECONDS = 60  # only a failing (serialised) pool ever waits this long


def meet_another(event: dict[str, Any], _context: Any) -> int:
    """Runs in a worker: announce this call, then wait until the other call has announced itself too. Two calls
    only both return if they run at the same moment, in different workers."""
    folder = Path(event["folder"])
    (folder / event["name"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if (folder / event["other"]).exists():
            return os.getpid()
        time.sleep(0.01)
    raise TimeoutError("the other call never ran alongside this one")


def test_the_pool_runs_calls_at_once_in_separate_processes(tmp_path: Path) -> None:
    settings = local_settings(data_dir=tmp_path / "data", port=0, env={"ALLOWED_ORIGINS": ALLOWED_ORIGINS})
    pool = WorkerPool(settings, 2, call=meet_another)
    try:
        events = [
            {"folder": str(tmp_path), "name": "a", "other": "b"},
            {"folder": str(tmp_path), "name": "b", "other": "a"},
        ]
        with ThreadPoolExecutor(2) as threads:
            pids = list(threads.map(lambda event: pool.invoke(event, None), events))
    finally:
        pool.close()
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_a_server_with_workers_serves_detections_and_sessions_together(tmp_path: Path) -> None:
    """The real handler in two workers, with the embedded analyzer: concurrent clients all get their answer."""
    settings = local_settings(data_dir=tmp_path / "data", port=0, env={"ALLOWED_ORIGINS": ALLOWED_ORIGINS})
    server = LocalServer(settings, port=0, web_dir=None, workers=2)
    server.warm_up()
    server.start()
    image = data_url(jpeg(astronaut_bgr()))
    errors: list[str] = []

    def detect(_: int) -> None:
        reply = call(server.url, "POST", "/detect", {"image_bytes": image})
        if reply.status != 200:
            errors.append(f"detect {reply.status}")

    def session(index: int) -> None:
        user = f"user-{index}"  # eight people at once: one user may hold only 3 sessions open (MAX_OPEN_SESSIONS)
        created = call(server.url, "POST", "/sessions", {}, user=user)
        session_id = created.json["sessionId"]
        reply = call(server.url, "POST", f"/sessions/{session_id}/frames", {"image": image}, user=user)
        if reply.status != 200:
            errors.append(f"frame {reply.status}")
        if call(server.url, "GET", f"/sessions/{session_id}", user=user).json["framesReceived"] != 1:
            errors.append("frame lost")

    try:
        with ThreadPoolExecutor(8) as threads:
            list(threads.map(detect, range(8)))
            list(threads.map(session, range(8)))
    finally:
        server.stop()
    assert errors == []


FIRST, SECOND = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


def meet_over_http(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """The same meeting, for two GET /sessions/{id} requests through the server (the ids name the calls)."""
    name = event["pathParameters"]["id"]
    other = SECOND if name == FIRST else FIRST
    pid = meet_another({"folder": os.environ["MEET_FOLDER"], "name": name, "other": other}, None)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"pid": pid})}


def test_the_server_does_not_serialise_calls_it_hands_to_workers(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("MEET_FOLDER", str(tmp_path))  # read by the workers, which start on the first request
    settings = local_settings(data_dir=tmp_path / "data", port=0, env={"ALLOWED_ORIGINS": ALLOWED_ORIGINS})
    server = LocalServer(settings, port=0, web_dir=None, workers=2)
    assert server.workers is not None
    server.workers._call = meet_over_http
    server.start()
    try:
        with ThreadPoolExecutor(2) as threads:
            replies = list(threads.map(lambda sid: call(server.url, "GET", f"/sessions/{sid}"), [FIRST, SECOND]))
    finally:
        server.stop()
    assert [reply.status for reply in replies] == [200, 200]
    assert len({reply.json["pid"] for reply in replies}) == 2


def die_while_another_runs(event: dict[str, Any], _context: Any) -> int:
    """Runs in a worker: "die" exits its process once "live" is running; "live" is still running when it does."""
    folder = Path(event["folder"])
    (folder / event["name"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_SECONDS
    while not (folder / event["other"]).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if event["name"] == "die":
        os._exit(1)
    time.sleep(1.0)  # the other worker's death is seen while this call is in flight
    return os.getpid()


def test_a_dead_worker_fails_only_its_own_call(tmp_path: Path) -> None:
    settings = local_settings(data_dir=tmp_path / "data", port=0, env={"ALLOWED_ORIGINS": ALLOWED_ORIGINS})
    pool = WorkerPool(settings, 2, call=die_while_another_runs)
    events = [
        {"folder": str(tmp_path), "name": "die", "other": "live"},
        {"folder": str(tmp_path), "name": "live", "other": "die"},
    ]
    try:
        with ThreadPoolExecutor(2) as threads:
            dying, living = (threads.submit(pool.invoke, event, None) for event in events)
            assert isinstance(dying.exception(timeout=WAIT_SECONDS), BrokenProcessPool)
            survivor = living.result(timeout=WAIT_SECONDS)
        (tmp_path / "die").unlink()
        (tmp_path / "live").unlink()
        after = pool.invoke({"folder": str(tmp_path), "name": "live", "other": "live"}, None)
    finally:
        pool.close()
    assert survivor > 0 and after > 0  # the healthy worker's call answered, and the pool serves on


def test_a_worker_that_died_while_idle_costs_no_call(tmp_path: Path) -> None:
    settings = local_settings(data_dir=tmp_path / "data", port=0, env={"ALLOWED_ORIGINS": ALLOWED_ORIGINS})
    pool = WorkerPool(settings, 1, call=pid_of_worker)
    try:
        first = pool.invoke({}, None)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + WAIT_SECONDS
        while _is_alive(first) and time.monotonic() < deadline:  # reaped once the pool marked itself broken
            time.sleep(0.01)
        second = pool.invoke({}, None)
    finally:
        pool.close()
    assert second != first


def pid_of_worker(_event: dict[str, Any], _context: Any) -> int:
    return os.getpid()


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
