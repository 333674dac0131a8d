"""Fixtures for the local-mode tests: real HTTP servers on free ports, over a temporary data directory."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from liveness.faces import Analyzer
from liveness.wiring import build_dependencies

from local.connections import ConnectionLimits
from local.server import LocalServer, local_settings
from local.tarpit import RefusalTarpit
from tests.local.support import ALLOWED_ORIGINS

StartServer = Callable[..., LocalServer]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "local-data"


@pytest.fixture
def start_server(data_dir: Path) -> Iterator[StartServer]:
    """Start a server in a thread: real wiring from local settings, with the analyzer a test chooses.

    The environment is not read (a developer's ANALYZER or DATA_DIR must not leak into tests)."""
    servers: list[LocalServer] = []

    def start(
        analyzer: Analyzer,
        *,
        directory: Path | None = None,
        web_dir: Path | None = None,
        limits: ConnectionLimits | None = None,
        tarpit: RefusalTarpit | None = None,
        **env: str,
    ) -> LocalServer:
        settings = local_settings(
            data_dir=directory or data_dir, port=0, env={"ALLOWED_ORIGINS": ALLOWED_ORIGINS, **env}
        )
        deps = dataclasses.replace(build_dependencies(settings), analyzer=analyzer)
        server = LocalServer(deps=deps, port=0, web_dir=web_dir, limits=limits, tarpit=tarpit).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
