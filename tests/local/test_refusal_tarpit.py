"""The refusal tarpit over real HTTP (local/tarpit.py wired into local/server.py): past the allowance a peer's
refusals are held before they are written, its accepted frames never are, held answers stay bounded, and the
count follows the peer's address, not its X-Local-User.

The tarpit's sleep is injected: the tests see the holds the front asked for, and never measure time (the bounds
are HANG_SECONDS, which tell "answered" from "hung")."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from local.tarpit import RefusalTarpit, TarpitRules
from tests.local.conftest import StartServer
from tests.local.support import astronaut_bgr, call, data_url, jpeg
from tests.local.test_front_limits import HANG_SECONDS, exchange
from tests.runtime.session_helpers import ScriptedAnalyzer

NOT_AN_IMAGE = {"image_bytes": "aGVsbG8="}  # base64 of "hello": refused before any analysis
OTHER_ADDRESS = "127.0.0.2"  # loopback too: any local process may send from it
TWO_LENGTHS = b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 0\r\n\r\n"


def test_refusals_past_the_allowance_are_held_and_an_accepted_frame_is_not(
    start_server: StartServer, mesh_analyzer: Any
) -> None:
    holds: list[float] = []
    tarpit = RefusalTarpit(TarpitRules(penalty=0.5, allowance=2), sleep=holds.append)
    server = start_server(mesh_analyzer, tarpit=tarpit)

    refused = [call(server.url, "POST", "/detect", NOT_AN_IMAGE).status for _ in range(3)]
    assert refused == [415, 415, 415]
    assert holds == [0.5]  # the first two within the allowance, the third held

    face = call(server.url, "POST", "/detect", {"image_bytes": data_url(jpeg(astronaut_bgr()))})
    assert face.status == 200, face.raw
    assert holds == [0.5]  # the same address, right after: not held

    assert exchange(server.url, TWO_LENGTHS)[0] == 400  # refused by the HTTP layer, before any route
    assert call(server.url, "GET", "/no/such/route").status == 403
    assert holds == [0.5, 1.0, 2.0]  # held too, longer each time
    assert tarpit.held() == 0


def test_a_peer_past_its_held_answers_is_answered_at_once(start_server: StartServer) -> None:
    holds: list[float] = []
    let_go = threading.Event()

    def held_until_let_go(seconds: float) -> None:
        holds.append(seconds)
        let_go.wait(HANG_SECONDS)

    tarpit = RefusalTarpit(TarpitRules(penalty=0.5, allowance=0, max_held_per_peer=1), sleep=held_until_let_go)
    server = start_server(ScriptedAnalyzer(), tarpit=tarpit)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(call, server.url, "POST", "/detect", NOT_AN_IMAGE)
        waited = time.monotonic() + HANG_SECONDS
        while tarpit.held() == 0 and time.monotonic() < waited:
            time.sleep(0.01)
        assert tarpit.held() == 1, "the first refusal was never held"

        second = call(server.url, "POST", "/detect", NOT_AN_IMAGE)  # answered while the first is still held
        assert second.status == 415 and second.header("Connection") == "close"
        assert not first.done() and holds == [0.5]

        let_go.set()
        assert first.result(timeout=HANG_SECONDS).status == 415
    assert tarpit.held() == 0


def refused_from(url: str, address: str, user: str) -> int:
    """A refused /detect sent from the given local address, as the given X-Local-User."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=HANG_SECONDS, source_address=(address, 0)
    )
    try:
        body = json.dumps(NOT_AN_IMAGE).encode()
        connection.request(
            "POST", "/detect", body=body, headers={"Content-Type": "application/json", "X-Local-User": user}
        )
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_count_follows_the_address_not_the_user_header_and_loopback_is_one_peer(start_server: StartServer) -> None:
    holds: list[float] = []
    tarpit = RefusalTarpit(TarpitRules(penalty=0.5, allowance=2), sleep=holds.append)
    server = start_server(ScriptedAnalyzer(), tarpit=tarpit)
    statuses = [refused_from(server.url, "127.0.0.1", f"user-{index}") for index in range(4)]
    assert statuses == [415] * 4 and holds == [0.5, 1.0]  # a new user name each time changes nothing
    assert refused_from(server.url, OTHER_ADDRESS, "user-0") == 415
    assert holds == [0.5, 1.0, 2.0]  # another loopback address is the same peer: no way out by rotating them
