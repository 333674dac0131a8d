"""``make bench``: per-frame cost of POST /detect against two references, measured side by side in one run.

1. The floor: base64-decode, JPEG-decode, crop and JPEG-encode with cv2, nothing else.
2. The workshop handler's steps: ``imdecode(..., -1)``, two /tmp writes, three prints of the payload and
   ``upload_file`` calls.

Rekognition and S3 are stubbed in-process with botocore's Stubber in both handlers, so the numbers are
our own code's cost. Also compares the handler module's cold import with ``import numpy, cv2, boto3``.
Issue 10 replaced this mode's targets (1.5x the floor, 1.2x for the import) with targets on what the user waits
for: ``make bench MODE=latency`` (``python -m bench.latency``) measures per-frame wall time with the network in it.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np
from botocore.stub import ANY, Stubber

REPO_ROOT = Path(__file__).resolve().parent.parent

from liveness import handler
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.archive import S3Archive
from liveness.dependencies import Dependencies
from liveness.sessions.store import FileSessionStore
from liveness.settings import Settings

from bench.floor import floor, frame_jpeg, quiet_stdout
from testkit.events import LambdaContext, api_event
from testkit.rekognition import detect_faces_response, face_detail

FRAMES = 60
WARMUP = 5
BUCKET = "bench-bucket"


def clients(calls: int) -> tuple[Any, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    rekognition = boto3.client("rekognition")
    s3 = boto3.client("s3")
    rek_stub, s3_stub = Stubber(rekognition), Stubber(s3)
    for _ in range(calls):
        rek_stub.add_response(
            "detect_faces", detect_faces_response(face_detail()), {"Image": {"Bytes": ANY}, "Attributes": ["ALL"]}
        )
    for _ in range(calls * 2):
        s3_stub.add_response("put_object", {"ETag": '"0"'}, None)
    rek_stub.activate()
    s3_stub.activate()
    return rekognition, s3


def _no_session_store() -> FileSessionStore:
    """/detect never reads it; Dependencies requires one all the same."""
    return FileSessionStore(Path(tempfile.mkdtemp(prefix="bench-detect-")))


def ours(payload: str) -> Callable[[], None]:
    rekognition, s3 = clients(WARMUP + FRAMES)
    handler.use_dependencies(
        Dependencies(
            settings=Settings(archive_bucket=BUCKET),
            analyzer=RekognitionAnalyzer(rekognition),
            archive=S3Archive(s3, BUCKET),
            session_store=_no_session_store(),
        )
    )
    event = api_event("POST", "/detect", {"image_bytes": payload, "width": 640, "height": 480})
    context = LambdaContext()

    def run() -> None:
        response = handler.lambda_handler(event, context)
        assert response["statusCode"] == 200, response["body"]

    return run


class _NoAnalyzer:
    """Returns a prepared face: isolates our own code from botocore's per-call cost."""

    name = "prepared"

    def __init__(self) -> None:
        from liveness.faces import FaceDetail

        self._faces = [FaceDetail.from_rekognition(face_detail())]

    def detect_faces(self, frame: Any) -> list[Any]:
        return self._faces


class _NoArchive:
    def put_new(self, *args: Any, **kwargs: Any) -> None:
        return None


def ours_without_aws(payload: str) -> Callable[[], None]:
    deps = Dependencies(
        settings=Settings(),
        analyzer=_NoAnalyzer(),
        archive=_NoArchive(),  # type: ignore[arg-type]
        session_store=_no_session_store(),
    )
    handler.use_dependencies(deps)
    event = api_event("POST", "/detect", {"image_bytes": payload, "width": 640, "height": 480})
    context = LambdaContext()
    return lambda: handler.lambda_handler(event, context)


def workshop(payload: str) -> Callable[[], None]:
    """The workshop sample's steps, re-implemented: the reference a reader would otherwise copy."""
    rekognition, s3 = clients(WARMUP + FRAMES)
    body = json.dumps({"image_bytes": payload, "height": 480, "width": 640})
    tmp = Path(tempfile.mkdtemp())

    def run() -> None:
        event = {"body": body}
        print(event)  # the sample prints the whole payload, three times
        data = json.loads(event["body"])
        print(data)
        image_b64 = data["image_bytes"][len("data:image/jpeg;base64,") :]
        print(image_b64)
        raw = base64.b64decode(image_b64)
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), -1)
        cv2.imwrite(str(tmp / "image.jpg"), image)
        response = rekognition.detect_faces(Image={"Bytes": raw}, Attributes=["ALL"])
        detail = response["FaceDetails"][0]
        box = detail["BoundingBox"]
        height, width = image.shape[:2]
        crop = image[
            int(box["Top"] * height) : int((box["Top"] + box["Height"]) * height),
            int(box["Left"] * width) : int((box["Left"] + box["Width"]) * width),
        ]
        cv2.imwrite(str(tmp / "face.jpg"), crop)
        s3.upload_file(str(tmp / "image.jpg"), BUCKET, "image.jpg")
        s3.upload_file(str(tmp / "face.jpg"), BUCKET, "face.jpg")
        json.dumps(
            {"smile": detail["Smile"], "encoded_face_image": base64.b64encode((tmp / "face.jpg").read_bytes()).decode()}
        )

    return run


