"""The page as a person meets it (issue 16): a cue you can hear, a calm pace, failures that help, outages not
blamed on the person, two languages, a preview that keeps its shape. Chromium, a fake camera, the local server."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from local.server import LocalServer
from tests.browser.conftest import Launch, axe_violations
from tests.browser.support import CooperativeAnalyzer
from tests.browser.test_web_client import TIMEOUT_MS, _first, open_page, status_is, web_server
from tests.local.conftest import StartServer
from tests.local.test_web_catalogues import catalogue, flat

pytestmark = pytest.mark.slow

EN = catalogue("en")
ES = catalogue("es")

# Counts every tone and vibration the page asks for (headless Chromium has no speaker or motor to check).
FEEDBACK_STUB = """
window.__tones = 0; window.__vibrations = 0;
class FakeAudioContext {
  constructor() { this.currentTime = 0; this.destination = {}; }
  resume() { return Promise.resolve(); }
  createGain() { const ramp = () => {}; return { gain: { setValueAtTime: ramp, exponentialRampToValueAtTime: ramp }, connect() {} }; }
  createOscillator() { return { frequency: {}, connect() {}, start() { window.__tones += 1; }, stop() {} }; }
}
window.AudioContext = FakeAudioContext;
navigator.vibrate = () => { window.__vibrations += 1; return true; };
"""

# Every change of the instruction and the coaching line, with its time: what a person (or a screen reader) got.
TEXT_LOG = """
window.__texts = [];
setInterval(() => {
  for (const id of ['instruction', 'coaching', 'connection']) {
    const element = document.getElementById(id);
    if (!element) continue;
    const last = window.__texts.filter((e) => e.id === id).pop();
    if (!last || last.text !== element.textContent) window.__texts.push({id, text: element.textContent, at: performance.now()});
  }
}, 20);
"""


def cooperative_server(start_server: StartServer, data_dir: Path, **env: str) -> LocalServer:
    return web_server(start_server, CooperativeAnalyzer(data_dir / "sessions"), **env)


def english_left(page: Any) -> list[str]:
    """English catalogue sentences still on screen (short words like "Start" are not telling)."""
    shown = page.locator("body").inner_text()
    spanish = set(flat(ES).values())
    fragments = {max(re.split(r"\{\w+\}", text), key=len).strip() for text in flat(EN).values() if text not in spanish}
    return sorted(fragment for fragment in fragments if len(fragment) > 12 and fragment in shown)


def test_spanish_from_the_browser_language_with_no_english_left(
    launch: Launch, start_server: StartServer, data_dir: Path
) -> None:
    server = cooperative_server(start_server, data_dir, STEP_TIME_LIMIT_SECONDS="30")
    context = launch().new_context(locale="es-ES", viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.route("**/sessions/*/frames", lambda route: None)  # hold the frames: the step screen stays put
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']")
    assert page.evaluate("document.documentElement.lang") == "es"
    assert page.locator("#start-title").inner_text() == ES["ui"]["startTitle"]
    assert english_left(page) == []
    page.get_by_role("button", name=ES["ui"]["start"]).click()
    page.wait_for_function(f"document.getElementById('progress').textContent.startsWith({ES['ui']['stepOf'][:4]!r})")
    assert page.locator("#instruction").inner_text() == ES["steps"]["LOOK_STRAIGHT"]
    assert english_left(page) == []
    # The switch is remembered: English after a reload, whatever the browser says.
    page.get_by_role("button", name=ES["ui"]["cancel"]).click()
    page.select_option("#language", "en")
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#start-title").inner_text() == EN["ui"]["startTitle"]
    assert axe_violations(page) == []


@pytest.mark.parametrize("sound", [True, False])
def test_a_tone_and_a_vibration_when_each_step_is_done(
    launch: Launch, start_server: StartServer, data_dir: Path, sound: bool
) -> None:
    server = cooperative_server(start_server, data_dir)
    page, watch = open_page(launch, server)
    page.add_init_script(FEEDBACK_STUB)
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#sound").is_checked()  # on by default
    if not sound:
        page.locator("#sound").uncheck()
        page.reload()  # remembered
        page.wait_for_selector("body[data-ready='true']")
        assert not page.locator("#sound").is_checked()
    page.get_by_role("button", name="Start").click()
    status_is(page, "PASSED")
    steps = len(watch.sessions_created[0]["steps"])
    assert page.evaluate("window.__vibrations") == steps
    assert page.evaluate("window.__tones") == (steps if sound else 0)
    assert page.get_by_role("button", name="Done").is_visible()
    assert not page.get_by_role("button", name="Try again").is_visible()


def test_no_coaching_in_the_first_second_of_a_step_and_at_most_one_change_a_second(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="6")
    page, _ = open_page(launch, server)
    page.add_init_script(TEXT_LOG)
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    started = time.monotonic()
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("document.getElementById('coaching').textContent.includes('cannot see a face')")
    assert time.monotonic() - started > 2.4  # get ready (1.5 s), then a quiet second
    page.wait_for_timeout(200)  # the log polls every 20 ms
    log = page.evaluate("window.__texts")
    shown = [entry for entry in log if entry["id"] == "instruction" and entry["text"]]
    coached = [entry for entry in log if entry["id"] == "coaching" and entry["text"]]
    assert shown and coached
    assert coached[0]["at"] - shown[0]["at"] >= 2400
    changes = [entry["at"] for entry in log if entry["id"] == "coaching"]
    assert all(later - earlier >= 950 for earlier, later in zip(changes, changes[1:], strict=False))


def test_a_success_state_on_the_oval_before_the_next_instruction(
    launch: Launch, start_server: StartServer, data_dir: Path
) -> None:
    server = cooperative_server(start_server, data_dir)
    page, _ = open_page(launch, server)
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("#preview.success", timeout=15_000)
    assert page.locator("#coaching").inner_text() == EN["ui"]["stepDone"]


def test_a_502_from_the_gateway_is_retried_and_no_raw_code_is_shown(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="60")
    page, _ = open_page(launch, server)
    gateway = _first(
        1,
        lambda route: route.fulfill(
            status=502, content_type="application/json", body='{"message": "Internal server error"}'
        ),
    )
    page.route("**/sessions/*/frames", gateway)
    page.get_by_role("button", name="Start").click()
    page.locator("#connection", has_text="not answering").wait_for()
    assert page.locator("#time-left").inner_text() == EN["ui"]["timePaused"]
    page.locator("#coaching", has_text="cannot see a face").wait_for()
    assert page.locator("#connection").inner_text() == ""
    assert "HTTP_502" not in page.locator("body").inner_text()


def test_a_3_second_outage_is_named_as_the_connection_not_the_person(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    """The server's clock runs on while the page cannot reach it: the step times out, and the page says why."""
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="4")
    page, _ = open_page(launch, server)
    page.add_init_script(TEXT_LOG)
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    outage = {"until": None}

    def frames(route: Any) -> None:
        if outage["until"] is None:
            outage["until"] = time.monotonic() + 3.0
            route.continue_()  # the first frame starts the step's clock
        elif time.monotonic() < outage["until"]:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/sessions/*/frames", frames)
    page.get_by_role("button", name="Start").click()
    page.locator("#connection", has_text="Connection lost").wait_for()
    assert page.locator("#time-left").inner_text() == EN["ui"]["timePaused"]
    assert page.locator("#coaching").inner_text() == ""
    page.wait_for_selector("body[data-liveness-status]:not([data-liveness-status='IN_PROGRESS'])", timeout=20_000)
    countdown = [entry["text"] for entry in page.evaluate("window.__texts") if entry["id"] == "connection"]
    assert "Connection lost. Retrying in 2 s…" in countdown and "Connection lost. Retrying in 1 s…" in countdown
    assert countdown.index("Connection lost. Retrying in 1 s…", countdown.index("Connection lost. Retrying in 2 s…"))
    if page.evaluate("document.body.dataset.livenessStatus") != "PASSED":
        assert page.locator("#screen-problem").is_visible()
        assert "connection problem, not because of you" in page.locator("#problem-message").inner_text()
        assert (
            page.locator("#problem-details").is_hidden()
            or "STEP_TIMEOUT" not in page.locator("#problem-message").inner_text()
        )


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (lambda route: route.abort("internetdisconnected"), "PROBLEM"),
        (
            lambda route: route.fulfill(
                status=500,
                content_type="application/json",
                body='{"code": "INTERNAL_ERROR", "message": "Internal error", "requestId": "r-1"}',
            ),
            "PROBLEM",
        ),
    ],
    ids=["network-gone", "server-error"],
)
def test_problem_screens_set_the_status_hook_and_keep_codes_for_support(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any, answer: Any, status: str
) -> None:
    server = web_server(start_server, mesh_analyzer)
    page, _ = open_page(launch, server)
    page.route("**/sessions", answer)
    page.get_by_role("button", name="Start").click()
    status_is(page, status, timeout=40_000)
    assert page.locator("#screen-problem").is_visible()
    text = page.locator("#problem-message").inner_text()
    assert "not because of you" in text or "This is not because of you" in text
    assert "INTERNAL_ERROR" not in text
    if not page.locator("#problem-details").is_hidden():
        page.locator("#problem-details summary").click()
        assert "INTERNAL_ERROR" in page.locator("#problem-code").inner_text()
    page.get_by_role("button", name="Back to start").click()
    page.wait_for_selector("#screen-start:not([hidden])")


