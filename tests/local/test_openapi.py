"""The OpenAPI contract (liveness/openapi.py) cannot drift from the routes, the schemas, the error codes or the
answers the server really gives."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from liveness.errors import ErrorCode, LivenessError
from liveness.images.intake import parse_image_field, receive_upload
from liveness.images.limits import ImageLimits
from liveness.limits import SessionLimits
from liveness.openapi import (
    DEPLOYED,
    GATEWAY_ERRORS,
    IMAGE_PATTERN,
    OPERATIONS,
    ROUTE_STATUSES,
    SESSION_ID_PATTERN,
    image_field_max_length,
    openapi_document,
)
from liveness.routes import ROUTES
from liveness.schemas import load_schema
from liveness.sessions.store import is_session_id
from liveness.settings import Settings

from cdk_app.config import LivenessConfig
from local.gateway import LOCAL_CONTRACT_SERVER, USER_HEADER
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


def _tightens(documented: Any, model: Any) -> None:
    """``documented`` keeps every rule of ``model`` (the gateway's schema file) and may only add or narrow rules."""
    if not isinstance(model, dict):
        assert documented == model
        return
    for key, rule in model.items():
        if key in ("minimum", "minItems", "minLength"):
            assert documented[key] >= rule, key
        elif key in ("maximum", "maxItems", "maxLength"):
            assert documented[key] <= rule, key
        elif key != "description":
            _tightens(documented[key], rule)


def test_request_bodies_are_the_schema_files_with_the_functions_limits() -> None:
    for route in ROUTES:
        operation = DOCUMENT["paths"][route.resource][route.method.lower()]
        if route.schema is None:
            assert "requestBody" not in operation
            continue
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = dict(load_schema(route.schema))
        schema.pop("$schema")
        _tightens(SCHEMAS[ref.rsplit("/", 1)[1]], schema)


def _request(document: dict[str, Any], title: str) -> dict[str, Any]:
    return document["components"]["schemas"][title]


def test_the_limits_are_the_deployments_settings() -> None:
    settings = Settings(max_upload_bytes=3000, session_limits=SessionLimits(step_count=4, max_frames=42))
    document = openapi_document(DEPLOYED, settings)
    create = _request(document, "SessionCreateRequest")
    assert (create["properties"]["steps"]["minimum"], create["properties"]["steps"]["maximum"]) == (4, 5)
    for title, path in (("DetectRequest", ("image_bytes",)), ("SessionFrameRequest", ("image",))):
        field = _request(document, title)["properties"][path[0]]
        assert field["maxLength"] == len("data:image/jpeg;base64,") + 4000 and field["pattern"] == IMAGE_PATTERN
    light_image = _request(document, "LightFramesRequest")["properties"]["frames"]["items"]["properties"]["image"]
    assert light_image["maxLength"] == len("data:image/jpeg;base64,") + 4000
    assert (
        "this deployment: 42"
        in document["components"]["schemas"]["SessionCreated"]["properties"]["maxFrames"]["description"]
    )
    # A deployment whose minimum exceeds the steps without expressions cannot run without them.
    five = openapi_document(DEPLOYED, Settings(session_limits=SessionLimits(step_count=5)))
    assert _request(five, "SessionCreateRequest")["properties"]["excludeExpressions"]["enum"] == [False]


def test_the_image_field_bounds_are_the_intakes() -> None:
    """The longest field the document allows decodes to exactly the intake's largest upload; one more base64
    quad is refused as too large."""
    limits = ImageLimits(max_upload_bytes=3000)
    longest = "data:image/jpeg;base64," + "A" * (image_field_max_length(limits) - len("data:image/jpeg;base64,"))
    assert len(parse_image_field(longest, limits=limits)) == limits.max_upload_bytes
    with pytest.raises(LivenessError) as refused:
        receive_upload(longest, limits=limits)
    assert refused.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE  # the right size; just not an image
    with pytest.raises(LivenessError) as too_long:
        receive_upload(longest + "AAAA", limits=limits)
    assert too_long.value.code is ErrorCode.PAYLOAD_TOO_LARGE


@pytest.mark.parametrize(
    "value",
    ["AAAA", "QUJD", "QUI=", "QQ==", "data:image/png;base64,AAAA", "data:image/jpeg;base64,/9j/4AAQ", "ab+/" * 9],
)
def test_every_image_field_the_pattern_accepts_decodes(value: str) -> None:
    assert re.search(IMAGE_PATTERN, value)
    assert parse_image_field(value)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("0", ErrorCode.INVALID_IMAGE),
        ("AAA", ErrorCode.INVALID_IMAGE),
        ("A===", ErrorCode.INVALID_IMAGE),
        ("data:image/png;base64,", ErrorCode.INVALID_IMAGE),
        ("data:image/gif;base64,AAAA", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ("data:image/png,AAAA", ErrorCode.INVALID_IMAGE),
    ],
)
def test_image_fields_the_intake_refuses_as_malformed_break_the_pattern(value: str, code: ErrorCode) -> None:
    assert not re.search(IMAGE_PATTERN, value)
    with pytest.raises(LivenessError) as refused:
        parse_image_field(value)
    assert refused.value.code is code


