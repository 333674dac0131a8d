"""Worker processes for the local server: each one a separate "Lambda execution environment".

The handler keeps per-request state in Powertools' globals (the resolver's current event, the logger's keys, the
metrics buffer), exactly as one Lambda environment does, so one process runs one event at a time. To serve many
users at once the server hands each event to a pool of processes, each with its own handler, its own analyzer
(models loaded once, at start) and its own clients; the stores are shared through the data directory (the file
store locks across processes). Processes are started with ``spawn``: a fork would copy the server's threads.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from liveness.settings import Settings

log = logging.getLogger("local.server")

# Each worker loads OpenCV and, in local mode, the face models: about 200-300 MB of memory each.
DEFAULT_WORKERS = os.cpu_count() or 1


def worker_count(raw: str | None) -> int:
    """``WORKERS`` (or --workers): how many worker processes; 1 runs the handler in the server's own process."""
    if raw is None or not str(raw).strip():
        return DEFAULT_WORKERS
    count = int(raw)
    if count < 1:
        raise ValueError(f"WORKERS must be at least 1, not {count}")
    return count


class WorkerPool:
    """``invoke(event, context)``: run the handler on the event in a free worker and return its answer.

    Each worker is its own single-process executor, lent to one call at a time: a worker that dies breaks only
    its executor, so only the call it was running fails; the others, on healthy workers, finish."""

    def __init__(
        self, settings: Settings, count: int, call: Callable[[dict[str, Any], Any], Any] | None = None
    ) -> None:
        """``call``: what a worker runs for each event (default: the handler); a module-level function."""
        self._settings = settings
        self.count = count
        self._call = call or _invoke
        self._lock = threading.Lock()
        self._workers = [self._start() for _ in range(count)]
        self._free: queue.Queue[ProcessPoolExecutor] = queue.Queue()
        for worker in self._workers:
            self._free.put(worker)

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._settings,),
        )

    def invoke(self, event: dict[str, Any], context: Any) -> Any:
        worker = self._free.get()
        try:
            try:
                running = worker.submit(self._call, event, context)
            except BrokenProcessPool:  # it died while idle: this call never ran, so it runs once on a fresh one
                log.error("A worker process died while idle; starting a new one")
                worker = self._replace(worker)
                running = worker.submit(self._call, event, context)
            return running.result()
        except BrokenProcessPool:
            # The worker died (killed, out of memory): this request fails like a crashed Lambda environment,
            # and a fresh worker takes its place (it loads its models on its first call).
            log.error("A worker process died; starting a new one")
            worker = self._replace(worker)
            raise
        finally:
            self._free.put(worker)

    def _replace(self, dead: ProcessPoolExecutor) -> ProcessPoolExecutor:
        dead.shutdown(wait=False, cancel_futures=True)
        fresh = self._start()
        with self._lock:
            self._workers[self._workers.index(dead)] = fresh
        return fresh

    def warm_up(self) -> None:
        """Start every worker and wait until each has loaded its handler and models."""
        with self._lock:
            workers = list(self._workers)
        for future in [worker.submit(_pid) for worker in workers]:
            future.result(timeout=300)

    def close(self) -> None:
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.shutdown(wait=True, cancel_futures=True)


def _start_worker(settings: Settings) -> None:
    import cv2

    # Ctrl-C reaches the whole process group: the server stops its workers itself, without their tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One OpenCV thread per worker: the workers are the parallelism, and threads beyond the cores only contend.
    cv2.setNumThreads(1)
    from liveness import handler
    from liveness.wiring import build_dependencies

    deps = build_dependencies(settings)
    warm_up = getattr(deps.analyzer, "warm_up", None)
    if callable(warm_up):
        warm_up()
    handler.warm_image_code()
    handler.use_dependencies(deps)


def _invoke(event: dict[str, Any], context: Any) -> Any:
    from liveness import handler

    return handler.lambda_handler(event, context)


def _pid() -> int:
    return os.getpid()
