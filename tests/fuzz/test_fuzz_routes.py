"""Property-based fuzzing of the routes through the real Lambda entry point, with the embedded analyzer
and the file-backed storage of local mode.

Inputs: PNG and JPEG files built by real encoders and then mutated structurally (chunk lengths, IHDR and SOF
sizes, repeated scans, truncation with and without the end marker put back, flipped bytes), wrong types for
every field, JSON nested or sized far past sense, and hostile session ids. Invariants, for every case: never a
5xx; every error in the JSON shape with a stable code and a bounded message; and bounded work: every decode
the handler runs is counted, and its pixels x scans (counted from the bytes, independently of the code under
test) stay within the budget, and the process's peak memory grows by less than 256 MB over the whole run.
"""

from __future__ import annotations

import base64
import json
import resource
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from liveness import handler
from liveness.archive import FileArchive
from liveness.dependencies import Dependencies
from liveness.images import decode
from liveness.images.limits import MAX_DECODE_WORK, MAX_PIXELS
from liveness.light.sequence import draw_sequence
from liveness.limits import AttemptLimits
from liveness.sessions.light_transitions import open_light
from liveness.sessions.store import FileSessionStore
from liveness.settings import Settings

from testkit.bombs import jpeg_segments, patterned, png_chunk
from testkit.events import LambdaContext, api_event
from testkit.images import scene_bgr
from tests.fuzz.conftest import CASES, STATUSES

ERROR_BODY_MAX_BYTES = 1200
UNLIMITED_ATTEMPTS = AttemptLimits(max_open_sessions=10**9, max_failed_sessions=10**9, max_sessions_per_minute=10**9)
MEMORY_GROWTH_MAX_MB = 256


@dataclass
class Harness:
    """The handler wired like ``make run``, plus the decoder's counted work."""

    root: Path
    decodes: list[tuple[int, int, int]] = field(default_factory=list)  # (width, height, scans) per decode
    baseline_maxrss_kb: int = 0

    def call(self, method: str, resource_template: str, path: str, body: Any = None, **params: str) -> dict[str, Any]:
        event = api_event(
            method, path, body, sub="fuzz-user", path_parameters=params or None, resource=resource_template
        )
        response = handler.lambda_handler(event, LambdaContext())
        check_invariants(response)
        STATUSES[f"{response['statusCode']} {_code_of(response)}"] += 1
        growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.baseline_maxrss_kb) / 1024
        assert growth_mb < MEMORY_GROWTH_MAX_MB, f"peak memory grew by {growth_mb:.0f} MB"
        return response

    def new_session(self) -> str:
        response = self.call("POST", "/sessions", "/sessions", {})
        assert response["statusCode"] == 201, response["body"]
        return json.loads(response["body"])["sessionId"]

    def session_with_light_open(self) -> tuple[str, str]:
        """A session at its light step with a challenge running (set in the store: passing the neutral start is
        not what the light routes' fuzzing is about); answers its id and the challenge's id."""
        session_id = self.new_session()
        store = FileSessionStore(self.root / "sessions")
        session = store.get(session_id)
        assert session is not None and session.steps[1].code.value == "FOLLOW_LIGHT"
        at_light = replace(session, current_step=1, reference_frame_id=None)
        opened = open_light(at_light, draw_sequence(), at_light.created_at)
        store.save(opened, expected_version=session.version)
        assert opened.light_challenge is not None
        return session_id, opened.light_challenge.sequence.challenge_id


def check_invariants(response: dict[str, Any]) -> None:
    status = response["statusCode"]
    assert status < 500, response["body"][:500]
    if status >= 400:
        headers = response.get("headers") or {}
        multi = response.get("multiValueHeaders") or {}
        content_type = headers.get("Content-Type") or (multi.get("Content-Type") or [""])[0]
        assert content_type.startswith("application/json")
        assert len(response["body"]) < ERROR_BODY_MAX_BYTES, response["body"][:300]
        body = json.loads(response["body"])
        assert set(body) == {"code", "message", "requestId"}
        assert body["code"].isupper() and body["message"] and "Traceback" not in body["message"]


def _code_of(response: dict[str, Any]) -> str:
    return json.loads(response["body"]).get("code", "") if response["statusCode"] >= 400 else ""


