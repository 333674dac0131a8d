"""Error answers through the real handler: ids the resolver's pattern refuses are 400 like other malformed
ids, and no message echoes unbounded client input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from liveness.errors import MESSAGE_MAX_CHARS, ErrorCode, LivenessError, clip

from tests.runtime.session_helpers import Rig, aws, fake_aws_env  # noqa: F401  (fixtures)


def call(
    rig: Rig, method: str, resource: str, path: str, body: Any = None, **params: str
) -> tuple[int, dict[str, Any]]:
    from testkit.events import api_event

    event = api_event(method, path, body, sub="user-a-sub", path_parameters=params or None, resource=resource)
    response = rig.client.app.resolve(event, rig.client.context)
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("session_id", ['"', "a?b", "\U0001f600", "x" * 5000, "not-a-uuid"])
def test_a_malformed_session_id_is_400_whatever_its_characters(aws: Rig, session_id: str) -> None:
    for method, resource, path in (
        ("GET", "/sessions/{id}", f"/sessions/{session_id}"),
        ("POST", "/sessions/{id}/frames", f"/sessions/{session_id}/frames"),
    ):
        status, body = call(aws, method, resource, path, {"image": "x"} if method == "POST" else None, id=session_id)
        assert (status, body["code"]) == (400, "INVALID_REQUEST"), (path, body)
        assert len(body["message"]) < 100


def test_an_undefined_route_is_still_404_not_found(aws: Rig) -> None:
    status, body = call(aws, "GET", "/nowhere", "/nowhere")
    assert (status, body["code"]) == (404, "NOT_FOUND")


def test_an_unknown_500_kb_key_is_not_echoed_back_whole(aws: Rig) -> None:
    status, body = call(aws, "POST", "/sessions", "/sessions", {"k" * 500_000: 1, "other": 2})
    assert (status, body["code"]) == (400, "INVALID_REQUEST")
    assert len(json.dumps(body)) < 1000 and "kkkk" in body["message"] and "more characters" in body["message"]


def test_a_200_kb_media_type_is_not_echoed_back_whole(aws: Rig) -> None:
    status, body = call(
        aws, "POST", "/detect", "/detect", {"image_bytes": "data:image/" + "x" * 200_000 + ";base64,AAAA"}
    )
    assert (status, body["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert len(json.dumps(body)) < 1000


def test_every_message_is_bounded_whatever_built_it() -> None:
    error = LivenessError(ErrorCode.INVALID_REQUEST, "x" * 100_000)
    assert len(error.body("r")["message"]) < MESSAGE_MAX_CHARS + 40
    assert clip("short") == "short"
