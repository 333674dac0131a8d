"""Liveness sessions over HTTP: POST /sessions -> frames -> GET /sessions/{id}, two users, restarts.

The rules are driven by a scripted analyzer (injected through the server's Dependencies); two flows use the
real embedded analyzer on frames it can actually judge (the astronaut looks down ~21 degrees and smiles)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import StartServer
from tests.local.support import astronaut_bgr, blank_bgr, call, data_url, jpeg
from tests.runtime.session_helpers import ScriptedAnalyzer, face, face_for

ALICE, BOB = "alice", "bob"
FRAME = data_url(jpeg(blank_bgr()))  # pixels the scripted analyzer ignores; still decoded and archived for real


def create(server: Any, user: str | None = None, **body: Any) -> dict[str, Any]:
    reply = call(server.url, "POST", "/sessions", body, user=user)
    assert reply.status == 201, reply.raw
    return reply.json


def send_frame(server: Any, session_id: str, image: str = FRAME, user: str | None = None, **extra: Any) -> Any:
    return call(server.url, "POST", f"/sessions/{session_id}/frames", {"image": image, **extra}, user=user)


def get(server: Any, session_id: str, user: str | None = None) -> Any:
    return call(server.url, "GET", f"/sessions/{session_id}", user=user)


def codes(session: dict[str, Any]) -> list[str]:
    return [step["code"] for step in session["steps"]]


def perform(
    server: Any, analyzer: ScriptedAnalyzer, session: dict[str, Any], steps: list[str], user: str | None = None
) -> list[dict[str, Any]]:
    """Answer ``steps`` with frames the scripted analyzer describes as performing them."""
    answers = []
    for code in steps:
        analyzer.script(face_for(code))
        reply = send_frame(server, session["sessionId"], user=user)
        assert reply.status == 200, reply.raw
        answers.append(reply.json)
    return answers


# --- scripted analyzer: the rules ----------------------------------------------------------------------------


def test_a_session_driven_by_frames(start_server: StartServer, data_dir: Path) -> None:
    analyzer = ScriptedAnalyzer()
    server = start_server(analyzer)
    session = create(server, user=ALICE, steps=3)
    assert session["status"] == "IN_PROGRESS" and len(session["steps"]) == 3

    analyzer.script(face())  # a frontal, neutral face meets no step
    missed = send_frame(server, session["sessionId"], user=ALICE).json
    assert missed["verdict"] == "REJECTED" and missed["reasonCode"] in ("POSE_NOT_MET", "EXPRESSION_NOT_MET")

    answers = perform(server, analyzer, session, codes(session), user=ALICE)
    assert [answer["verdict"] for answer in answers] == ["ACCEPTED"] * 3
    assert answers[-1]["status"] == "PASSED"

    reply = get(server, session["sessionId"], user=ALICE)
    assert reply.status == 200
    state = reply.json
    assert state["status"] == "PASSED" and state["verdict"]["livenessPassed"] is True
    assert [step["status"] for step in state["steps"]] == ["PASSED"] * 3
    archived = data_dir / "archive" / "sessions" / session["sessionId"]
    assert base64.b64decode(state["referenceFace"]["base64"]) == (archived / "reference-face.jpg").read_bytes()
    audit = data_dir / "archive" / "audit" / "sessions" / f"{session['sessionId']}.json"
    assert audit.is_file() and not (archived / "audit.json").exists()


def test_a_session_is_invisible_to_another_user(start_server: StartServer) -> None:
    analyzer = ScriptedAnalyzer()
    server = start_server(analyzer)
    session = create(server, user=ALICE)
    for reply in (
        get(server, session["sessionId"], user=BOB),
        send_frame(server, session["sessionId"], user=BOB),
        get(server, session["sessionId"]),
    ):
        assert reply.status == 404 and reply.json["code"] == "SESSION_NOT_FOUND"
    assert analyzer.detect_calls == 0  # bob's frame was refused before any analysis
    assert get(server, session["sessionId"], user=ALICE).status == 200


def test_a_restart_loses_nothing(start_server: StartServer, data_dir: Path) -> None:
    analyzer = ScriptedAnalyzer()
    first = start_server(analyzer, STEP_COUNT="2")  # the deployment's minimum, so two-step sessions are allowed
    analyzer.script(face())
    detection = call(first.url, "POST", "/detect", {"image_bytes": FRAME}).json
    passed = create(first, steps=2)
    perform(first, analyzer, passed, codes(passed))
    ongoing = create(first, steps=2)
    perform(first, analyzer, ongoing, codes(ongoing)[:1])
    reference_before = get(first, passed["sessionId"]).json["referenceFace"]["base64"]
    first.stop()

    analyzer = ScriptedAnalyzer()
    second = start_server(analyzer, STEP_COUNT="2")  # same data directory, fresh process state
    archive = data_dir / "archive"
    assert (archive / detection["archive"]["frameKey"]).is_file() and (
        archive / detection["archive"]["faceKey"]
    ).is_file()
    after = get(second, passed["sessionId"]).json
    assert after["status"] == "PASSED" and after["referenceFace"]["base64"] == reference_before
    resumed = get(second, ongoing["sessionId"]).json
    assert resumed["status"] == "IN_PROGRESS" and resumed["currentStep"] == 1
    assert perform(second, analyzer, ongoing, codes(ongoing)[1:])[-1]["status"] == "PASSED"


# --- the real embedded analyzer: the vision ------------------------------------------------------------------

# The astronaut photo looks down ~21 degrees (LOOK_DOWN needs 15) and smiles. Expressions count only on a face
# within EXPRESSION_MAX_ANGLE_DEGREES (12) of the camera, so the same photo can never also pass SMILE: one
# still image cannot answer a head movement and an expression. Head turns, looking up, an open mouth and closed
# eyes cannot be made from one photo at all.
MAX_DRAWS = 1500  # a 2-step draw is [LOOK_DOWN, SMILE] with p = 1/42; 1500 misses happen with p < 1e-15


def draw_session(server: Any, wanted: Callable[[list[str]], bool]) -> dict[str, Any]:
    """Steps are drawn by the server's CSPRNG and cannot be chosen: start sessions until one fits."""
    for _ in range(MAX_DRAWS):
        session = create(server, steps=2)
        if wanted(codes(session)):
            return session
    pytest.skip(f"no drawn session fitted in {MAX_DRAWS} tries (steps are random by design)")