def _scans_in(raw: bytes) -> int:
    """Start-of-scan markers in the bytes: an upper bound on a JPEG's scans (0xFF is stuffed in scan data)."""
    return max(1, raw.count(b"\xff\xda")) if raw.startswith(b"\xff\xd8") else 1


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, mesh_analyzer: Any) -> Iterator[Harness]:
    root = tmp_path_factory.mktemp("fuzz-data")
    deps = Dependencies(
        # The fuzzer creates hundreds of sessions as one user: the attempt policy is not what it is about (its own
        # tests: tests/runtime/test_attempt_limits.py), so its caps are out of the way here.
        settings=Settings(analyzer="local", storage="file", data_dir=root, attempt_limits=UNLIMITED_ATTEMPTS),
        analyzer=mesh_analyzer,
        archive=FileArchive(root / "archive"),
        session_store=FileSessionStore(root / "sessions"),
    )
    handler.use_dependencies(deps)
    # The peak so far (other tests in this worker may have set it); set again after the warm-up below.
    harness = Harness(root=root, baseline_maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    real_imdecode = cv2.imdecode

    def counting_imdecode(buffer: np.ndarray, flags: int) -> Any:
        raw = buffer.tobytes()
        decoded = real_imdecode(buffer, flags)
        if decoded is not None:
            height, width = decoded.shape[:2]
            harness.decodes.append((width, height, _scans_in(raw)))
            assert width * height <= MAX_PIXELS
            # nothing after the end marker reaches the decoder (or the archive, which keeps the same bytes)
            assert raw.endswith(b"\xff\xd9") if raw.startswith(b"\xff\xd8") else raw[-8:-4] == b"IEND"
            assert width * height * _scans_in(raw) <= MAX_DECODE_WORK, (width, height, _scans_in(raw))
        return decoded

    decode.cv2.imdecode = counting_imdecode  # restored below; cv2 is one module for the whole process
    try:
        harness.new_session()  # warm: the analyzer's buffers and the store's folders are not a case's cost
        harness.call("POST", "/detect", "/detect", {"image_bytes": _data_url(_jpeg(scene_bgr(160, 120)))})
        harness.baseline_maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        yield harness
    finally:
        decode.cv2.imdecode = real_imdecode


# ---------------------------------------------------------------------------------------------------------
# Image material: real encoder output, then structural mutations


def _jpeg(image: np.ndarray, progressive: bool = False, quality: int = 80) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    return cv2.imencode(".jpg", image, params)[1].tobytes()


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


_BASES = {
    "jpeg": _jpeg(scene_bgr(128, 96)),
    "jpeg-progressive": _jpeg(scene_bgr(128, 96), progressive=True),
    "jpeg-gray": _jpeg(cv2.cvtColor(scene_bgr(96, 96), cv2.COLOR_BGR2GRAY)),
    # 4 MP that compresses to little: each repeated scan is a full pass over 4 MP (the CPU bomb's shape).
    "jpeg-large-progressive": _jpeg(patterned(2000, 2000), progressive=True, quality=50),
    "png": _png(scene_bgr(96, 96)),
    "png-rgba": _png(cv2.cvtColor(patterned(96, 96), cv2.COLOR_BGR2BGRA)),
}


def _png_chunks(raw: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each chunk of an encoder's PNG."""
    found, position = [], 8
    while position + 8 <= len(raw):
        length = struct.unpack(">I", raw[position : position + 4])[0]
        found.append((position, length))
        position += 12 + length
    return found


def _trailers() -> st.SearchStrategy[bytes]:
    """Bytes after the end marker: a camera's zero padding (up to past its 4 KB bound), or anything."""
    return st.one_of(st.integers(1, 5000).map(bytes), st.binary(min_size=1, max_size=4096))


@st.composite
def png_mutants(draw: st.DrawFn) -> bytes:
    raw = bytearray(_BASES[draw(st.sampled_from(["png", "png-rgba"]))])
    chunks = _png_chunks(bytes(raw))
    kind = draw(
        st.sampled_from(["length", "ihdr", "many-chunks", "truncate", "truncate-iend", "flip", "insert", "trailing"])
    )
    if kind == "length":  # any chunk's length field: 0, small, past the end, 0x7FFFFFFF, 0xFFFFFFFF
        offset, _ = draw(st.sampled_from(chunks))
        value = draw(st.one_of(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]), st.integers(0, 2**32 - 1)))
        raw[offset : offset + 4] = struct.pack(">I", value)
    elif kind == "ihdr":  # declared size, depth, colour type, compression, filter, interlace
        width = draw(st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 79, 80, 6000, 65535, 2**31])))
        height = draw(st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 79, 80, 6600, 65535, 2**31])))
        tail = draw(st.binary(min_size=5, max_size=5))
        raw[16:29] = struct.pack(">II", width, height) + tail
    elif kind == "many-chunks":
        count = draw(st.integers(1, 6000))
        extra = png_chunk(b"tEXt", b"k\0v") * count
        raw[33:33] = extra
    elif kind == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif kind == "truncate-iend":
        raw = raw[: draw(st.integers(8, len(raw) - 12))] + png_chunk(b"IEND", b"")
    elif kind == "trailing":
        raw += draw(_trailers())
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(8, len(raw) - 1))
            raw[position] ^= draw(st.integers(1, 255))
    else:
        position = draw(st.integers(8, len(raw)))
        raw[position:position] = draw(st.binary(min_size=1, max_size=64))
    return bytes(raw)


