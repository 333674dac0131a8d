"""What a session leaves in the logs and metrics: ids, verdicts and latency, never image data.

Driven through the Lambda entry point (so the handler's metrics flush runs), with moto storage and the scripted
analyzer; the Powertools logs are captured through the logger's own JSON formatter."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from liveness import handler

from testkit.aws import OWNER
from testkit.events import LambdaContext, api_event
from testkit.faces import face_for
from testkit.light_client import genuine_light
from tests.runtime.session_helpers import Rig, aws, data_url, fake_aws_env  # noqa: F401  (fixtures)


def _invoke(method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = handler.lambda_handler(api_event(method, path, body, sub=OWNER), LambdaContext())
    return {"status": response["statusCode"], **json.loads(response["body"])}


def _fragments(secret: str) -> set[str]:
    """24-character windows across the whole base64 text: any leaked piece of it would match one."""
    return {secret[i : i + 24] for i in range(0, max(len(secret) - 24, 1), 997)}


def test_session_logs_carry_ids_and_verdicts_but_no_image_data(
    aws: Rig, capsys: pytest.CaptureFixture[str], structured_logs: io.StringIO
) -> None:
    handler.use_dependencies(aws.deps)
    created = _invoke("POST", "/sessions", {})
    session_id = created["sessionId"]
    uploads = []
    for index, step in enumerate(created["steps"]):
        if step["code"] == "FOLLOW_LIGHT":  # the light step's batch: twelve frames, none of them logged either
            started = _invoke("POST", f"/sessions/{session_id}/light", {})
            body, lit_face = genuine_light(started)
            aws.analyzer.script(lit_face)
            uploads.extend(frame["image"] for frame in body["frames"])
            answer = _invoke("POST", f"/sessions/{session_id}/light/frames", body)
            assert answer["verdict"] == "ACCEPTED", answer
            continue
        aws.analyzer.script(face_for(step["code"]))
        uploads.append(data_url(seed=index))
        answer = _invoke("POST", f"/sessions/{session_id}/frames", {"image": uploads[-1]})
        assert answer["verdict"] == "ACCEPTED", answer
    state = _invoke("GET", f"/sessions/{session_id}")
    assert state["status"] == "PASSED"
    reference = state["referenceFace"]["base64"]

    logs = structured_logs.getvalue() + capsys.readouterr().out  # Powertools logs plus EMF metric records
    frame_lines = [json.loads(line) for line in logs.splitlines() if '"message":"Frame evaluated"' in line]
    # The neutral start, the light step (one line for its batch, with its measured response) and the 3 drawn steps.
    assert created["steps"][0]["code"] == "LOOK_STRAIGHT" and created["steps"][1]["code"] == "FOLLOW_LIGHT"
    assert len(frame_lines) == 5 and {line["sessionId"] for line in frame_lines} == {session_id}
    assert [line["verdict"] for line in frame_lines] == ["ACCEPTED"] * 5
    assert frame_lines[1]["light"]["outcome"] == "PASSED" and "rho" in frame_lines[1]["light"]
    assert all(line["latencyMs"] >= 0 for line in frame_lines)
    assert '"Name":"FrameLatency","Unit":"Milliseconds"' in logs  # the per-frame latency metric was flushed
    assert '"message":"Session closed"' in logs and '"status":"PASSED"' in logs

    for secret in [upload.split(",", 1)[1] for upload in uploads] + [reference]:
        assert not any(fragment in logs for fragment in _fragments(secret))
    assert base64.b64decode(reference).startswith(b"\xff\xd8\xff")  # the check above looked for real image data
    assert "data:image" not in logs and "/9j/" not in logs  # no data URL, no JPEG base64 header
