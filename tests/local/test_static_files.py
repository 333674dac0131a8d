"""The web client's files in local mode: the deployed site's security headers, resolved paths that never leave
web/, and a path no file could have answered without a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from liveness import web_security

from tests.local.conftest import StartServer
from tests.local.support import call
from tests.local.test_front_limits import exchange
from tests.runtime.session_helpers import ScriptedAnalyzer

DEPLOYED_HEADERS = {
    "Content-Security-Policy": web_security.content_security_policy("", ""),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def web(tmp_path: Path) -> Path:
    folder = tmp_path / "web"
    (folder / "js").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>liveness</h1>")
    (folder / "js" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside web/")
    return folder


@pytest.mark.parametrize("path", ["/", "/index.html", "/js/app.js", "/config.json"])
def test_every_file_carries_the_deployed_security_headers(start_server: StartServer, web: Path, path: str) -> None:
    server = start_server(ScriptedAnalyzer(), web_dir=web)
    reply = call(server.url, "GET", path)
    assert reply.status == 200
    assert {name: reply.header(name) for name in DEPLOYED_HEADERS} == DEPLOYED_HEADERS
    assert "frame-ancestors 'none'" in reply.header("Content-Security-Policy")


def test_a_symlink_out_of_web_is_not_served_one_inside_is(start_server: StartServer, web: Path) -> None:
    (web / "leak.txt").symlink_to(web.parent / "secret.txt")
    (web / "outside").symlink_to(web.parent, target_is_directory=True)
    (web / "alias.js").symlink_to(web / "js" / "app.js")
    server = start_server(ScriptedAnalyzer(), web_dir=web)
    assert call(server.url, "GET", "/leak.txt").status == 403
    assert call(server.url, "GET", "/outside/secret.txt").status == 403
    assert call(server.url, "GET", "/alias.js").raw == b"console.log(1)"


@pytest.mark.parametrize("target", ["/../secret.txt", "/js/../../secret.txt", "/%2e%2e/secret.txt"])
def test_dot_dot_never_leaves_web(start_server: StartServer, web: Path, target: str) -> None:
    server = start_server(ScriptedAnalyzer(), web_dir=web)
    status, _, body = exchange(server.url, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status in (400, 403, 404) and b"outside web/" not in body


def test_dot_dot_inside_web_resolves(start_server: StartServer, web: Path) -> None:
    server = start_server(ScriptedAnalyzer(), web_dir=web)
    status, _, body = exchange(server.url, b"GET /js/../index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (status, body) == (200, b"<h1>liveness</h1>")


def test_a_path_segment_longer_than_a_file_name_is_404_without_a_traceback(
    start_server: StartServer, web: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(ScriptedAnalyzer(), web_dir=web)
    with caplog.at_level(logging.INFO):
        for path in (f"/{'a' * 300}", f"/js/{'b' * 256}.js", f"/{'c' * 300}/index.html"):
            reply = call(server.url, "GET", path)
            assert reply.status == 404 and reply.json["code"] == "NOT_FOUND"
    assert [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR] == []
