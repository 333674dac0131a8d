"""Session frames and light-step batches go through the same intake as /detect: an image with bytes after its
end marker (a polyglot) is refused before anything is judged or archived; a camera's zero padding is stripped."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from liveness.challenges import StepCode

from testkit.bombs import zip_archive
from testkit.faces import face_for
from testkit.light_client import genuine_light
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    LIGHT_OFF,
    Rig,
    fake_aws_env,
    file_rig,
    jpeg_bytes,
    rig,
)


def url(raw: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(raw).decode()


@pytest.fixture
def archived(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    return recorded_writes(rig, monkeypatch)


def recorded_writes(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """Every object the routes write to the archive (passed on to the real archive)."""
    writes: list[tuple[str, bytes]] = []
    real = rig.deps.archive.put_new

    def recording(key: str, body: bytes, content_type: str, metadata: Any = None) -> None:
        writes.append((key, body))
        real(key, body, content_type, metadata)

    monkeypatch.setattr(rig.deps.archive, "put_new", recording)
    return writes


def test_a_frame_with_a_zip_after_its_end_is_refused_and_nothing_is_archived(
    rig: Rig, archived: list[tuple[str, bytes]]
) -> None:
    rig.deps.settings = LIGHT_OFF
    session_id = rig.client.create().body["sessionId"]
    reply = rig.client.frame(session_id, image=url(jpeg_bytes(seed=3) + zip_archive()))
    assert (reply.status, reply.body["code"]) == (400, "IMAGE_TRAILING_DATA"), reply.body
    assert archived == [] and rig.analyzer.detect_calls == 0
    assert rig.store.get(session_id).frames_received == 0


def test_a_zero_padded_frame_is_judged_and_archived_without_its_padding(
    rig: Rig, archived: list[tuple[str, bytes]]
) -> None:
    rig.deps.settings = LIGHT_OFF
    session_id = rig.client.create().body["sessionId"]
    image = jpeg_bytes(seed=4)
    rig.analyzer.script(face_for(StepCode.LOOK_STRAIGHT))
    reply = rig.client.frame(session_id, image=url(image + bytes(64)))
    assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body
    frames = [body for key, body in archived if "/frames/" in key and not key.endswith("-face.jpg")]
    assert frames == [image], [key for key, _ in archived]


def test_a_light_batch_with_a_payload_in_one_frame_is_refused_before_any_analysis(
    tmp_path: Any, fake_aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    enforce = file_rig(tmp_path)  # the deployment's default: the light step enforced
    session_id = enforce.client.create().body["sessionId"]
    enforce.analyzer.script(face_for(StepCode.LOOK_STRAIGHT))
    assert enforce.client.frame(session_id, seed=1000).body["verdict"] == "ACCEPTED"
    started = enforce.client.call("POST", f"/sessions/{session_id}/light", {})
    assert started.status == 201, started.body
    body, lit_face = genuine_light(started.body)
    frames = body["frames"]
    first = base64.b64decode(frames[0]["image"].partition(",")[2])
    tampered = {**body, "frames": [{**frames[0], "image": url(first + zip_archive())}, *frames[1:]]}
    calls, archived = enforce.analyzer.detect_calls, recorded_writes(enforce, monkeypatch)
    reply = enforce.client.call("POST", f"/sessions/{session_id}/light/frames", tampered)
    assert (reply.status, reply.body["code"]) == (400, "IMAGE_TRAILING_DATA"), reply.body
    assert enforce.analyzer.detect_calls == calls and archived == []
    enforce.analyzer.script(lit_face)  # the same batch without the payload is judged: the challenge is still open
    assert enforce.client.call("POST", f"/sessions/{session_id}/light/frames", body).body["verdict"] == "ACCEPTED"