@pytest.mark.parametrize(
    "value",
    [
        "0b4a3e5e-9a1d-4c1e-8f4e-2b7c9d1e0a5f",
        "0B4A3E5E-9A1D-4C1E-8F4E-2B7C9D1E0A5F",
        "0b4a3e5e9a1d4c1e8f4e2b7c9d1e0a5f",
    ],
)
def test_the_session_id_pattern_is_the_stores(value: str) -> None:
    assert bool(re.search(SESSION_ID_PATTERN, value)) == is_session_id(value)


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
    known = {**{code: int(status) for code, status in GATEWAY_ERRORS.items()}, **{c.value: c.status for c in ErrorCode}}  # type: ignore[attr-defined]
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400:  # each error status names exactly the codes that carry it
                    (_, narrowed) = response["content"]["application/json"]["schema"]["allOf"]
                    assert narrowed["properties"]["code"]["enum"] == sorted(
                        code for code, code_status in known.items() if code_status == int(status)
                    )
    for status in (429, 503):
        operation = DOCUMENT["paths"]["/sessions/{id}/frames"]["post"]
        assert "Retry-After" in operation["responses"][str(status)]["headers"]


def test_every_reference_resolves() -> None:
    text = json.dumps(DOCUMENT)
    for part in text.split('"$ref": "#/components/schemas/')[1:]:
        assert part.split('"', 1)[0] in SCHEMAS


def test_the_local_server_serves_its_own(start_server: StartServer) -> None:
    server = start_server(ScriptedAnalyzer(), STEP_COUNT="4")
    reply = call(server.url, "GET", "/openapi.json")
    assert reply.status == 200 and reply.header("Content-Type") == "application/json"
    served = reply.json
    assert served == openapi_document(LOCAL_CONTRACT_SERVER, server.deps.settings)
    assert served["servers"] == [{"url": "/", "description": "This local server (no sign-in)"}]
    assert served["components"]["schemas"]["SessionCreateRequest"]["properties"]["steps"]["minimum"] == 4


def _without_server_differences(document: dict[str, Any]) -> dict[str, Any]:
    """The document less what says where the server is and how it knows the caller."""
    document = copy.deepcopy(document)
    document.pop("servers")
    document["components"].pop("securitySchemes", None)
    for item in document["paths"].values():
        for operation in item.values():
            operation.pop("security", None)
            parameters = [parameter for parameter in operation.pop("parameters", []) if parameter["in"] != "header"]
            if parameters:
                operation["parameters"] = parameters
    return document


def test_the_two_documents_differ_only_where_the_servers_do() -> None:
    settings = Settings(session_limits=SessionLimits(step_count=4))
    deployed, local = openapi_document(DEPLOYED, settings), openapi_document(LOCAL_CONTRACT_SERVER, settings)
    assert _without_server_differences(deployed) == _without_server_differences(local)
    assert deployed != local
    assert deployed["components"]["securitySchemes"]["cognito"]["name"] == "Authorization"
    assert "securitySchemes" not in local["components"]
    for path, item in deployed["paths"].items():
        for method, operation in item.items():
            assert operation["security"] == [{"cognito": []}]
            local_operation = local["paths"][path][method]
            assert "security" not in local_operation
            (header,) = [parameter for parameter in local_operation["parameters"] if parameter["in"] == "header"]
            assert header["name"] == USER_HEADER and header["required"] is False
            assert all(parameter["in"] != "header" for parameter in operation.get("parameters", []))


@pytest.mark.parametrize(("user", "status"), [("", 201), ("alice@example.com", 201), ("not a user!", 401)])
def test_the_local_user_header_pattern_is_the_fronts(start_server: StartServer, user: str, status: int) -> None:
    server = start_server(ScriptedAnalyzer())
    (header,) = openapi_document(LOCAL_CONTRACT_SERVER)["paths"]["/sessions"]["post"]["parameters"]
    assert bool(re.search(header["schema"]["pattern"], user)) == (status == 201)
    reply = call(server.url, "POST", "/sessions", {}, headers={USER_HEADER: user})
    assert reply.status == status, reply.json


def test_make_synth_writes_the_deployed_one_beside_the_template(tmp_path: Path) -> None:
    from cdk_app.application import write_openapi

    config = LivenessConfig(allowed_origins=("https://example.com",), session_tuning={"STEP_COUNT": "4"})
    path = write_openapi(tmp_path, config)
    assert path == tmp_path / "openapi.json"
    written = json.loads(path.read_text())
    assert written == openapi_document(DEPLOYED, Settings(session_limits=SessionLimits(step_count=4)))
    assert written["paths"]["/sessions"]["post"]["security"] == [{"cognito": []}]
    # The demo-only deployment without an authorizer says so.
    open_config = dataclasses.replace(config, disable_auth=True)
    assert "security" not in json.loads(write_openapi(tmp_path, open_config).read_text())["paths"]["/sessions"]["post"]


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
