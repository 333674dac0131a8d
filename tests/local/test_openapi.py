"""The OpenAPI contract (liveness/openapi.py) cannot drift from the routes, the schemas, the error codes or the
answers the server really gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastjsonschema
from liveness.errors import ErrorCode
from liveness.openapi import GATEWAY_ERRORS, OPERATIONS, ROUTE_STATUSES, openapi_document
from liveness.routes import ROUTES
from liveness.schemas import load_schema

from testkit.faces import face, face_for
from testkit.light_client import genuine_light
from tests.local.conftest import StartServer
from tests.local.support import call
from tests.runtime.session_helpers import ScriptedAnalyzer, data_url

DOCUMENT = openapi_document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def test_the_paths_and_methods_are_exactly_the_route_table() -> None:
    documented = {(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item}
    assert documented == {(route.method, route.resource) for route in ROUTES}
    assert set(OPERATIONS) == set(ROUTE_STATUSES) == documented


def test_request_bodies_are_the_schema_files() -> None:
    for route in ROUTES:
        operation = DOCUMENT["paths"][route.resource][route.method.lower()]
        if route.schema is None:
            assert "requestBody" not in operation
            continue
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = dict(load_schema(route.schema))
        schema.pop("$schema")
        assert SCHEMAS[ref.rsplit("/", 1)[1]] == schema


def test_every_error_code_is_documented_with_its_status() -> None:
    enum = set(SCHEMAS["ErrorCode"]["enum"])
    assert enum == {code.value for code in ErrorCode} | set(GATEWAY_ERRORS)
    statuses = {
        int(status)
        for item in DOCUMENT["paths"].values()
        for operation in item.values()
        for status in operation["responses"]
    }
    for code in ErrorCode:
        assert int(code.status) in statuses, code  # type: ignore[attr-defined]
    for status in (429, 503):
        operation = DOCUMENT["paths"]["/sessions/{id}/frames"]["post"]
        assert "Retry-After" in operation["responses"][str(status)]["headers"]


def test_every_reference_resolves() -> None:
    text = json.dumps(DOCUMENT)
    for part in text.split('"$ref": "#/components/schemas/')[1:]:
        assert part.split('"', 1)[0] in SCHEMAS


def test_the_local_server_serves_it(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer())
    reply = call(server.url, "GET", "/openapi.json")
    assert reply.status == 200 and reply.header("Content-Type") == "application/json"
    served = reply.json
    assert served["servers"] == [{"url": "/", "description": "This local server (no sign-in)"}]
    assert {**served, "servers": DOCUMENT["servers"]} == DOCUMENT


def test_make_synth_writes_it_beside_the_template(tmp_path: Path) -> None:
    from cdk_app.application import write_openapi

    path = write_openapi(tmp_path)
    assert path == tmp_path / "openapi.json"
    assert json.loads(path.read_text()) == DOCUMENT


def _check(answer: dict[str, Any], schema_name: str) -> None:
    """The answer's own keys, then the whole answer, nested fields included, through a JSON-schema validator."""
    schema = SCHEMAS[schema_name]
    assert set(answer) <= set(schema["properties"]), set(answer) - set(schema["properties"])
    assert set(schema["required"]) <= set(answer), set(schema["required"]) - set(answer)
    components = {name: _json_schema(item) for name, item in SCHEMAS.items()}
    validate = fastjsonschema.compile({**components[schema_name], "components": {"schemas": components}})
    validate(answer)


def _json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as plain JSON Schema (what a validator understands)."""
    if isinstance(schema, list):
        return [_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _json_schema(value) for key, value in schema.items() if key != "nullable"}
    return {"anyOf": [converted, {"type": "null"}]} if schema.get("nullable") else converted


def test_the_response_schemas_match_real_answers(start_server: StartServer) -> None:
    analyzer = ScriptedAnalyzer()
    analyzer.default_faces = [face()]
    server = start_server(analyzer)
    created = call(server.url, "POST", "/sessions", {})
    assert created.status == 201
    _check(created.json, "SessionCreated")
    session = created.json
    for step in session["steps"]:
        assert step["code"] in SCHEMAS["StepCode"]["enum"]
    answer = None
    for index, step in enumerate(session["steps"]):
        if step["code"] == "FOLLOW_LIGHT":
            answer = _light_step(server.url, session["sessionId"], analyzer)
            continue
        try:
            analyzer.script(face_for(step["code"]))
        except (KeyError, ValueError):  # a neutral step (or one this helper does not know): a frontal face
            analyzer.script(face())
        answer = call(server.url, "POST", f"/sessions/{session['sessionId']}/frames", {"image": data_url(index)})
        assert answer.status == 200, answer.json
        _check(answer.json, "FrameAnswer")
    assert answer is not None and answer.json["status"] == "PASSED"
    state = call(server.url, "GET", f"/sessions/{session['sessionId']}")
    _check(state.json, "SessionState")
    assert set(state.json["referenceFace"]) == set(SCHEMAS["SessionState"]["properties"]["referenceFace"]["properties"])
    missing = call(server.url, "GET", "/sessions/00000000-0000-4000-8000-000000000000")
    _check(missing.json, "Error")
    assert missing.json["code"] in SCHEMAS["ErrorCode"]["enum"]


def _light_step(url: str, session_id: str, analyzer: ScriptedAnalyzer) -> Any:
    """The light step as the page plays it: start, then one genuine batch (the lit astronaut)."""
    started = call(url, "POST", f"/sessions/{session_id}/light", {})
    assert started.status == 201, started.json
    _check(started.json, "LightChallenge")
    body, lit_face = genuine_light(started.json)
    analyzer.script(lit_face)
    answer = call(url, "POST", f"/sessions/{session_id}/light/frames", body)
    assert answer.status == 200 and answer.json["verdict"] == "ACCEPTED", answer.json
    _check(answer.json, "FrameAnswer")
    return answer


def test_the_detect_schema_matches_a_real_answer(start_server: StartServer) -> None:
    analyzer = ScriptedAnalyzer()
    analyzer.default_faces = [face()]
    server = start_server(analyzer)
    reply = call(server.url, "POST", "/detect", {"image_bytes": data_url(1)})
    assert reply.status == 200, reply.json
    _check(reply.json, "DetectResponse")
