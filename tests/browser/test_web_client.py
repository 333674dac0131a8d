"""The web client (web/) in a real Chromium with a fake camera, against the real local server.

Fresh-clone tests use Chromium's built-in fake camera (a face-less test pattern, so the real analyzer coaches
NO_FACE) or a cooperative stand-in analyzer; the last test plays ../shared/video/headturn.gif as the camera
and needs the real analyzer to pass a head-movements-only session. Each screen's PNG goes to docs/screenshots/.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from local.server import LocalServer, local_settings
from tests.browser.conftest import WEB_DIR, Launch, PageWatch, axe_violations, screenshot
from tests.browser.support import CooperativeAnalyzer, gif_to_y4m
from tests.conftest import shared_path
from tests.local.conftest import StartServer
from tests.local.test_web_catalogues import catalogue

EN = catalogue("en")

pytestmark = pytest.mark.slow

TIMEOUT_MS = 30_000


def open_page(launch: Launch, server: LocalServer, query: str = "", **launch_options: Any) -> tuple[Any, PageWatch]:
    browser = launch(**launch_options)
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = PageWatch(page)
    page.goto(f"{server.url}/{query}")
    page.wait_for_selector("body[data-ready='true']")
    return page, watch


def status_is(page: Any, status: str, timeout: int = TIMEOUT_MS) -> None:
    page.wait_for_selector(f"body[data-liveness-status='{status}']", state="attached", timeout=timeout)


def _first(count: int, answer: Any) -> Any:
    """A route handler: the first ``count`` requests get ``answer(route)``, the rest go through to the server."""
    left = {"count": count}

    def handle(route: Any) -> None:
        if left["count"] > 0:
            left["count"] -= 1
            answer(route)
        else:
            route.continue_()

    return handle


def web_server(start_server: StartServer, analyzer: Any, **env: str) -> LocalServer:
    """The page and the real API. The light step runs in shadow mode unless a test says otherwise: the page walks
    it (countdown, colours, one batch) and the server measures it, but Chromium's fake camera is not lit by the
    screen, so enforcing it would fail every check; test_web_light.py enforces it with a lit camera."""
    return start_server(analyzer, web_dir=WEB_DIR, **{"LIGHT_CHALLENGE": "shadow", **env})


def test_the_start_screen_loads_clean_and_accessible(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer)
    page, watch = open_page(launch, server)
    assert page.locator("#screen-start").is_visible()
    assert page.get_by_role("button", name="Start").is_visible()
    assert "30 days" in page.locator("#screen-start").inner_text()  # says what is kept, for how long
    assert not page.locator("#head-only").is_checked()
    assert "livenessStatus" not in page.evaluate("Object.keys(document.body.dataset)")
    assert axe_violations(page) == []
    assert watch.errors == []


def test_the_page_is_served_at_the_root_with_its_local_config(start_server: StartServer, mesh_analyzer: Any) -> None:
    from tests.local.support import call

    server = web_server(start_server, mesh_analyzer)
    root = call(server.url, "GET", "/")
    assert root.status == 200 and b"<title>Liveness check</title>" in root.raw
    assert call(server.url, "GET", "/config.json").json == {"apiUrl": "", "mode": "local"}
    script = call(server.url, "GET", "/app.js")
    assert script.status == 200 and "javascript" in (script.header("Content-Type") or "")


def test_a_session_starts_posts_frames_one_at_a_time_and_coaches_the_face_less_pattern(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer)
    page, watch = open_page(launch, server, "?headMovementsOnly=1")
    assert page.locator("#head-only").is_checked()
    page.get_by_role("button", name="Start").click()
    status_is(page, "IN_PROGRESS")
    assert watch.session_requests == [{"excludeExpressions": True, "mirrored": False}]
    session = watch.sessions_created[0]
    page.wait_for_function("document.getElementById('coaching').textContent.includes('cannot see a face')")
    watch.wait_for_frames(2)
    assert watch.frames_posted >= 2
    assert watch.max_in_flight == 1  # one request in flight at a time
    # Every step the server sent, in its order, with its instruction; the current one is big.
    items = page.locator("#steps li").all_inner_texts()
    assert items == [EN["steps"][step["code"]] for step in session["steps"]]
    current = session["steps"][session["currentStep"]]
    assert page.locator("#instruction").inner_text() == EN["steps"][current["code"]]
    assert page.locator("#progress").inner_text() == f"Step 1 of {len(session['steps'])}"
    assert re.fullmatch(r"\d+ s left for this step", page.locator("#time-left").inner_text())
    assert page.locator("#announce").get_attribute("aria-live") == "polite"  # "Step i of N" with the instruction
    assert page.locator("#coaching").get_attribute("aria-live") == "polite"
    assert axe_violations(page) == []
    page.get_by_role("button", name="Cancel").click()
    assert page.locator("#screen-start").is_visible()
    assert page.evaluate("document.getElementById('video').srcObject") is None  # the camera is released
    assert watch.errors == []


@pytest.mark.parametrize(
    ("error", "title"),
    [
        ("NotFoundError", "No camera found"),
        ("NotReadableError", "The camera is in use"),
        ("TypeError", "This browser cannot use the camera"),
    ],
)
def test_each_camera_problem_has_its_own_message(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any, error: str, title: str
) -> None:
    server = web_server(start_server, mesh_analyzer)
    browser = launch()
    page = browser.new_page()
    page.add_init_script(
        f"navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('simulated', {error!r}));"
    )
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']")
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("#screen-problem:not([hidden])")
    assert page.locator("#problem-title").inner_text() == title


def test_an_insecure_page_says_so(launch: Launch, start_server: StartServer, mesh_analyzer: Any) -> None:
    server = web_server(start_server, mesh_analyzer)
    page = launch().new_page()
    page.add_init_script("Object.defineProperty(window, 'isSecureContext', {value: false});")
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']")
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("#screen-problem:not([hidden])")
    assert page.locator("#problem-title").inner_text() == "This page is not secure"
    assert "https://" in page.locator("#problem-message").inner_text()


def test_camera_denied_shows_its_message_and_a_way_forward(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer)
    page, watch = open_page(launch, server, fake_ui=False)  # no fake prompt: Playwright refuses the camera
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("#screen-problem:not([hidden])")
    assert page.locator("#problem-title").inner_text() == "Camera access is blocked"
    assert "Allow camera access" in page.locator("#problem-message").inner_text()
    assert page.get_by_role("button", name="Try again").is_visible()
    assert page.get_by_role("button", name="Back to start").is_visible()
    assert watch.sessions_created == []  # no session is spent without a camera
    screenshot(page, "camera-denied")
    assert axe_violations(page) == []


def test_the_api_unreachable_then_recovering_is_said_on_screen(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="60", SESSION_TTL_SECONDS="120")
    page, watch = open_page(launch, server)
    page.route("**/sessions/*/frames", _first(2, lambda route: route.abort("internetdisconnected")))
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("document.getElementById('connection').textContent.startsWith('Connection lost')")
    page.wait_for_function("document.getElementById('coaching').textContent.includes('cannot see a face')")
    assert page.locator("#connection").inner_text() == ""
    assert page.evaluate("document.body.dataset.livenessStatus") == "IN_PROGRESS"
    assert all("ERR_INTERNET_DISCONNECTED" in error for error in watch.errors)  # Chromium logs the aborts


def test_retry_after_is_honoured_on_429(launch: Launch, start_server: StartServer, mesh_analyzer: Any) -> None:
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="60")
    page, _ = open_page(launch, server)
    throttled = _first(
        1,
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body='{"code": "THROTTLED", "message": "Too Many Requests", "requestId": "x"}',
        ),
    )
    page.route("**/sessions/*/frames", throttled)
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("document.getElementById('connection').textContent.includes('Continuing in 1 s')")
    page.wait_for_function("document.getElementById('coaching').textContent.includes('cannot see a face')")


def test_keyboard_alone_starts_and_cancels_with_visible_focus(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer)
    page, watch = open_page(launch, server)

    def tab_to(selector: str) -> None:
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement === document.querySelector({selector!r})"):
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"no visible focus on {selector}"
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#head-only")
    page.keyboard.press("Space")
    assert page.locator("#head-only").is_checked()
    tab_to("#start")
    page.keyboard.press("Enter")
    status_is(page, "IN_PROGRESS")
    assert watch.session_requests[0]["excludeExpressions"] is True
    tab_to("#cancel")
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-start:not([hidden])")


def test_a_failed_check_says_why_and_try_again_starts_a_new_session(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="2")
    page, watch = open_page(launch, server)
    page.get_by_role("button", name="Start").click()
    status_is(page, "FAILED")
    assert page.locator("#result-title").inner_text() == "The check did not pass"
    # It names the step that was not met (the face-less pattern never looks straight at the camera).
    assert EN["failedStep"]["LOOK_STRAIGHT"] in page.locator("#result-reason").inner_text()
    for button in ("Try again", "Head movements only", "Back to start"):
        assert page.get_by_role("button", name=button).is_visible()
    assert page.evaluate("document.getElementById('video').srcObject") is None  # the camera is released
    assert axe_violations(page) == []
    page.get_by_role("button", name="Try again").click()
    status_is(page, "IN_PROGRESS")
    assert len(watch.sessions_created) == 2
    assert watch.sessions_created[0]["sessionId"] != watch.sessions_created[1]["sessionId"]
    # The frame that found the step's deadline passed was answered 409 SESSION_CLOSED; Chromium logs that.
    assert [error for error in watch.errors if "409" not in error] == []


def test_a_passed_check_shows_the_reference_face(launch: Launch, start_server: StartServer, data_dir: Path) -> None:
    server = web_server(start_server, CooperativeAnalyzer(data_dir / "sessions"))
    page, watch = open_page(launch, server)
    page.get_by_role("button", name="Start").click()
    status_is(page, "PASSED")
    assert page.locator("#result-title").inner_text() == "Check passed"
    page.wait_for_selector("#reference:not([hidden])")
    assert page.evaluate("document.getElementById('reference-img').naturalWidth") > 0
    assert axe_violations(page) == []
    assert watch.errors == []


def test_the_page_fits_320_px_in_portrait_and_honours_reduced_motion(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = web_server(start_server, mesh_analyzer)
    browser = launch()
    context = browser.new_context(viewport={"width": 320, "height": 640}, reduced_motion="reduce")
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='true']")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.get_by_role("button", name="Start").click()
    status_is(page, "IN_PROGRESS")
    page.wait_for_function("document.getElementById('instruction').textContent.length > 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    assert page.evaluate("getComputedStyle(document.getElementById('cue')).animationName") == "none"


def test_the_page_runs_under_the_deployed_content_security_policy(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any
) -> None:
    """The CSP CloudFront adds (cdk_app/web_hosting.py), with this server as the API: no inline code, no CDN."""
    from cdk_app.web_hosting import content_security_policy

    csp = content_security_policy(api_origin="", sign_in_url="")
    server = web_server(start_server, mesh_analyzer)
    page = launch().new_page(bypass_csp=False)  # the harness bypasses it elsewhere (tests/browser/conftest.py)
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));"
    )

    def with_csp(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": csp})

    page.route(f"{server.url}/", with_csp)
    watch = PageWatch(page)
    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-ready='true']")
    page.get_by_role("button", name="Start").click()
    # (a locator, not wait_for_function: Playwright evaluates those with eval, which this CSP forbids)
    page.locator("#coaching", has_text="cannot see a face").wait_for()
    assert page.evaluate("window.__violations") == []
    assert watch.errors == []


def test_a_frozen_camera_still_ends_with_the_servers_verdict(
    launch: Launch, start_server: StartServer, mesh_analyzer: Any, tmp_path: Path
) -> None:
    """A camera that keeps showing one picture: the page sends it once and never again (the server would refuse
    the same bytes), so nothing reaches the server that could end the step. When the step's time is over the
    page asks the server, which closes the session: a verdict on screen, not a countdown stuck at 0 s."""
    from tests.browser.support import write_y4m
    from tests.local.support import blank_bgr

    still = write_y4m([blank_bgr()], tmp_path / "still.y4m")  # one frame, looped: identical pictures
    server = web_server(start_server, mesh_analyzer, STEP_TIME_LIMIT_SECONDS="3")
    page, watch = open_page(launch, server, video=still)
    page.get_by_role("button", name="Start").click()
    status_is(page, "IN_PROGRESS")
    status_is(page, "FAILED", timeout=20_000)
    assert "in time" in page.locator("#result-reason").inner_text()
    assert watch.frames_posted == 1
    assert watch.errors == []


def test_a_head_movements_only_session_passes_with_the_headturn_clip(
    launch: Launch, tmp_path: Path, mesh_analyzer: Any
) -> None:
    """The clip loops and ignores the instructions, so the limits are lengthened; the real analyzer judges."""
    clip = gif_to_y4m(shared_path("video", "headturn.gif"), tmp_path / "headturn.y4m")
    env = {
        "STEP_TIME_LIMIT_SECONDS": "60",
        "SESSION_TTL_SECONDS": "300",
        "SESSION_MAX_FRAMES": "100",
        "STEP_MAX_FRAMES": "100",
        # The clip moves through the colours and is not lit by the screen: test_web_light.py plays its straight
        # frames, lit, through the enforced light step; here the step is walked and measured, not decisive.
        "LIGHT_CHALLENGE": "shadow",
    }
    settings = local_settings(data_dir=tmp_path / "data", port=0, env=env)
    from liveness.wiring import build_dependencies

    deps = dataclasses.replace(build_dependencies(settings), analyzer=mesh_analyzer)
    with LocalServer(deps=deps, port=0, web_dir=WEB_DIR) as server:
        page, watch = open_page(launch, server, "?headMovementsOnly=1", video=clip)
        page.get_by_role("button", name="Start").click()
        status_is(page, "IN_PROGRESS")
        page.wait_for_selector("body[data-liveness-status]:not([data-liveness-status='IN_PROGRESS'])", timeout=240_000)
        outcome = page.evaluate("document.body.dataset.livenessStatus")
        reason = page.locator("#result-reason").inner_text()
        assert outcome == "PASSED", (
            f"{outcome}: {reason} (frames posted: {watch.frames_posted}); {_frame_log(tmp_path)}"
        )


def _frame_log(tmp_path: Path) -> str:
    """Each step and how its frames were judged: what a failure needs to be understood."""
    import collections
    import json

    lines = []
    for file in (tmp_path / "data" / "sessions").glob("*.json"):
        session = json.loads(file.read_text(encoding="utf-8"))
        for index, step in enumerate(session["steps"]):
            reasons = collections.Counter(
                frame.get("reasonCode") or frame.get("verdict")
                for frame in session["frames"]
                if frame.get("stepIndex") == index
            )
            lines.append(f"step {index} {step['code']} {step['status']}: {dict(reasons)}")
    return "; ".join(lines)
