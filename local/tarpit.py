"""A tarpit for refusals: a peer that keeps being refused waits for each further refusal.

The front counts, per peer IP (a header such as X-Local-User costs nothing to rotate; an address does), the 4xx
answers it gave in the last ``window`` seconds. Up to ``allowance`` of them are answered at once. Each further
one is held for ``penalty`` seconds before it is written, doubling with each refusal past the allowance up to
``longest_hold_factor`` times the penalty. A client that waits for its answers, as a flood of closed-loop clients
does, is slowed to a few requests a second; 2xx and 3xx answers are never held, so neither is a genuine client's
accepted frame. The hold runs in the connection's own thread, never in a worker process.

Holds are bounded: at most ``max_held_per_peer`` answers held at once for one peer and ``max_held`` in all;
past either, the refusal is answered at once. So held connections never take more than ``max_held`` of the
connection cap's places. At most ``max_peers`` peers are remembered; the one seen least recently is forgotten.
See docs/security.md for what this does not stop.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

PENALTY_ENV = "LOCAL_REFUSAL_PENALTY_MS"
DEFAULT_PENALTY_MS = 500
LONGEST_PENALTY_MS = 10_000  # a hold keeps a thread: longer ones are refused as a setting


@dataclass(frozen=True)
class TarpitRules:
    penalty: float = DEFAULT_PENALTY_MS / 1000  # seconds; 0 turns the tarpit off
    allowance: int = 5
    window: float = 10.0
    longest_hold_factor: float = 4.0
    max_held_per_peer: int = 16
    max_held: int = 32
    max_peers: int = 1024

    @property
    def longest_hold(self) -> float:
        return self.penalty * self.longest_hold_factor


def penalty_seconds(raw: str | None) -> float:
    """``LOCAL_REFUSAL_PENALTY_MS`` (or --refusal-penalty-ms): the first hold, in milliseconds; 0 is off."""
    if raw is None or not str(raw).strip():
        return DEFAULT_PENALTY_MS / 1000
    milliseconds = int(raw)
    if not 0 <= milliseconds <= LONGEST_PENALTY_MS:
        raise ValueError(f"the refusal penalty must be 0 to {LONGEST_PENALTY_MS} ms, not {milliseconds}")
    return milliseconds / 1000


def peer_key(address: str) -> str:
    """Who is counted: one IPv4 address, one IPv6 /64 (what one host is usually given), and all of loopback as one
    peer, since any local process may send from any 127.0.0.0/8 address without privileges."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def is_held_status(status: int) -> bool:
    """Refusals of what the client sent. A 408 is not: the client's own slowness already cost it the time, and
    holding it longer would only keep its place taken. 5xx (the front's 503 SERVER_BUSY included) are ours."""
    return 400 <= status < 500 and status != 408


class RefusalTarpit:
    """Thread-safe. ``clock`` (monotonic seconds) and ``sleep`` are injected so the policy can be tested."""

    def __init__(
        self,
        rules: TarpitRules,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rules = rules
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._refusals: OrderedDict[str, deque[float]] = OrderedDict()  # least recently seen first
        self._held: dict[str, int] = {}  # only peers with an answer held now: at most max_held entries
        self._held_total = 0

    def hold(self, peer: str) -> float:
        """Record a refusal to ``peer`` and wait out its penalty, if any; return the seconds held."""
        seconds = self.take(peer)
        if seconds:
            try:
                self._sleep(seconds)
            finally:
                self.release(peer)
        return seconds

    def take(self, peer: str) -> float:
        """Record a refusal; return its hold (0: answer at once). A hold > 0 keeps a place until ``release``."""
        rules = self.rules
        if rules.penalty <= 0:
            return 0.0
        with self._lock:
            excess = self._record(peer) - rules.allowance
            if excess <= 0 or not self._has_room(peer):
                return 0.0
            self._held[peer] = self._held.get(peer, 0) + 1
            self._held_total += 1
            return float(min(rules.penalty * 2 ** (excess - 1), rules.longest_hold))

    def release(self, peer: str) -> None:
        with self._lock:
            left = self._held.get(peer, 0) - 1
            if left < 0:
                return
            self._held_total -= 1
            if left:
                self._held[peer] = left
            else:
                del self._held[peer]

    def held(self, peer: str | None = None) -> int:
        """Answers held now, for one peer or in all."""
        with self._lock:
            return self._held_total if peer is None else self._held.get(peer, 0)

    def peers(self) -> int:
        with self._lock:
            return len(self._refusals)

    def _record(self, peer: str) -> int:
        """Add a refusal now; return the peer's refusals within the window, this one included."""
        now = self._clock()
        times = self._refusals.pop(peer, None)
        if times is None:
            # Enough to count past the point where the hold stops growing; older refusals add nothing.
            times = deque(maxlen=self.rules.allowance + 32)
        while times and times[0] <= now - self.rules.window:
            times.popleft()
        times.append(now)
        self._refusals[peer] = times  # now the most recently seen
        while len(self._refusals) > self.rules.max_peers:
            self._refusals.popitem(last=False)
        return len(times)

    def _has_room(self, peer: str) -> bool:
        return self._held_total < self.rules.max_held and self._held.get(peer, 0) < self.rules.max_held_per_peer