def test_cancel_sets_the_status_hook(launch: Launch, start_server: StartServer, mesh_analyzer: Any) -> None:
    server = web_server(start_server, mesh_analyzer)
    page, _ = open_page(launch, server)
    page.get_by_role("button", name="Start").click()
    status_is(page, "IN_PROGRESS")
    page.get_by_role("button", name="Cancel").click()
    status_is(page, "CANCELLED")


APP = "http://app.example"


def test_a_passed_check_hands_its_result_to_the_opener_and_an_allow_listed_return_url(
    launch: Launch, start_server: StartServer, data_dir: Path
) -> None:
    server = cooperative_server(start_server, data_dir)
    context = launch().new_context()
    context.route(
        f"{server.url}/config.json",
        lambda route: route.fulfill(json={"apiUrl": "", "returnOrigins": [APP]}),
    )
    opener_html = (
        "<html><body><script>window.results = []; addEventListener('message', (e) => "
        "window.results.push({origin: e.origin, data: e.data}));</script></body></html>"
    )
    context.route(f"{APP}/**", lambda route: route.fulfill(content_type="text/html", body=opener_html))
    opener = context.new_page()
    opener.goto(f"{APP}/start")
    for return_url, follows in ((f"{APP}/back", True), ("https://elsewhere.example/back", False)):
        with context.expect_page() as popup:
            opener.evaluate(f"window.open({server.url + '/?returnUrl=' + return_url!r})")
        page = popup.value
        page.set_default_timeout(TIMEOUT_MS)
        page.wait_for_selector("body[data-ready='true']")
        page.get_by_role("button", name="Start").click()
        status_is(page, "PASSED")
        page.get_by_role("button", name="Continue" if follows else "Done").click()
        if follows:
            page.wait_for_url(f"{APP}/back?*")
            assert "status=PASSED" in page.url and "sessionId=" in page.url
        else:
            page.wait_for_selector("#result-sent:not([hidden])")
            assert page.url.startswith(server.url)
        results = opener.evaluate("window.results")
        assert results[-1]["data"]["type"] == "liveness-result" and results[-1]["data"]["status"] == "PASSED"
        assert results[-1]["origin"] == server.url


@pytest.mark.parametrize(
    ("viewport", "scale"),
    [({"width": 512, "height": 384}, 2), ({"width": 390, "height": 844}, 3), ({"width": 1280, "height": 800}, 1)],
    ids=["200-percent-zoom", "phone", "wide"],
)
def test_the_preview_keeps_4_by_3_and_the_instruction_stays_in_view(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any, viewport: dict[str, int], scale: int
) -> None:
    """200% zoom on a 1024x768 window is a 512x384 CSS-pixel viewport at device scale 2."""
    server = web_server(start_server, mesh_analyzer)
    page = launch().new_context(viewport=viewport, device_scale_factor=scale).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']")
    page.get_by_role("button", name="Start").click()
    page.locator("#coaching", has_text="cannot see a face").wait_for()
    box = page.locator("#preview").bounding_box()
    assert box["width"] / box["height"] == pytest.approx(4 / 3, abs=0.02)
    oval = page.locator("#preview .face-guide").bounding_box()
    assert 0.7 <= oval["width"] / oval["height"] <= 0.85  # a face's proportions
    instruction = page.locator("#instruction").bounding_box()
    assert 0 <= instruction["y"] and instruction["y"] + instruction["height"] <= viewport["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
