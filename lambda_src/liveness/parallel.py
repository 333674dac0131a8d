"""A request's independent I/O calls at once: a frame's archive writes run alongside its analysis.

boto3 clients are thread-safe (resources are not, and none is used), and the file archive writes each object
through its own descriptor. One small pool per process (per Lambda execution environment): a request needs
at most three calls in flight (the analysis in the request's own thread, the frame's PUT, the reference GET).

Every caller waits for every call it started before it answers, whether the request succeeds or fails: the
answer never reports a write that has not completed, and no call is left running while Lambda freezes the
environment between requests.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

MAX_WORKERS = 4

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_serial = threading.local()  # the benchmark's "today's order": each call runs at once, in the caller's thread


def start(call: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``call(*args)`` in the background; the caller must ``wait`` for (or take the result of) the future."""
    if getattr(_serial, "on", False):
        future: Future[T] = Future()
        try:
            future.set_result(call(*args))
        except BaseException as error:  # noqa: BLE001 - handed to whoever takes the result, as a pool would
            future.set_exception(error)
        return future
    return _executor().submit(call, *args)


def wait(*futures: Future[Any] | None) -> None:
    """Wait until every given call has finished, successfully or not (their errors stay in the futures)."""
    for future in futures:
        if future is not None:
            future.exception()


def succeeded(future: Future[Any]) -> bool:
    """Waits for the call; True if it returned."""
    return future.exception() is None


@contextlib.contextmanager
def one_at_a_time() -> Iterator[None]:
    """Within this block (in this thread), ``start`` runs each call before returning: the calls happen one
    after another, as they did before this module existed. Only the latency benchmark uses it, to measure
    the serial order side by side with the parallel one."""
    previous = getattr(_serial, "on", False)
    _serial.on = True
    try:
        yield
    finally:
        _serial.on = previous


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:  # created on first use: threads never exist before a fork or a snapshot needs them
            _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="liveness-io")
        return _pool
