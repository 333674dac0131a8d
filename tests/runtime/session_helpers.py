"""Shared helpers for the session tests: a fake clock, a scripted analyzer, real encoded frames, REST events.

Only what sits across the network is faked (the analyzer). Frames are real JPEGs that go through the real
decode/validate/crop/encode path; DynamoDB and S3 are moto.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from liveness.archive import FileArchive, S3Archive
from liveness.challenges import StepCode
from liveness.faces import FaceComparison, FaceDetail, Frame
from liveness.handler import create_app
from liveness.session_store import DynamoDbSessionStore, FileSessionStore
from liveness.settings import Settings
from liveness.wiring import Dependencies
from moto import mock_aws

from tests.runtime.fakes import api_event

START = datetime(2026, 11, 3, 9, 0, 0, tzinfo=timezone.utc)
TABLE = "liveness-sessions"
BUCKET = "liveness-archive"
OWNER = "user-a-sub"
OTHER = "user-b-sub"


class FakeClock:
    """The server's clock, moved by tests; thread-safe enough for concurrent readers."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


def face(
    *,
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    smile: bool = False,
    mouth_open: bool = False,
    eyes_open: bool = True,
    attribute_confidence: float = 95.0,
    confidence: float = 99.9,
    width: float = 0.35,
    brightness: float = 80.0,
    sharpness: float = 60.0,
    occluded: tuple[bool, float] = (False, 99.0),
    sunglasses: tuple[bool, float] = (False, 99.0),
) -> FaceDetail:
    """A Rekognition-shaped face (parsed from the raw dict, as the real analyzer does)."""
    raw = {
        "BoundingBox": {"Width": width, "Height": width * 1.3, "Left": 0.5 - width / 2, "Top": 0.2},
        "Confidence": confidence,
        "Pose": {"Yaw": yaw, "Pitch": pitch, "Roll": roll},
        "Quality": {"Brightness": brightness, "Sharpness": sharpness},
        "Smile": {"Value": smile, "Confidence": attribute_confidence},
        "MouthOpen": {"Value": mouth_open, "Confidence": attribute_confidence},
        "EyesOpen": {"Value": eyes_open, "Confidence": attribute_confidence},
        "FaceOccluded": {"Value": occluded[0], "Confidence": occluded[1]},
        "Sunglasses": {"Value": sunglasses[0], "Confidence": sunglasses[1]},
    }
    return FaceDetail.from_rekognition(raw)


def face_for(step: StepCode | str, *, mirrored: bool = False) -> FaceDetail:
    """A face performing ``step`` as Rekognition would measure it in the frame as sent."""
    step = StepCode(step)
    sign = -1.0 if mirrored else 1.0  # raw yaw of a mirrored frame is the opposite of the user's turn
    return {
        StepCode.TURN_LEFT: lambda: face(yaw=sign * 35.0),
        StepCode.TURN_RIGHT: lambda: face(yaw=sign * -35.0),
        StepCode.LOOK_UP: lambda: face(pitch=22.0),
        StepCode.LOOK_DOWN: lambda: face(pitch=-22.0),
        StepCode.SMILE: lambda: face(smile=True),
        StepCode.OPEN_MOUTH: lambda: face(mouth_open=True),
        StepCode.CLOSE_EYES: lambda: face(eyes_open=False),
    }[step]()


class ScriptedAnalyzer:
    """Stands in for Rekognition: scripted faces per frame, scripted similarity; records its calls."""

    name = "scripted"

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
        response = self.app.resolve(event, self.context)
        body = json.loads(response["body"]) if response.get("body") else {}
        return Reply(status=response["statusCode"], body=body, headers=response.get("multiValueHeaders") or {})

    def create(self, **body: Any) -> Reply:
        return self.call("POST", "/sessions", body)

    def frame(self, session_id: str, seed: int = 0, *, image: str | None = None, **extra: Any) -> Reply:
        return self.call("POST", f"/sessions/{session_id}/frames", {"image": image or data_url(seed), **extra})

    def get(self, session_id: str) -> Reply:
        return self.call("GET", f"/sessions/{session_id}")


def create_aws_resources(dynamodb: Any, s3: Any) -> None:
    """The table and bucket the CDK stack creates: pk ``sessionId``, TTL on ``ttl``."""
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "sessionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    s3.create_bucket(Bucket=BUCKET)


def s3_keys(s3: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


# ---------------------------------------------------------------------------------------------------------
# Rigs: the runtime wired to moto (S3 + DynamoDB) or to files, plus a way to inspect what was stored.


FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class Rig:
    deps: Dependencies
    analyzer: ScriptedAnalyzer
    clock: FakeClock
    client: Client
    kind: str

    @property
    def store(self) -> Any:
        return self.deps.session_store

    def stored(self, key: str) -> bytes | None:
        return self.deps.archive.get(key)

    def keys(self, prefix: str) -> list[str]:
        archive = self.deps.archive
        if isinstance(archive, S3Archive):
            return s3_keys(archive._client, prefix)
        root = archive._root  # FileArchive
        return sorted(str(path.relative_to(root)) for path in (root / prefix).rglob("*") if path.is_file())

    def as_user(self, sub: str) -> Client:
        return Client(app=self.client.app, sub=sub)

    def new_client(self) -> Client:
        """A client on its own resolver, as another Lambda environment would be: Powertools keeps the current
        event on the resolver, so concurrent (or nested) requests must not share one."""
        return Client(app=create_app(self.deps))


def build_rig(kind: str, store: Any, archive: Any, settings: Settings | None = None, analyzer: Any = None) -> Rig:
    scripted, clock = ScriptedAnalyzer(), FakeClock()
    deps = Dependencies(
        settings=settings or Settings(),
        analyzer=analyzer or scripted,
        archive=archive,
        clock=clock,
        session_store=store,
    )
    return Rig(deps=deps, analyzer=scripted, clock=clock, client=Client(app=create_app(deps)), kind=kind)


def aws_rig(settings: Settings | None = None, endpoint_url: str | None = None, analyzer: Any = None) -> Rig:
    """Call inside mock_aws() (in-process) or with a moto server's endpoint_url."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint_url)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint_url)
    create_aws_resources(dynamodb, s3)
    return build_rig("aws", DynamoDbSessionStore(dynamodb, TABLE), S3Archive(s3, BUCKET), settings, analyzer)


def file_rig(root: Path, settings: Settings | None = None) -> Rig:
    return build_rig("file", FileSessionStore(root / "sessions"), FileArchive(root / "archive"), settings)


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
    return [step["code"] for step in created["steps"]]


def wrong_face_for(step: str) -> FaceDetail:
    """A clean, frontal, neutral face: passes every gate and meets no step."""
    return face()


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
