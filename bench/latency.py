"""``make bench MODE=latency`` (``python -m bench.latency``): per-frame wall time with the network in it, as the user waits for it.

Every AWS call of the real handler is stubbed in-process (Rekognition with botocore's Stubber, S3 and DynamoDB
with moto) behind a client that first sleeps for a realistic, configurable latency. Three requests are timed:

- ``POST /detect``: DetectFaces, then the upload's and the crop's PUTs.
- a session's first frame (it becomes the reference): the session's read and the slot's reservation, DetectFaces,
  the upload's PUT, the crop's PUT, the verdict's save.
- a later frame (compared with the reference): read, reservation, DetectFaces, the upload's PUT, the reference
  crop's GET, CompareFaces, the verdict's save.

Each is measured twice in the same run, interleaved: as the handler runs now (independent calls at once) and
with every call made one after another, as before (``liveness.parallel.one_at_a_time``). Each is set against
its critical path: the calls that must happen one after another, plus the CPU floor (decode, crop and encode
with cv2). What must be serial: /detect's crop is cut from DetectFaces' box and its key is in the answer, so
its PUT follows DetectFaces; a session frame is read, then its slot reserved (before any analysis), then
analysed (for a head movement after the neutral start, by the one CompareFaces that also compares it with the
reference crop, read alongside the upload's PUT; the neutral start by DetectFaces, then its crop written before
the save that names it), then the verdict saved. Target: at most 1.15x the critical path.

Latencies (milliseconds) come from the environment: BENCH_DETECT_FACES_MS, BENCH_COMPARE_FACES_MS,
BENCH_S3_PUT_MS, BENCH_S3_GET_MS, BENCH_DYNAMODB_READ_MS, BENCH_DYNAMODB_WRITE_MS; BENCH_FRAMES sets how many
of each request are timed.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
import cv2
import numpy as np
from botocore.stub import Stubber
from liveness import handler, parallel
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.archive import S3Archive
from liveness.dependencies import Dependencies
from liveness.limits import AttemptLimits
from liveness.sessions.store import DynamoDbSessionStore
from liveness.settings import Settings
from moto import mock_aws

from bench.floor import floor, frame_jpeg, quiet_stdout
from testkit.aws import BUCKET, FAKE_AWS_ENV, OWNER, TABLE, create_aws_resources
from testkit.events import LambdaContext, api_event
from testkit.faces import face_for
from testkit.rekognition import detect_faces_response, face_detail

# What CompareFaces says of each face it compares (a ComparedFace).
COMPARED_FACE = ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality", "Emotions", "Smile")

TARGET = 1.15
BENCH_ATTEMPTS = AttemptLimits(max_open_sessions=10_000, max_failed_sessions=10_000, max_sessions_per_minute=10_000)


@dataclass(frozen=True)
class Latencies:
    detect_faces: float
    compare_faces: float
    s3_put: float
    s3_get: float
    dynamodb_read: float
    dynamodb_write: float

    @staticmethod
    def from_env(env: dict[str, str]) -> Latencies:
        def ms(name: str, default: float) -> float:
            return float(env.get(f"BENCH_{name}_MS", default))

        # The middle of the typical in-region ranges: DetectFaces 150-300 ms, CompareFaces 200-400 ms,
        # an S3 PUT 20-60 ms, a DynamoDB write 5-15 ms; a GET and a consistent read a little faster.
        return Latencies(
            detect_faces=ms("DETECT_FACES", 225),
            compare_faces=ms("COMPARE_FACES", 300),
            s3_put=ms("S3_PUT", 40),
            s3_get=ms("S3_GET", 30),
            dynamodb_read=ms("DYNAMODB_READ", 8),
            dynamodb_write=ms("DYNAMODB_WRITE", 10),
        )


class Latent:
    """A boto3 client whose named operations each last ``ms``: the network and the service's own work. The
    in-process stub stands for that work, so its time counts toward the latency (moto takes 5-11 ms a DynamoDB call
    that the service itself answers within the 8-10 ms); a stub slower than the latency is not cut short."""

    def __init__(self, client: Any, ms: dict[str, float]) -> None:
        self._client = client
        self._ms = ms

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        delay = self._ms.get(name)
        if delay is None:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                time.sleep(max(0.0, delay / 1000 - (time.perf_counter() - started)))

        return call


@contextmanager
def latent_handler(
    latencies: Latencies, rekognition: Callable[[], Any], screen: Any = None, **settings: Any
) -> Iterator[Any]:
    """The real handler on moto's S3 and DynamoDB and the Rekognition client ``rekognition()`` makes, each call
    behind its latency (``Latent``), with ``screen`` as the pre-screen's analyzer; yields that client.
    ``settings`` change the bench's (light step off: its batch is bench-light's; attempt limits out of the way,
    their cost still paid)."""
    for name, value in FAKE_AWS_ENV.items():
        os.environ.setdefault(name, value)
    with mock_aws():
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        create_aws_resources(dynamodb, s3)
        client = rekognition()
        analyzer_ms = {"detect_faces": latencies.detect_faces, "compare_faces": latencies.compare_faces}
        s3_ms = {"put_object": latencies.s3_put, "get_object": latencies.s3_get}
        dynamodb_ms = {"get_item": latencies.dynamodb_read, "put_item": latencies.dynamodb_write}
        dynamodb_ms["update_item"] = latencies.dynamodb_write
        options = {"attempt_limits": BENCH_ATTEMPTS, "light_challenge": "off", **settings}
        handler.use_dependencies(
            Dependencies(
                settings=Settings(archive_bucket=BUCKET, sessions_table=TABLE, **options),
                analyzer=RekognitionAnalyzer(Latent(client, analyzer_ms)),
                archive=S3Archive(Latent(s3, s3_ms), BUCKET),
                session_store=DynamoDbSessionStore(Latent(dynamodb, dynamodb_ms), TABLE),
                prescreen=screen,
            )
        )
        yield client


@contextmanager
def wired(latencies: Latencies) -> Iterator[Stubber]:
    """With Rekognition on botocore's Stubber (one user opens two sessions a round: the attempt limits are out of
    the way); the pose steps' frames are measured."""
    with latent_handler(latencies, lambda: boto3.client("rekognition")) as rekognition:
        stubber = Stubber(rekognition)
        stubber.activate()
        yield stubber


