"""How the local front holds against slow or hostile clients: read deadlines, a connection cap, strict framing.

- **Idle timeout**: a connection that sends nothing for ``idle_timeout`` seconds is closed (no answer when it
  never sent a byte, else ``408 REQUEST_TIMEOUT``).
- **Read timeout**: a request's line, headers and body must all arrive within ``read_timeout`` seconds of its
  first read, however slowly they trickle in (slowloris).
- **Connection cap**: at most ``max_connections`` connections are served at once, one thread each. Others get an
  immediate ``503 SERVER_BUSY`` with ``Retry-After`` from one refusing thread; they never wait and never get a
  thread of their own.
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

from werkzeug.serving import DechunkedInput

log = logging.getLogger("local.server")


@dataclass(frozen=True)
class ConnectionLimits:
    idle_timeout: float = 5.0
    read_timeout: float = 15.0
    max_connections: int = 128


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

    def readable(self) -> bool:
        return True

    def start_request(self) -> None:
        self._deadline = time.monotonic() + self._limits.read_timeout
        self.received = 0
        self.timed_out = False

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
    """At most ``limit`` connections at once. Over it, one refusing thread answers a fixed 503 and closes: it
    waits a moment for the request so the client reads the answer instead of a reset."""

    _REFUSAL_QUEUE = 64
    _WAIT_FOR_REQUEST_SECONDS = 0.2

    def __init__(self, limit: int, refusal: Callable[[], bytes]) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._refusal = refusal
        self._refused: queue.Queue[socket.socket | None] = queue.Queue(self._REFUSAL_QUEUE)
        threading.Thread(target=self._refuse_forever, name="local-api-refusals", daemon=True).start()

    def try_acquire(self) -> bool:
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        self._slots.release()

    def refuse(self, connection: socket.socket) -> None:
        try:
            self._refused.put_nowait(connection)
        except queue.Full:  # a flood: the refusals themselves are bounded, the rest are only closed
            _close(connection)

    def close(self) -> None:
        self._refused.put(None)  # the refusing thread ends once the refusals before it are sent

    def _refuse_forever(self) -> None:
        while (connection := self._refused.get()) is not None:
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
        for _ in range(16):  # bounded: a client streaming a large body is not read to its end
            if not connection.recv(65536, socket.MSG_DONTWAIT):
                return


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
    with contextlib.suppress(OSError):
        connection.close()
