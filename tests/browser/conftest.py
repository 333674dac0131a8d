"""Browser fixtures: the operating system's Chromium driven by Playwright for Python, with a fake camera.

Playwright's own browser download is not used (our machines cannot reach it): the tests launch the Debian
``chromium`` package through ``executable_path``. Where it is missing the tests skip with the reason, except
in CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, mark_folder
from tests.local.conftest import data_dir, start_server  # noqa: F401 - fixtures reused here

WEB_DIR = REPO_ROOT / "web"
SCREENSHOT_DIR = REPO_ROOT / "docs" / "screenshots"
AXE_SCRIPT = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FAKE_CAMERA_FLAGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
BASE_FLAGS = ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; a missing browser fails CI (make setup installs it with apt-get as root)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium: $CHROMIUM, or Debian's /usr/bin/chromium."""
    configured = os.environ.get("CHROMIUM")
    candidates = [configured] if configured else [*CHROMIUM_CANDIDATES, shutil.which("chromium") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _missing(
        "no Chromium found (set CHROMIUM, or run `make setup` as root on Debian/Ubuntu, which runs "
        "`apt-get install chromium`)"
    )
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev dependency
        _missing("playwright is not installed (requirements-dev.txt)")
    driver = sync_playwright().start()
    yield driver
    driver.stop()


Launch = Callable[..., Any]


class LaunchedBrowser:
    """A launched Chromium whose pages bypass the page's CSP unless a test says otherwise (``bypass_csp=False``).

    The local front serves the deployed CSP (no eval, no inline script), and Playwright's ``wait_for_function``
    and ``add_script_tag`` (axe-core) compile strings in the page. The CSP itself is checked by
    test_the_page_runs_under_the_deployed_content_security_policy, which keeps it."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser

    def new_context(self, **options: Any) -> Any:
        return self.browser.new_context(**{"bypass_csp": True, **options})

    def new_page(self, **options: Any) -> Any:
        return self.browser.new_page(**{"bypass_csp": True, **options})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.browser, name)


@pytest.fixture
def launch(playwright_driver: Any, chromium_path: str) -> Iterator[Launch]:
    """``launch(video=None, fake_ui=True)``: a headless Chromium with a fake camera (Chromium's face-less test
    pattern, or ``video``, a Y4M clip). ``fake_ui=False`` leaves the permission prompt to Playwright, which
    refuses it: the camera is denied."""
    browsers: list[Any] = []

    def start(video: Path | None = None, *, fake_ui: bool = True) -> Any:
        args = [*BASE_FLAGS, "--use-fake-device-for-media-stream"]
        if fake_ui:
            args.append("--use-fake-ui-for-media-stream")
        if video is not None:
            args.append(f"--use-file-for-fake-video-capture={video}")
        browser = playwright_driver.chromium.launch(executable_path=chromium_path, headless=True, args=args)
        browsers.append(browser)
        return LaunchedBrowser(browser)

    yield start
    for browser in browsers:
        browser.close()


class PageWatch:
    """What a page did: console errors, uncaught exceptions, and the API requests it sent."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.frames_posted = 0
        self.sessions_created: list[dict[str, Any]] = []
        self.session_requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("request", self._request)
        page.on("requestfinished", self._done)
        page.on("requestfailed", self._done)
        page.on("response", self._response)

    def wait_for_frames(self, count: int) -> None:
        """Until ``count`` frames were posted (the page's default timeout): returns at once if they already were."""
        while self.frames_posted < count:
            self.page.wait_for_event("request", predicate=self._is_frame)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    @staticmethod
    def _is_frame(request: Any) -> bool:
        return request.method == "POST" and request.url.endswith("/frames")

    def _request(self, request: Any) -> None:
        if self._is_frame(request):
            self.frames_posted += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        elif request.method == "POST" and request.url.endswith("/sessions"):
            self.session_requests.append(json.loads(request.post_data or "{}"))

    def _done(self, request: Any) -> None:
        if self._is_frame(request):
            self.in_flight -= 1

    def _response(self, response: Any) -> None:
        request = response.request
        if request.method == "POST" and request.url.endswith("/sessions") and response.status == 201:
            try:
                self.sessions_created.append(response.json())
            except Exception:  # noqa: BLE001 - a body the test does not need
                pass


# Share of pixels that may differ before a screen counts as changed: the fake camera's clock and pattern move in
# every run, and rewriting the PNGs for that alone would leave every clone dirty after `make test`.
SCREEN_CHANGED_SHARE = 0.02


def screenshot(page: Any, name: str) -> Path:
    """One PNG per screen under docs/screenshots/ (the README and docs/web-client.md show them), rewritten when the screen changed."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    taken = page.screenshot(full_page=True)
    if not path.exists() or _changed(path.read_bytes(), taken):
        path.write_bytes(taken)
    return path


def _changed(before: bytes, after: bytes) -> bool:
    import cv2
    import numpy as np

    old, new = (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) for data in (before, after))
    if old is None or new is None or old.shape != new.shape:
        return True
    differing = np.any(np.abs(old.astype(np.int16) - new.astype(np.int16)) > 16, axis=2)
    return float(differing.mean()) > SCREEN_CHANGED_SHARE


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (npm's pinned axe-core)."""
    if not AXE_SCRIPT.is_file():
        _missing(f"{AXE_SCRIPT} is missing: run `npm ci` (make setup does)")
    page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": item["id"], "impact": item["impact"], "nodes": [node["target"] for node in item["nodes"]]}
        for item in result
        if item["impact"] in ("serious", "critical")
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is in the ``browser`` tier."""
    mark_folder(items, __file__, pytest.mark.browser)
