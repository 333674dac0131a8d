"""Shared helpers for the session tests: a fake clock, a scripted analyzer, real encoded frames, REST events.

Only what sits across the network is faked (the analyzer). Frames are real JPEGs that go through the real
decode/validate/crop/encode path; DynamoDB and S3 are moto.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from liveness.archive import FileArchive, S3Archive
from liveness.challenges import StepCode, challenge
from liveness.dependencies import Dependencies
from liveness.faces import FaceComparison, FaceDetail, Frame
from liveness.handler import create_app
from liveness.sessions.store import DynamoDbSessionStore, FileSessionStore
from liveness.sessions.transitions import new_session
from liveness.settings import Settings
from moto import mock_aws

from testkit.aws import BUCKET, FAKE_AWS_ENV, OWNER, TABLE, create_aws_resources
from testkit.events import api_event
from testkit.faces import face, face_for
from testkit.light_client import genuine_light

START = datetime(2026, 11, 3, 9, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """The server's clock, moved by tests; thread-safe enough for concurrent readers."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


class ScriptedAnalyzer:
    """Stands in for Rekognition: scripted faces per frame, scripted similarity; records its calls."""

    name = "scripted"
    pose_robust_comparison = False  # like the embedded analyzer: a comparison range, and the identity chain

    def __init__(self) -> None:
        self.faces: deque[list[FaceDetail]] = deque()
        self.default_faces: list[FaceDetail] | None = None
        self.similarity: float | None = 99.0
        self.detect_calls = 0
        self.compare_calls: list[tuple[int, int]] = []
        # Runs once, inside the next detect_faces call: lets a test interleave another request deterministically.
        self.during_next_detect: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def script(self, *frames: list[FaceDetail] | FaceDetail) -> None:
        for item in frames:
            self.faces.append(item if isinstance(item, list) else [item])

    def detect_faces(self, frame: Frame) -> list[FaceDetail]:
        assert frame.width >= 80 and frame.encoded  # a real decoded frame reached the analyzer
        hook, self.during_next_detect = self.during_next_detect, None
        if hook is not None:
            hook()
        with self._lock:
            self.detect_calls += 1
            if self.faces:
                return self.faces.popleft()
        assert self.default_faces is not None, "the test did not script this frame"
        return self.default_faces

    def compare_faces(self, reference: Frame, candidate: Frame) -> FaceComparison:
        assert reference.encoded.startswith(b"\xff\xd8\xff")  # the stored reference crop, as JPEG
        with self._lock:
            self.compare_calls.append((reference.width, candidate.width))
        return FaceComparison(similarity=self.similarity, method="scripted")


def jpeg_bytes(seed: int = 0, width: int = 640, height: int = 480) -> bytes:
    """A real JPEG: a gradient plus seeded noise, so every seed gives different bytes."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    image = np.clip(gradient + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buffer.tobytes()


def data_url(seed: int = 0) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(seed)).decode("ascii")


def rest_event(
    method: str, path: str, body: Any = None, *, sub: str | None = OWNER, raw_body: str | None = None
) -> dict[str, Any]:
    """An API Gateway REST proxy event with a Cognito authorizer's claims (``raw_body`` is sent as is)."""
    return api_event(method, path, raw_body if raw_body is not None else body, sub=sub)


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Client:
    """Drives the real resolver: routing, schema validation and the error model are all exercised."""

    app: Any
    sub: str = OWNER
    context: Any = field(default_factory=lambda: SimpleNamespace(aws_request_id="lambda-req-1"))

    def call(
        self, method: str, path: str, body: Any = None, *, sub: str | None = "", raw_body: str | None = None
    ) -> Reply:
        event = rest_event(method, path, body, sub=self.sub if sub == "" else sub, raw_body=raw_body)
        # Powertools keeps the current event and context on the BaseRouter CLASS, shared by every resolver of the
        # process. A request nested inside another (a test interleaving "another Lambda environment") must not
        # leave its event behind for the outer one, so the outer request's state is put back afterwards.
        outer_event = BaseRouter.__dict__.get("current_event")
        outer_context = BaseRouter.__dict__.get("lambda_context")
        try:
            response = self.app.resolve(event, self.context)
        finally:
            BaseRouter.current_event = outer_event
            BaseRouter.lambda_context = outer_context
        body = json.loads(response["body"]) if response.get("body") else {}
        return Reply(status=response["statusCode"], body=body, headers=response.get("multiValueHeaders") or {})

    def create(self, **body: Any) -> Reply:
        return self.call("POST", "/sessions", body)

    def frame(self, session_id: str, seed: int = 0, *, image: str | None = None, **extra: Any) -> Reply:
        return self.call("POST", f"/sessions/{session_id}/frames", {"image": image or data_url(seed), **extra})

    def get(self, session_id: str) -> Reply:
        return self.call("GET", f"/sessions/{session_id}")