@st.composite
def jpeg_mutants(draw: st.DrawFn) -> bytes:
    base = draw(st.sampled_from(["jpeg", "jpeg-progressive", "jpeg-gray", "jpeg-large-progressive"]))
    raw = bytearray(_BASES[base])
    segments = jpeg_segments(bytes(raw))
    kind = draw(st.sampled_from(["sof", "scans", "truncate", "truncate-eoi", "flip", "length", "marker", "trailing"]))
    if kind == "sof":  # declared size up to 65535x65535, components, precision
        start = next(start for marker, start, _ in segments if marker in (0xC0, 0xC2))
        raw[start + 4] = draw(st.sampled_from([8, 12, 16, 0]))
        raw[start + 5 : start + 9] = struct.pack(">HH", draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
    elif kind == "scans":  # one scan repeated: a handful, past the cap, or thousands
        scans = [(start, end) for marker, start, end in segments if marker == 0xDA]
        start, end = draw(st.sampled_from(scans))
        repeats = draw(st.one_of(st.integers(1, 80), st.integers(1, 3000)))
        raw = raw[:-2] + raw[start:end] * repeats + b"\xff\xd9"
    elif kind == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif kind == "truncate-eoi":  # cut short, end marker put back: what defect 7 let through
        raw = raw[: draw(st.integers(2, len(raw) - 3))] + b"\xff\xd9"
    elif kind == "trailing":
        raw += draw(_trailers())
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(2, len(raw) - 1))
            raw[position] ^= draw(st.integers(1, 255))
    elif kind == "length":  # a segment's length field
        _, start, _ = draw(st.sampled_from([segment for segment in segments if segment[0] != 0xD9]))
        raw[start + 2 : start + 4] = struct.pack(">H", draw(st.integers(0, 65535)))
    else:  # a marker replaced: arithmetic, lossless, hierarchical frames; stray RST, SOI, EOI
        _, start, _ = draw(st.sampled_from(segments))
        raw[start + 1] = draw(st.integers(0, 255))
    return bytes(raw)


def _data_url(raw: bytes, media_type: str = "image/jpeg") -> str:
    return f"data:{media_type};base64,{base64.b64encode(raw).decode()}"


@st.composite
def image_fields(draw: st.DrawFn) -> str:
    raw = draw(st.one_of(png_mutants(), jpeg_mutants()))
    wrapping = draw(st.sampled_from(["data-url", "plain", "lying-type", "odd-params"]))
    if wrapping == "plain":
        return base64.b64encode(raw).decode()
    if wrapping == "lying-type":
        declared = draw(
            st.one_of(
                st.sampled_from(["image/png", "image/gif", "text/html", "IMAGE/JPEG"]),
                st.integers(1, 200_000).map(lambda length: "image/" + "x" * length),  # echoed in the 415
            )
        )
        return _data_url(raw, declared)
    if wrapping == "odd-params":
        return (
            f"data:image/jpeg;name={draw(st.text(max_size=40)).replace(',', '')};base64,"
            + base64.b64encode(raw).decode()
        )
    return _data_url(raw)


