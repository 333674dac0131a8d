"""Liveness sessions over HTTP: POST /sessions -> frames -> GET /sessions/{id}, two users, restarts.

The rules are driven by a scripted analyzer (injected through the server's Dependencies); two flows use the
real embedded analyzer on frames it can actually judge (the astronaut looks down ~21 degrees and smiles)."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from liveness.challenges import StepCode
from liveness.sessions import service as session_service

from testkit.faces import face, face_for
from testkit.light_client import genuine_light
from tests.local.conftest import StartServer
from tests.local.support import astronaut_bgr, blank_bgr, call, data_url, jpeg, neutral_astronaut_bgr
from tests.runtime.session_helpers import ScriptedAnalyzer, wrong_face_for

ALICE, BOB = "alice", "bob"
FRAME = data_url(jpeg(blank_bgr()))  # pixels the scripted analyzer ignores; still decoded and archived for real
_SHADES = itertools.count(1)


def fresh_frame() -> str:
    """A blank frame with bytes no earlier frame had: the same bytes twice in a session are REPEATED_FRAME."""
    image, shade = blank_bgr(), next(_SHADES)
    image[:16, :16] = shade % 256  # whole 8x8 blocks, so the JPEG cannot smooth the difference away
    image[:16, 16:32] = shade // 256 % 256
    return data_url(jpeg(image))


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
    """Answer ``steps`` with frames the scripted analyzer describes as performing them; the light step as a person
    does it: start the challenge, then one batch of frames lit by the revealed colours (the astronaut)."""
    answers = []
    for code in steps:
        if code == "FOLLOW_LIGHT":
            answers.append(perform_light(server, analyzer, session["sessionId"], user))
            continue
        analyzer.script(face_for(code))
        reply = send_frame(server, session["sessionId"], fresh_frame(), user=user)
        assert reply.status == 200, reply.raw
        answers.append(reply.json)
    return answers


def perform_light(server: Any, analyzer: ScriptedAnalyzer, session_id: str, user: str | None = None) -> dict[str, Any]:
    started = call(server.url, "POST", f"/sessions/{session_id}/light", {}, user=user)
    assert started.status == 201, started.raw
    body, lit_face = genuine_light(started.json)
    analyzer.script(lit_face)
    reply = call(server.url, "POST", f"/sessions/{session_id}/light/frames", body, user=user)
    assert reply.status == 200, reply.raw
    return reply.json


# --- scripted analyzer: the rules ----------------------------------------------------------------------------


def test_a_session_driven_by_frames(start_server: StartServer, data_dir: Path) -> None:
    analyzer = ScriptedAnalyzer()
    server = start_server(analyzer)
    session = create(server, user=ALICE, steps=3)
    # The neutral start, the light step (LIGHT_CHALLENGE's default, enforce), then the 3 drawn steps.
    assert session["status"] == "IN_PROGRESS" and len(session["steps"]) == 1 + 1 + 3
    assert codes(session)[:2] == ["LOOK_STRAIGHT", "FOLLOW_LIGHT"]

    analyzer.script(wrong_face_for("LOOK_STRAIGHT"))  # half-turned and half-raised: not looking straight
    missed = send_frame(server, session["sessionId"], fresh_frame(), user=ALICE).json
    assert missed["verdict"] == "REJECTED" and missed["reasonCode"] == "NOT_LOOKING_STRAIGHT"

    answers = perform(server, analyzer, session, codes(session), user=ALICE)
    assert [answer["verdict"] for answer in answers] == ["ACCEPTED"] * 5
    assert answers[-1]["status"] == "PASSED" and answers[1]["measured"]["light"]["outcome"] == "PASSED"

    reply = get(server, session["sessionId"], user=ALICE)
    assert reply.status == 200
    state = reply.json
    assert state["status"] == "PASSED" and state["verdict"]["livenessPassed"] is True
    assert [step["status"] for step in state["steps"]] == ["PASSED"] * 5
    light_frames = data_dir / "archive" / "sessions" / session["sessionId"] / "light"
    assert len(list(light_frames.rglob("*.jpg"))) == 12  # the light batch, archived
    archived = data_dir / "archive" / "sessions" / session["sessionId"]
    reference_key = f"sessions/{session['sessionId']}/frames/{answers[0]['frameId']}-face.jpg"
    assert answers[0]["stepCode"] == "LOOK_STRAIGHT"
    assert state["referenceFace"]["key"] == reference_key  # the neutral frame's crop, no separate copy
    assert base64.b64decode(state["referenceFace"]["base64"]) == (data_dir / "archive" / reference_key).read_bytes()
    assert not (archived / "reference-face.jpg").exists()
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
# eyes cannot be made from one photo at all. The embedded analyzer reads the photo as near frontal (pitch about
# -7), so another encoding of it answers the neutral start, and every later step is judged from that baseline.


def draw_session(server: Any, monkeypatch: pytest.MonkeyPatch, *steps: str) -> dict[str, Any]:
    """Steps come from the server's CSPRNG and cannot be chosen over the API; the test replaces that one draw
    (in this process, where the test server runs), so the flow under test is deterministic. Everything else,
    the routes, the store and the analyzer, is the real thing."""
    drawn = tuple(StepCode(code) for code in steps)
    monkeypatch.setattr(session_service, "draw_steps", lambda count, *, exclude_expressions=False: drawn[:count])
    session = create(server, steps=len(drawn))
    assert codes(session) == ["LOOK_STRAIGHT", *steps]  # the neutral start is never drawn: it always comes first
    return session


def look_straight_with_the_photo(server: Any, session: dict[str, Any]) -> dict[str, Any]:
    """Answer the neutral start with the astronaut photo: the smiling original is refused (a neutral face is
    needed, so one smiling photo cannot answer the neutral start and SMILE), the same photo with its mouth
    corners pulled in is accepted: its crop becomes the reference, its pose the baseline."""
    smiling = send_frame(server, session["sessionId"], data_url(jpeg(astronaut_bgr(), quality=80))).json
    assert smiling["reasonCode"] == "NOT_LOOKING_STRAIGHT" and smiling["measured"]["smile"] >= 80, smiling
    neutral = send_frame(server, session["sessionId"], data_url(jpeg(neutral_astronaut_bgr()))).json
    assert neutral["verdict"] == "ACCEPTED" and neutral["stepCode"] == "LOOK_STRAIGHT", neutral
    assert neutral["baseline"]["pitch"] == neutral["measured"]["pitch"] and abs(neutral["measured"]["pitch"]) <= 20
    return neutral


def _off_centre(bgr: np.ndarray, top: int) -> np.ndarray:
    """The photo's head, enlarged, pasted at the top of a grey frame: its line of sight is oblique, which a
    frame-centred camera model read as a head bent down."""
    head = cv2.resize(bgr[0:260, 110:340], None, fx=1.5, fy=1.5)
    canvas = np.full((480, 640, 3), 128, dtype=np.uint8)
    left = (canvas.shape[1] - head.shape[1]) // 2
    canvas[top : top + head.shape[0], left : left + head.shape[1]] = head
    return canvas


def test_the_real_analyzer_accepts_a_smile_and_no_photo_trick_passes_look_down(
    start_server: StartServer, mesh_analyzer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # About the pose and expression rules on one photo: no light step (test_sessions_light.py has the photo's).
    server = start_server(mesh_analyzer, STEP_COUNT="2", LIGHT_CHALLENGE="off")
    session = draw_session(server, monkeypatch, "SMILE", "LOOK_DOWN")
    look_straight_with_the_photo(server, session)
    photo = data_url(jpeg(astronaut_bgr()))
    first = send_frame(server, session["sessionId"], photo).json
    assert first["verdict"] == "ACCEPTED" and first["stepCode"] == "SMILE", first
    assert abs(first["measured"]["pitch"]) < 12 and first["measured"]["smile"] >= 80
    assert abs(first["measured"]["movement"]["pitch"]) < 12  # judged near the baseline
    assert first["similarity"] >= 90  # compared with the neutral frame's crop: the same face
    again = send_frame(server, session["sessionId"], photo).json  # the very same bytes: refused before any rule
    assert again["verdict"] == "REJECTED" and again["reasonCode"] == "REPEATED_FRAME", again
    # The same photo re-encoded, then pasted off-centre (which used to read as a head bent down): still no.
    for picture in (jpeg(astronaut_bgr(), quality=95), jpeg(_off_centre(astronaut_bgr(), top=0))):
        answer = send_frame(server, session["sessionId"], data_url(picture)).json
        assert answer["verdict"] == "REJECTED" and answer["reasonCode"] == "POSE_NOT_MET", answer
        assert answer["stepCode"] == "LOOK_DOWN" and answer["measured"]["pitch"] > -15
        assert answer["measured"]["movement"]["pitch"] > -15  # what the rule judged: no movement from the baseline
    state = get(server, session["sessionId"]).json
    statuses = [step["status"] for step in state["steps"]]
    assert state["analyzer"] == "local-mesh" and statuses == ["PASSED", "PASSED", "PENDING"]
    assert state["steps"][2]["reason"] == "POSE_NOT_MET"


@pytest.mark.parametrize("turn", ["TURN_LEFT", "TURN_RIGHT"])
def test_the_real_analyzer_rejects_a_turn_it_does_not_see(
    start_server: StartServer, mesh_analyzer: Any, monkeypatch: pytest.MonkeyPatch, turn: str
) -> None:
    server = start_server(mesh_analyzer, STEP_COUNT="2", LIGHT_CHALLENGE="off")  # about the turn rules only
    session = draw_session(server, monkeypatch, turn, "SMILE")
    look_straight_with_the_photo(server, session)
    answer = send_frame(server, session["sessionId"], data_url(jpeg(astronaut_bgr()))).json
    assert answer["verdict"] == "REJECTED" and answer["reasonCode"] == "POSE_NOT_MET"
    assert abs(answer["measured"]["yaw"]) < 25 and answer["currentStep"] == 1
    assert abs(answer["measured"]["movement"]["yaw"]) < 25