def s3_keys(s3: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


# ---------------------------------------------------------------------------------------------------------
# Rigs: the runtime wired to moto (S3 + DynamoDB) or to files, plus a way to inspect what was stored.


@dataclass(frozen=True)
class Backend:
    """How another Lambda environment (another process) reaches the storage a rig uses: a moto server's
    endpoint (DynamoDB + S3) or a local data directory (FileSessionStore + FileArchive)."""

    endpoint: str | None = None
    root: Path | None = None

    def session_store_and_archive(self) -> tuple[Any, Any]:
        if self.root is not None:
            return FileSessionStore(self.root / "sessions"), FileArchive(self.root / "archive")
        assert self.endpoint is not None
        dynamodb, s3 = (_aws_client(service, self.endpoint) for service in ("dynamodb", "s3"))
        return DynamoDbSessionStore(dynamodb, TABLE), S3Archive(s3, BUCKET)


# Fake credentials in the session itself: a child's environment is the fork server's, not the test's.
_AWS = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing", region_name="us-east-1"
)


def _aws_client(service: str, endpoint: str) -> Any:
    return _AWS.client(service, endpoint_url=endpoint, config=Config(retries={"mode": "standard", "max_attempts": 3}))


for _service in ("dynamodb", "s3"):  # load the service models once, in the fork server, not in every child
    _aws_client(_service, "http://127.0.0.1:9")


@dataclass
class Rig:
    deps: Dependencies
    analyzer: ScriptedAnalyzer
    clock: FakeClock
    client: Client
    kind: str
    backend: Backend | None = None  # None: in-process moto, which another process cannot reach

    @property
    def store(self) -> Any:
        return self.deps.session_store

    def stored(self, key: str) -> bytes | None:
        return self.deps.archive.get(key)

    def keys(self, prefix: str) -> list[str]:
        archive = self.deps.archive
        if isinstance(archive, S3Archive):
            return s3_keys(archive.client, prefix)
        root = archive._root  # FileArchive
        return sorted(str(path.relative_to(root)) for path in (root / prefix).rglob("*") if path.is_file())

    def as_user(self, sub: str) -> Client:
        return Client(app=self.client.app, sub=sub)

    def new_client(self) -> Client:
        """A client on its own resolver, for a request nested inside another one (``during_next_detect``); the
        nested request runs to completion before the outer one resumes, and ``Client.call`` gives the outer
        request its event back. Concurrent requests need separate processes: see ``send_together``."""
        return Client(app=create_app(self.deps))


# ---------------------------------------------------------------------------------------------------------
# Concurrent requests, as Lambda serves them: each in its own execution environment (a process) with its own
# app and clients, all sharing the DynamoDB table and S3 bucket (a moto server) or the data directory. Threads of
# one process would not do: Powertools keeps the current event on the BaseRouter class (``resolve`` sets
# ``BaseRouter.current_event``), so a thread could read another thread's request.

RACE_TIMEOUT_SECONDS = 120


@cache
def _lambda_processes() -> Any:
    """Children are forked from a single-threaded fork server that has already imported this module (boto3,
    cv2, Powertools). A plain fork would copy the pytest process with the moto server's threads (and any lock
    they hold); a spawned child would pay ~0.5 s of CPU for its imports, which 20 of them on 2 cores feel."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    # The fork server preloads this module before it applies the parent's import path (CPython 3.11-3.13), and
    # the import error is swallowed: every child would import it again. The package tests is not installed, so
    # the repository root goes on PYTHONPATH.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return context


@dataclass(frozen=True)
class Request:
    """One request of a race. A frame's image is made in its process from ``frame_seed`` (``data_url``), not
    pickled across: 150 kB through the start-up pipe would serialise the starts."""

    method: str
    path: str
    body: Any = None
    sub: str = OWNER
    frame_seed: int | None = None

    def body_to_send(self) -> Any:
        return self.body if self.frame_seed is None else {"image": data_url(self.frame_seed), **(self.body or {})}


def frame_request(session_id: str, seed: int = 0) -> Request:
    return Request("POST", f"/sessions/{session_id}/frames", frame_seed=seed)


@dataclass(frozen=True)
class _Environment:
    """Everything a child needs to build its own Dependencies: the shared backend and the parent's state."""

    backend: Backend
    settings: Settings
    now: datetime
    default_faces: list[FaceDetail] | None
    similarity: float | None


@dataclass
class _Outcome:
    index: int
    reply: Reply | None = None
    detect_calls: int = 0
    compare_calls: list[tuple[int, int]] = field(default_factory=list)
    error: str | None = None


