"""POST /detect end to end over HTTP with the embedded analyzer: a real face in, a real crop out, evidence on disk."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.local.conftest import StartServer
from tests.local.support import ALLOWED_ORIGIN, astronaut_bgr, blank_bgr, call, data_url, is_jpeg, jpeg


def test_a_real_face_round_trip(start_server: StartServer, mesh_analyzer: Any, data_dir: Path) -> None:
    server = start_server(mesh_analyzer)
    upload = jpeg(astronaut_bgr())
    reply = call(server.url, "POST", "/detect", {"image_bytes": data_url(upload)}, headers={"Origin": ALLOWED_ORIGIN})

    assert reply.status == 200, reply.raw
    body = reply.json
    assert body["faceCount"] == 1
    assert set(body["pose"]) == {"yaw", "pitch", "roll"}
    assert is_jpeg(base64.b64decode(body["encoded_face_image"]))
    assert body["requestId"] == reply.header("x-amzn-RequestId")
    assert reply.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    archive = data_dir / "archive"
    assert (archive / body["archive"]["frameKey"]).read_bytes() == upload  # the upload as received
    assert is_jpeg((archive / body["archive"]["faceKey"]).read_bytes())


def test_a_blank_image_is_422_no_face(start_server: StartServer, mesh_analyzer: Any, data_dir: Path) -> None:
    server = start_server(mesh_analyzer)
    reply = call(server.url, "POST", "/detect", {"image_bytes": data_url(jpeg(blank_bgr()))})
    assert reply.status == 422
    assert reply.json["code"] == "NO_FACE" and set(reply.json) == {"code", "message", "requestId"}
    assert not list((data_dir / "archive").rglob("*.jpg"))