def test_the_real_analyzer_accepts_look_down_and_refuses_the_same_photo_as_a_smile(
    start_server: StartServer, mesh_analyzer: Any
) -> None:
    server = start_server(mesh_analyzer, STEP_COUNT="2")
    session = draw_session(server, lambda steps: steps == ["LOOK_DOWN", "SMILE"])
    photo = data_url(jpeg(astronaut_bgr()))
    first = send_frame(server, session["sessionId"], photo).json
    assert first["verdict"] == "ACCEPTED" and first["stepCode"] == "LOOK_DOWN", first
    assert first["measured"]["pitch"] <= -15
    second = send_frame(server, session["sessionId"], photo).json
    assert second["verdict"] == "REJECTED" and second["reasonCode"] == "EXPRESSION_NOT_MET", second
    assert second["stepCode"] == "SMILE" and second["measured"]["smile"] >= 80  # she smiles; her face is tilted
    assert second["status"] == "IN_PROGRESS" and second["currentStep"] == 1

    state = get(server, session["sessionId"]).json
    assert state["analyzer"] == "local-mesh" and [step["status"] for step in state["steps"]] == ["PASSED", "PENDING"]
    assert state["steps"][1]["reason"] == "EXPRESSION_NOT_MET"


def test_the_real_analyzer_rejects_a_turn_it_does_not_see(start_server: StartServer, mesh_analyzer: Any) -> None:
    server = start_server(mesh_analyzer, STEP_COUNT="2")
    session = draw_session(server, lambda steps: steps[0] in ("TURN_LEFT", "TURN_RIGHT"))
    answer = send_frame(server, session["sessionId"], data_url(jpeg(astronaut_bgr()))).json
    assert answer["verdict"] == "REJECTED" and answer["reasonCode"] == "POSE_NOT_MET"
    assert abs(answer["measured"]["yaw"]) < 25 and answer["currentStep"] == 0