def _serve_one(environment: _Environment, index: int, request: Request, start: Any, outcomes: Any) -> None:
    """One Lambda environment: its own app, clients and analyzer; waits for the others, sends one request."""
    try:
        store, archive = environment.backend.session_store_and_archive()
        analyzer = ScriptedAnalyzer()
        analyzer.default_faces, analyzer.similarity = environment.default_faces, environment.similarity
        deps = Dependencies(
            settings=environment.settings,
            analyzer=analyzer,
            archive=archive,
            clock=FakeClock(environment.now),
            session_store=store,
        )
        client = Client(app=create_app(deps), context=SimpleNamespace(aws_request_id=f"lambda-req-{index}"))
        body = request.body_to_send()
        start.wait(RACE_TIMEOUT_SECONDS)  # every environment is ready: release all requests at once
        reply = client.call(request.method, request.path, body, sub=request.sub)
        outcomes.put(_Outcome(index, reply, analyzer.detect_calls, analyzer.compare_calls))
    except BaseException:  # noqa: BLE001  (reported to the parent, which fails the test)
        start.abort()  # the others stop waiting for this one
        outcomes.put(_Outcome(index, error=traceback.format_exc()))


def send_together(rig: Rig, requests: Sequence[Request]) -> list[Reply]:
    """Sends ``requests`` at once, each from its own process (Lambda environment), and answers their replies in
    order. The children's analyzer calls are added to ``rig.analyzer``, so its counts cover every environment."""
    if rig.backend is None:
        raise ValueError("concurrent requests need a backend other processes can reach (moto server or files)")
    if rig.analyzer.faces or rig.analyzer.during_next_detect is not None:
        raise ValueError("per-call scripts cannot be split between processes: set analyzer.default_faces")
    environment = _Environment(
        rig.backend, rig.deps.settings, rig.clock(), rig.analyzer.default_faces, rig.analyzer.similarity
    )
    context = _lambda_processes()
    start = context.Barrier(len(requests))
    outcomes = context.Queue()
    processes = [
        context.Process(target=_serve_one, args=(environment, index, request, start, outcomes))
        for index, request in enumerate(requests)
    ]
    for process in processes:
        process.start()
    try:
        results = sorted((outcomes.get(timeout=RACE_TIMEOUT_SECONDS) for _ in processes), key=lambda o: o.index)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    errors = sorted((outcome.error for outcome in results if outcome.error), key=lambda e: "BrokenBarrier" in e)
    assert not errors, "a Lambda environment failed:\n" + "\n".join(errors)
    for outcome in results:
        rig.analyzer.detect_calls += outcome.detect_calls
        rig.analyzer.compare_calls.extend(outcome.compare_calls)
    return [outcome.reply for outcome in results if outcome.reply is not None]


def build_rig(
    kind: str,
    store: Any,
    archive: Any,
    settings: Settings | None = None,
    analyzer: Any = None,
    backend: Backend | None = None,
) -> Rig:
    scripted, clock = ScriptedAnalyzer(), FakeClock()
    deps = Dependencies(
        settings=settings or DEFAULT_SETTINGS,
        analyzer=analyzer or scripted,
        archive=archive,
        clock=clock,
        session_store=store,
    )
    client = Client(app=create_app(deps))
    return Rig(deps=deps, analyzer=scripted, clock=clock, client=client, kind=kind, backend=backend)


def aws_rig(settings: Settings | None = None, endpoint_url: str | None = None, analyzer: Any = None) -> Rig:
    """Call inside mock_aws() (in-process) or with a moto server's endpoint_url."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint_url)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint_url)
    create_aws_resources(dynamodb, s3)
    return build_rig("aws", DynamoDbSessionStore(dynamodb, TABLE), S3Archive(s3, BUCKET), settings, analyzer)


def file_rig(root: Path, settings: Settings | None = None) -> Rig:
    backend = Backend(root=root)
    store, archive = backend.session_store_and_archive()
    return build_rig("file", store, archive, settings, backend=backend)


# The settings a rig gets when a test does not give its own: the deployment defaults (the light step enforced).
DEFAULT_SETTINGS = Settings()
LIGHT_OFF = Settings(light_challenge="off")


@pytest.fixture
def light_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rigs without the light step, for tests about other steps where it is irrelevant (pytestmark =
    pytest.mark.usefixtures("light_off")); a rig given its own settings decides for itself."""
    monkeypatch.setattr(sys.modules[__name__], "DEFAULT_SETTINGS", LIGHT_OFF)


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws(fake_aws_env: None) -> Any:
    with mock_aws():
        yield aws_rig()


@pytest.fixture(params=["aws", "file"])
def rig(request: pytest.FixtureRequest, tmp_path: Path, fake_aws_env: None) -> Any:
    """The same behaviour is required of both backends."""
    if request.param == "file":
        yield file_rig(tmp_path)
        return
    with mock_aws():
        yield aws_rig()