def per_frame_ms(run: Callable[[], None]) -> float:
    with quiet_stdout():
        for _ in range(WARMUP):
            run()
        samples = []
        for _ in range(FRAMES):
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def cold_import_ms(statements: list[str], repeats: int = 9) -> list[float]:
    """Median import time of each statement in fresh interpreters, interleaved so machine noise hits all alike."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "lambda_src"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    samples: list[list[float]] = [[] for _ in statements]
    for _ in range(repeats):
        for index, statement in enumerate(statements):
            code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
            samples[index].append(float(result.stdout))
    return [statistics.median(values) for values in samples]


def main() -> int:
    cv2.setNumThreads(1)
    payload = "data:image/jpeg;base64," + base64.b64encode(frame_jpeg()).decode()
    floor_ms = per_frame_ms(lambda: floor(payload))
    ours_ms = per_frame_ms(ours(payload))
    workshop_ms = per_frame_ms(workshop(payload))
    own_ms = per_frame_ms(ours_without_aws(payload))
    print(f"Per-frame time, 640x480 JPEG, median of {FRAMES} (Rekognition and S3 stubbed in-process):")
    print(f"  floor (decode, crop, encode)   {floor_ms:7.2f} ms   1.00x")
    print(f"  our handler                    {ours_ms:7.2f} ms   {ours_ms / floor_ms:.2f}x floor")
    print(f"  workshop handler's steps       {workshop_ms:7.2f} ms   {workshop_ms / floor_ms:.2f}x floor")
    print(f"  our handler, AWS calls no-ops  {own_ms:7.2f} ms   {own_ms / floor_ms:.2f}x floor  (our code alone)")
    print(f"  our handler vs workshop        {ours_ms / workshop_ms:.2f}x")
    baseline, with_powertools, ours_import = cold_import_ms(
        [
            "import numpy, cv2, boto3",
            "import numpy, cv2, boto3, fastjsonschema, aws_lambda_powertools.event_handler, "
            "aws_lambda_powertools.logging, aws_lambda_powertools.metrics",
            "import liveness.handler",
        ]
    )
    print("\nCold import, median of 9 fresh interpreters:")
    print(f"  import numpy, cv2, boto3       {baseline:7.1f} ms   1.00x")
    print(f"  ... plus Powertools' modules   {with_powertools:7.1f} ms   {with_powertools / baseline:.2f}x")
    print(f"  import liveness.handler        {ours_import:7.1f} ms   {ours_import / baseline:.2f}x")
    start_on, start_off = cold_start_ms(["on", "off"])
    print("\nThe expensive start on the Rekognition path (import + prepare(): clients, models, codecs), median of 9:")
    print(f"  PRESCREEN=off                  {start_off:7.1f} ms   1.00x")
    print(f"  PRESCREEN=on (the face models) {start_on:7.1f} ms   {start_on / start_off:.2f}x")
    return 0


def cold_start_ms(prescreen: list[str], repeats: int = 9) -> list[float]:
    """What a cold environment (or SnapStart's before-snapshot hook) does before its first answer, in fresh
    interpreters: import the handler and prepare() it, for each PRESCREEN value, interleaved."""
    statement = "from liveness import handler; handler.prepare()"
    samples: list[list[float]] = [[] for _ in prescreen]
    for _ in range(repeats):
        for index, value in enumerate(prescreen):
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT / "lambda_src"),
                "PYTHONDONTWRITEBYTECODE": "1",
                "ANALYZER": "rekognition",
                "STORAGE": "aws",
                "PRESCREEN": value,
                "AWS_DEFAULT_REGION": "us-east-1",
                "ARCHIVE_BUCKET": "bench",
                "SESSIONS_TABLE": "bench",
            }
            env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
            code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
            samples[index].append(float(result.stdout.strip().splitlines()[-1]))
    return [statistics.median(values) for values in samples]


if __name__ == "__main__":
    sys.exit(main())