def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = handler.lambda_handler(api_event(method, path, body, sub=OWNER), LambdaContext())
    assert response["statusCode"] in (200, 201), response["body"]
    return response


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def measure(latencies: Latencies, frames: int, image: str) -> dict[tuple[str, str], list[float]]:
    samples: dict[tuple[str, str], list[float]] = {}

    def add(name: str, mode: str, ms: float) -> None:
        samples.setdefault((name, mode), []).append(ms)

    with wired(latencies) as stubber, quiet_stdout():
        for index in range(frames + 1):  # the first round warms up and is not counted
            for mode in ("parallel", "serial"):
                context = parallel.one_at_a_time() if mode == "serial" else _nothing()
                with context:
                    stubber.add_response("detect_faces", detect_faces_response(face_detail()))
                    detect_ms = timed(lambda: call("POST", "/detect", {"image_bytes": image}))
                    created = json.loads(call("POST", "/sessions", {"excludeExpressions": True})["body"])
                    session_id, second = created["sessionId"], created["steps"][1]["code"]
                    stubber.add_response(
                        "detect_faces", detect_faces_response(face_for("LOOK_STRAIGHT").to_rekognition())
                    )
                    first_ms = timed(partial(call, "POST", f"/sessions/{session_id}/frames", {"image": image}))
                    # A head movement (no expressions drawn): one CompareFaces describes the face it compares.
                    meeting = face_for(second).to_rekognition()
                    match = {"Similarity": 99.0, "Face": {k: v for k, v in meeting.items() if k in COMPARED_FACE}}
                    stubber.add_response("compare_faces", {"FaceMatches": [match], "UnmatchedFaces": []})
                    later_ms = timed(partial(call, "POST", f"/sessions/{session_id}/frames", {"image": _other(image)}))
                if index:
                    add("detect", mode, detect_ms)
                    add("first", mode, first_ms)
                    add("later", mode, later_ms)
        stubber.assert_no_pending_responses()
    return samples


@contextmanager
def _nothing() -> Iterator[None]:
    yield


_SECOND_FRAME: dict[str, str] = {}


def _other(image: str) -> str:
    """Another frame's bytes (a resent frame is REPEATED_FRAME, never compared)."""
    if image not in _SECOND_FRAME:
        raw = cv2.imencode(".jpg", cv2.flip(cv2.imdecode(_bytes(image), cv2.IMREAD_COLOR), 1))[1].tobytes()
        _SECOND_FRAME[image] = "data:image/jpeg;base64," + base64.b64encode(raw).decode()
    return _SECOND_FRAME[image]


def _bytes(image: str) -> Any:
    return np.frombuffer(base64.b64decode(image.partition(",")[2]), np.uint8)


def main(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    latencies = Latencies.from_env(env)
    frames = int(env.get("BENCH_FRAMES", "20"))
    cv2.setNumThreads(1)
    image = "data:image/jpeg;base64," + base64.b64encode(frame_jpeg()).decode()
    floor_samples = []
    for _ in range(60):
        floor_samples.append(timed(lambda: floor(image)))
    floor_ms = statistics.median(floor_samples)
    samples = measure(latencies, frames, image)
    lat = latencies
    critical = {
        "detect": lat.detect_faces + lat.s3_put + floor_ms,
        "first": lat.dynamodb_read + 2 * lat.dynamodb_write + lat.detect_faces + lat.s3_put + floor_ms,
        # A head movement: one CompareFaces describes the face and compares it (the crop's GET runs alongside).
        "later": lat.dynamodb_read
        + 2 * lat.dynamodb_write
        + max(lat.s3_get, lat.s3_put)
        + lat.compare_faces
        + floor_ms,
    }
    labels = {
        "detect": "POST /detect",
        "first": "session frame, becomes the reference",
        "later": "session frame, compared",
    }
    print(
        f"Per-frame wall time, 640x480 JPEG, median of {frames}; injected latencies (ms): DetectFaces "
        f"{lat.detect_faces:g}, CompareFaces {lat.compare_faces:g}, S3 PUT {lat.s3_put:g}, S3 GET {lat.s3_get:g}, "
        f"DynamoDB read {lat.dynamodb_read:g}, write {lat.dynamodb_write:g}; CPU floor {floor_ms:.1f} ms"
    )
    print(f"  {'request':38} {'critical path':>13} {'now':>9} {'ratio':>7} {'serial (before)':>16} {'ratio':>7}")
    worst = 0.0
    for name, label in labels.items():
        now = statistics.median(samples[(name, "parallel")])
        serial = statistics.median(samples[(name, "serial")])
        worst = max(worst, now / critical[name])
        print(
            f"  {label:38} {critical[name]:10.1f} ms {now:6.1f} ms {now / critical[name]:6.2f}x "
            f"{serial:13.1f} ms {serial / critical[name]:6.2f}x"
        )
    verdict = "met" if worst <= TARGET else "MISSED"
    print(f"Target: at most {TARGET:.2f}x the critical path: {verdict} (worst {worst:.2f}x).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