# ---------------------------------------------------------------------------------------------------------
# JSON material


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@st.composite
def hostile_bodies(draw: st.DrawFn, fields: tuple[str, ...]) -> Any:
    """A body as text: every field of the route with a value of any type, extra keys, or pathological JSON."""
    kind = draw(st.sampled_from(["typed", "deep", "wide", "huge-number", "huge-string", "huge-key", "not-json"]))
    if kind == "typed":
        body = {name: draw(json_values) for name in draw(st.lists(st.sampled_from(fields), unique=True))}
        body.update(draw(st.dictionaries(st.text(max_size=20), json_values, max_size=3)))
        return json.dumps(body) if draw(st.booleans()) else json.dumps(draw(json_values))
    if kind == "deep":
        depth = draw(st.integers(100, 100_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return opener * depth + "1" + closer * depth
    if kind == "wide":
        return json.dumps({f"k{index}": index for index in range(draw(st.integers(100, 20_000)))})
    if kind == "huge-number":
        return '{"%s": %s}' % (draw(st.sampled_from(fields)), "9" * draw(st.integers(1000, 100_000)))
    if kind == "huge-string":
        return json.dumps({draw(st.sampled_from(fields)): "A" * draw(st.integers(1, 700_000))})
    if kind == "huge-key":
        return json.dumps({"k" * draw(st.integers(100, 500_000)): 1})
    return draw(st.text(max_size=200))


hostile_ids = st.one_of(
    st.text(min_size=1, max_size=60).filter(lambda text: "/" not in text),
    st.sampled_from(['"', "?", "\U0001f600", "..", "%2e%2e", "00000000-0000-0000-0000-000000000000", " " * 3]),
    st.uuids().map(str),
    st.uuids().map(lambda value: str(value).upper()),
    st.integers(1, 5000).map(lambda length: "x" * length),
)


# ---------------------------------------------------------------------------------------------------------
# Properties


@given(image=image_fields(), route=st.sampled_from(["detect", "frame"]))
def test_hostile_images_on_detect_and_frames(harness: Harness, image: str, route: str) -> None:
    CASES["images"] += 1
    if route == "detect":
        harness.call("POST", "/detect", "/detect", {"image_bytes": image})
    else:
        session_id = harness.new_session()
        path = f"/sessions/{session_id}/frames"
        harness.call("POST", "/sessions/{id}/frames", path, {"image": image}, id=session_id)


@given(body=hostile_bodies(("image_bytes", "width", "height")))
def test_hostile_bodies_on_detect(harness: Harness, body: str) -> None:
    CASES["detect-bodies"] += 1
    harness.call("POST", "/detect", "/detect", body)


@given(body=hostile_bodies(("steps", "excludeExpressions", "mirrored")))
def test_hostile_bodies_on_session_create(harness: Harness, body: str) -> None:
    CASES["create-bodies"] += 1
    harness.call("POST", "/sessions", "/sessions", body)


@given(body=hostile_bodies(("image", "mirrored")))
def test_hostile_bodies_on_frames(harness: Harness, body: str) -> None:
    CASES["frame-bodies"] += 1
    session_id = harness.new_session()
    harness.call("POST", "/sessions/{id}/frames", f"/sessions/{session_id}/frames", body, id=session_id)


@st.composite
def hostile_batches(draw: st.DrawFn, challenge_id: str) -> Any:
    """A light batch for the running challenge with hostile frames: mutated images, any indices and offsets."""
    frame = st.fixed_dictionaries(
        {
            "image": image_fields(),
            "colorIndex": st.one_of(st.integers(-3, 20), json_scalars),
            "offsetMs": st.one_of(st.sampled_from([260, -60]), st.integers(-20_000, 20_000), json_scalars),
        }
    )
    return {"challengeId": draw(st.sampled_from([challenge_id, "x"])), "frames": draw(st.lists(frame, max_size=14))}


@given(data=st.data())
def test_hostile_light_batches(harness: Harness, data: st.DataObject) -> None:
    CASES["light-batches"] += 1
    session_id, challenge_id = harness.session_with_light_open()
    body = data.draw(hostile_batches(challenge_id))
    path = f"/sessions/{session_id}/light/frames"
    response = harness.call("POST", "/sessions/{id}/light/frames", path, body, id=session_id)
    assert response["statusCode"] in (400, 413, 415), response["body"][:300]  # never judged: always malformed


@given(body=hostile_bodies(("challengeId", "frames")), route=st.sampled_from(["light", "light/frames"]))
def test_hostile_bodies_on_the_light_routes(harness: Harness, body: str, route: str) -> None:
    CASES["light-bodies"] += 1
    session_id, _ = harness.session_with_light_open()
    harness.call("POST", "/sessions/{id}/" + route, f"/sessions/{session_id}/{route}", body, id=session_id)


@given(session_id=hostile_ids, method=st.sampled_from(["GET", "POST"]))
def test_hostile_session_ids(harness: Harness, session_id: str, method: str) -> None:
    CASES["ids"] += 1
    if method == "GET":
        response = harness.call("GET", "/sessions/{id}", f"/sessions/{session_id}", id=session_id)
    else:
        response = harness.call(
            "POST", "/sessions/{id}/frames", f"/sessions/{session_id}/frames", {"image": "AAAA"}, id=session_id
        )
    assert response["statusCode"] in (400, 404), response["body"]
    expected = {400: "INVALID_REQUEST", 404: "SESSION_NOT_FOUND"}[response["statusCode"]]
    assert json.loads(response["body"])["code"] == expected


def test_the_fuzz_run_decoded_real_images(harness: Harness) -> None:
    """The counted decoder saw work (so the bounds above were measured, not skipped)."""
    harness.call("POST", "/detect", "/detect", {"image_bytes": _data_url(_jpeg(scene_bgr(640, 480)))})
    assert harness.decodes and max(width * height for width, height, _ in harness.decodes) >= 640 * 480
