"""The README's screenshots, with a real face in the fake camera (scikit-image's public-domain astronaut), in
English and Spanish: start, a step with its cue and coaching, a step done, passed with the reference face, a
failure that names its step, and a connection problem."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from local.server import LocalServer
from tests.browser.conftest import Launch, screenshot
from tests.browser.support import CooperativeAnalyzer, astronaut_y4m
from tests.browser.test_web_client import TIMEOUT_MS, status_is, web_server
from tests.browser.test_web_person import english_left
from tests.local.conftest import StartServer
from tests.local.test_web_catalogues import catalogue

pytestmark = pytest.mark.slow

LANGUAGES = ("en", "es")


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return astronaut_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m")


def open_in(launch: Launch, server: LocalServer, camera: Path, language: str, query: str = "") -> Any:
    context = launch(video=camera).new_context(viewport={"width": 1024, "height": 768}, locale=language)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server.url}/{query}")
    page.wait_for_selector("body[data-ready='true']")
    assert page.evaluate("document.documentElement.lang") == language
    return page


def shot(page: Any, screen: str, language: str) -> None:
    """The screen's PNG; a screen in another language must have no English sentence left."""
    if language != "en":
        assert english_left(page) == [], screen
    screenshot(page, screen if language == "en" else f"{screen}-{language}")


def start(page: Any, language: str) -> None:
    page.get_by_role("button", name=catalogue(language)["ui"]["start"]).click()


@pytest.mark.parametrize("language", LANGUAGES)
def test_start_a_step_with_coaching_and_a_named_failure(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any, astronaut: Path, language: str
) -> None:
    texts = catalogue(language)
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="5")
    page = open_in(launch, server, astronaut, language, "?headMovementsOnly=1")
    shot(page, "start", language)
    start(page, language)
    status_is(page, "IN_PROGRESS")
    # The real analyzer judges the still astronaut: a head step she never makes gets its own coaching.
    page.wait_for_function(
        "(done) => { const c = document.getElementById('coaching').textContent; return c && c !== done; }",
        arg=texts["ui"]["stepDone"],
    )
    shot(page, "challenge", language)
    page.wait_for_selector("body[data-liveness-status='FAILED']", state="attached", timeout=40_000)
    assert any(text in page.locator("#result-reason").inner_text() for text in texts["failedStep"].values())
    shot(page, "failed", language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_step_done_and_passed_with_the_reference_face(
    launch: Launch, start_server: StartServer, data_dir: Path, astronaut: Path, language: str
) -> None:
    server = web_server(start_server, CooperativeAnalyzer(data_dir / "sessions"))
    page = open_in(launch, server, astronaut, language)
    start(page, language)
    page.wait_for_selector("#preview.success", timeout=15_000)
    shot(page, "step-done", language)
    status_is(page, "PASSED")
    page.wait_for_selector("#reference:not([hidden])")
    assert page.evaluate("document.getElementById('reference-img').naturalWidth") > 0
    shot(page, "passed", language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_connection_problem(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any, astronaut: Path, language: str
) -> None:
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="3")
    page = open_in(launch, server, astronaut, language, "?headMovementsOnly=1")
    outage = {"until": None}

    def frames(route: Any) -> None:
        if outage["until"] is None:
            outage["until"] = time.monotonic() + 3.5
            route.continue_()
        elif time.monotonic() < outage["until"]:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/sessions/*/frames", frames)
    start(page, language)
    page.wait_for_selector("#screen-problem:not([hidden])", timeout=30_000)
    shot(page, "connection-problem", language)
