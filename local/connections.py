"""How the local front holds against slow or hostile clients: read deadlines, a connection cap, strict framing.

- **Idle timeout**: a connection that sends nothing for ``idle_timeout`` seconds is closed (no answer when it
  never sent a byte, else ``408 REQUEST_TIMEOUT``).
- **Read timeout**: a request's line, headers and body must all arrive within ``read_timeout`` seconds of its
  first read, however slowly they trickle in (slowloris).
- **Connection cap**: at most ``max_connections`` connections are served at once, one thread each. A connection
  over the cap waits in a bounded queue, handled by one admitting thread: if the connection that has been
  reading its request the longest has been at it for ``eviction_grace`` seconds, it is closed to make room (a
  slow client: a request already read is never closed); if no place frees within ``slot_wait`` seconds, the
  newcomer gets ``503 SERVER_BUSY`` with ``Retry-After``. A waiting connection never has a thread of its own.
- **Framing**: conflicting or malformed ``Content-Length`` headers, or ``Content-Length`` with
  ``Transfer-Encoding``, are a ``400``; a chunked body whose declared chunk sizes pass the payload limit is a
  ``413`` as soon as the size line is read, before any of its bytes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from werkzeug.serving import DechunkedInput

log = logging.getLogger("local.server")


@dataclass(frozen=True)
class ConnectionLimits:
    idle_timeout: float = 5.0
    read_timeout: float = 15.0
    max_connections: int = 128
    eviction_grace: float = 1.0
    slot_wait: float = 1.0


class BodyTooLarge(OSError):
    """A chunked body that declares more bytes than the front accepts."""


class FramingError(ValueError):
    """Headers that do not say unambiguously where the body ends (the ground of request smuggling)."""


def check_framing(headers: Message) -> None:
    """At most one Content-Length value, all digits, and never together with Transfer-Encoding."""
    lengths = headers.get_all("Content-Length") or []
    values = {part.strip() for value in lengths for part in value.split(",")}
    if len(values) > 1 or any(not value.isdigit() for value in values):
        raise FramingError("conflicting or malformed Content-Length")
    if values and headers.get("Transfer-Encoding") is not None:
        raise FramingError("Content-Length together with Transfer-Encoding")


class DeadlineReader(io.RawIOBase):
    """The connection's raw input: each read waits at most the idle timeout, and no longer than what is left of
    the current request's read deadline. The socket's timeout is restored after each read, so writes keep theirs."""

    def __init__(self, connection: socket.socket, limits: ConnectionLimits) -> None:
        self._connection = connection
        self._limits = limits
        self._deadline = time.monotonic() + limits.read_timeout
        self.received = 0
        self.timed_out = False
        self.reading_since: float | None = time.monotonic()  # None once the request is read
        self.evicted = False

    def readable(self) -> bool:
        return True

    def start_request(self) -> None:
        self.reading_since = time.monotonic()
        self._deadline = self.reading_since + self._limits.read_timeout
        self.received = 0
        self.timed_out = False

    def request_read(self) -> None:
        """The whole request has arrived: from now on the connection is never evicted."""
        self.reading_since = None

    def evict(self) -> None:
        """Make room for a newcomer: the reading thread sees the end of the stream and lets the connection go."""
        self.evicted = True
        with contextlib.suppress(OSError):
            self._connection.shutdown(socket.SHUT_RDWR)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        remaining = self._deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError("the request's read deadline passed")
            self._connection.settimeout(min(self._limits.idle_timeout, remaining))
            count = self._connection.recv_into(buffer)
        except TimeoutError:
            self.timed_out = True
            raise
        finally:
            with contextlib.suppress(OSError):
                self._connection.settimeout(self._limits.idle_timeout)
        self.received += count
        return count


class BoundedDechunkedInput(DechunkedInput):
    """Werkzeug's chunked-body reader, refusing a chunk size line that takes the body past ``limit`` at once
    instead of waiting for bytes that may never come (a size of FFFFFFFFFFFFFFFF)."""

    def __init__(self, rfile: io.BufferedIOBase, limit: int) -> None:
        super().__init__(rfile)  # type: ignore[arg-type]
        self._limit = limit
        self._declared = 0

    def read_chunk_len(self) -> int:
        length = super().read_chunk_len()
        self._declared += length
        if self._declared > self._limit:
            raise BodyTooLarge("a chunk size passes the payload limit")
        return length


class ConnectionCap:
    """At most ``limits.max_connections`` connections at once (see the module's docstring).

    ``serve(connection, address)`` starts a connection's thread, with its place already taken; the thread calls
    ``release()`` when it ends. ``refusal()`` is the raw 503 sent to a connection that found no place."""

    _QUEUE = 64
    _WAIT_FOR_REQUEST_SECONDS = 0.2

    def __init__(
        self, limits: ConnectionLimits, *, serve: Callable[[socket.socket, Any], None], refusal: Callable[[], bytes]
    ) -> None:
        self._limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._serve = serve
        self._refusal = refusal
        self._waiting: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue(self._QUEUE)
        self._readers: set[DeadlineReader] = set()
        self._readers_lock = threading.Lock()
        self._last_warning = 0.0
        threading.Thread(target=self._admit_forever, name="local-api-admissions", daemon=True).start()

    def admit(self, connection: socket.socket, address: Any) -> None:
        """From the accepting thread: serve now if there is a place, else queue (never block the accepting)."""
        if self._slots.acquire(blocking=False):
            self._start(connection, address)
            return
        try:
            self._waiting.put_nowait((connection, address))
        except queue.Full:  # a flood: the queue is bounded, the rest are only closed
            _close(connection)

    def release(self) -> None:
        self._slots.release()

    def track(self, reader: DeadlineReader) -> None:
        with self._readers_lock:
            self._readers.add(reader)

    def untrack(self, reader: DeadlineReader) -> None:
        with self._readers_lock:
            self._readers.discard(reader)

    def close(self) -> None:
        self._waiting.put(None)  # the admitting thread ends once the connections before it are handled

    def _start(self, connection: socket.socket, address: Any) -> None:
        try:
            self._serve(connection, address)
        except BaseException:
            self._slots.release()
            _close(connection)
            raise

    def _admit_forever(self) -> None:
        while (waiting := self._waiting.get()) is not None:
            connection, address = waiting
            self._evict_the_slowest_reader()
            if self._slots.acquire(timeout=self._limits.slot_wait):
                with contextlib.suppress(Exception):
                    self._start(connection, address)
            else:
                self._refuse(connection)

    def _evict_the_slowest_reader(self) -> None:
        started_before = time.monotonic() - self._limits.eviction_grace
        with self._readers_lock:
            readers = [r for r in self._readers if r.reading_since is not None and r.reading_since <= started_before]
            slowest = min(readers, key=lambda reader: reader.reading_since or 0.0, default=None)
            if slowest is not None:
                self._readers.discard(slowest)
        if slowest is not None:
            slowest.evict()

    def _refuse(self, connection: socket.socket) -> None:
        """Wait a moment for the request, so the client reads the answer instead of a reset."""
        now = time.monotonic()
        if now - self._last_warning > 1.0:  # one line a second, however many are refused
            self._last_warning = now
            log.warning("Connection refused: %d connections open", self._limits.max_connections)
        try:
            select.select([connection], [], [], self._WAIT_FOR_REQUEST_SECONDS)
            _drain(connection)
            connection.settimeout(self._WAIT_FOR_REQUEST_SECONDS)
            connection.sendall(self._refusal())
        except OSError:
            pass
        finally:
            _close(connection)


def _drain(connection: socket.socket) -> None:
    """Read what has arrived, so closing sends a FIN after the answer rather than a reset that may discard it."""
    with contextlib.suppress(OSError):
        connection.setblocking(False)
        for _ in range(16):  # bounded: a client streaming a large body is not read to its end
            if not connection.recv(65536):
                return


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
    with contextlib.suppress(OSError):
        connection.close()