def start_session(rig: Rig, **body: Any) -> dict[str, Any]:
    reply = rig.client.create(**body)
    assert reply.status == 201, reply.body
    return reply.body


def step_codes(created: dict[str, Any]) -> list[str]:
    """Every step of the session, in order: the neutral start (LOOK_STRAIGHT) first, then the drawn steps."""
    return [step["code"] for step in created["steps"]]


def drawn_codes(created: dict[str, Any]) -> list[str]:
    """The randomly drawn steps only (what ``steps`` and STEP_COUNT count): every step after the neutral start
    and the light step (which follows it unless LIGHT_CHALLENGE is off)."""
    codes = step_codes(created)
    assert codes[0] == StepCode.LOOK_STRAIGHT.value, codes  # every session starts with the neutral step
    light = created.get("lightChallenge", "off") != "off"
    assert (codes[1] == StepCode.FOLLOW_LIGHT.value) is light, codes
    return codes[2:] if light else codes[1:]


def look_straight(rig: Rig, session_id: str, seed: int = 1000, client: Client | None = None, **extra: Any) -> Reply:
    """Answer the neutral start with a frontal face (the reference face and a baseline of 0/0/0) and check it was
    accepted; then, when the session has the light step next (LIGHT_CHALLENGE enforce or shadow), pass it as a
    person does (``pass_light``). ``seed`` picks the frame's bytes; the default stays clear of the small seeds
    tests use. Answers the neutral frame's reply."""
    rig.analyzer.script(face_for(StepCode.LOOK_STRAIGHT))
    reply = (client or rig.client).frame(session_id, seed=seed, **extra)
    assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body
    assert reply.body["stepCode"] == "LOOK_STRAIGHT" and reply.body["stepIndex"] == 0, reply.body
    if has_light_step_now(rig, session_id):
        pass_light(rig, session_id, client=client)
    return reply


def has_light_step_now(rig: Rig, session_id: str) -> bool:
    session = rig.store.get(session_id)
    return session is not None and session.is_open and session.step.code is StepCode.FOLLOW_LIGHT


def pass_light(rig: Rig, session_id: str, client: Client | None = None, seed: int = 0) -> Reply:
    """The light step as a person does it: start the challenge, then send the frames the camera took while the
    screen showed the revealed colours (the physics harness lights the astronaut with them; the scripted
    analyzer answers the face the embedded analyzer finds in the analysed frame). Checks it was accepted."""
    client = client or rig.client
    started = client.call("POST", f"/sessions/{session_id}/light", {})
    assert started.status == 201, started.body
    body, lit_face = genuine_light(started.body, seed)
    rig.analyzer.script(lit_face)
    reply = client.call("POST", f"/sessions/{session_id}/light/frames", body)
    assert reply.status == 200 and reply.body["verdict"] == "ACCEPTED", reply.body
    assert reply.body["stepCode"] == "FOLLOW_LIGHT", reply.body
    return reply


def seeded_session(rig: Rig, *steps: StepCode, mirrored: bool = False) -> str:
    """A session with chosen drawn steps, stored as create_session would store it: the neutral start first, then
    ``steps`` (the API never lets a client choose: this is for rules that depend on which steps follow which)."""
    session_id = str(uuid.uuid4())
    limits = rig.deps.settings.session_limits
    session = new_session(
        session_id,
        OWNER,
        challenge(steps),
        mirrored=mirrored,
        analyzer=rig.deps.analyzer.name,
        now=rig.clock(),
        limits=limits,
    )
    rig.store.create(session)
    return session_id


def wrong_face_for(step: str) -> FaceDetail:
    """A clean face that passes every gate and meets no step, the neutral start included (from a baseline of 0):
    turned and raised 22 degrees each, too little for a turn and too far off-axis for a tilt, too far from the
    camera for the neutral start or an expression; off-axis both ways, so it is no head on its way to a turn or a
    tilt either (such frames are compared with the reference: the identity chain)."""
    return face(yaw=22.0, pitch=22.0)


class S3PutWatch:
    """Counts the S3 client's PutObject calls to keys under ``prefix`` and can answer them with a 503 SlowDown,
    as S3 does under load. It is botocore's own ``before-call`` hook, the same seam its Stubber uses: a failing
    call never reaches moto, the others go through to it unchanged."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.prefix = prefix
        self.puts = 0
        self.failing = False
        client.meta.events.register("before-call.s3.PutObject", self._before_put)

    def _before_put(self, params: dict[str, Any], **_: Any) -> Any:
        if f"/{self.prefix}" not in params["url_path"]:
            return None
        self.puts += 1
        if not self.failing:
            return None
        error = {"Code": "SlowDown", "Message": "Please reduce your request rate."}
        return AWSResponse(None, 503, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 503}}
