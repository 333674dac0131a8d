"""POST /detect through the real Lambda entry point: real images through decode, crop and encode;
Rekognition stubbed with botocore's Stubber, S3 provided by moto."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from botocore.stub import ANY, Stubber
from liveness import handler
from liveness.analyzers.rekognition import RekognitionAnalyzer
from liveness.archive import S3Archive
from liveness.dependencies import Dependencies
from liveness.sessions.store import FileSessionStore
from liveness.settings import Settings
from moto import mock_aws

from testkit.events import LambdaContext, api_event
from testkit.images import data_url, grayscale_png_bytes, jpeg_bytes, png_bytes, rgba_png_bytes, scene_bgr
from testkit.rekognition import detect_faces_response, face_detail

BUCKET = "evidence-bucket"
ORIGIN = "https://kyc.example.com"
KEY_PATTERN = re.compile(r"^detections/\d{4}/\d{2}/\d{2}/[0-9a-f-]{36}/(frame\.(jpg|png)|face\.jpg)$")


@dataclass
class Backend:
    rekognition: Stubber
    s3: Any

    def objects(self) -> dict[str, dict[str, Any]]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {item["Key"]: self.s3.head_object(Bucket=BUCKET, Key=item["Key"]) for item in listing}

    def body(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        rekognition = boto3.client("rekognition", region_name="us-east-1")
        stubber = Stubber(rekognition)
        stubber.activate()
        settings = Settings(archive_bucket=BUCKET, allowed_origins=(ORIGIN, "https://admin.example.com"))
        handler.use_dependencies(
            Dependencies(
                settings=settings,
                analyzer=RekognitionAnalyzer(rekognition),
                archive=S3Archive(s3, BUCKET),
                session_store=FileSessionStore(tmp_path / "sessions"),
            )
        )
        yield Backend(rekognition=stubber, s3=s3)
        stubber.deactivate()


def post_detect(body: Any, origin: str | None = ORIGIN) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = handler.lambda_handler(api_event("POST", "/detect", body, origin=origin), LambdaContext())
    return response["statusCode"], json.loads(response["body"]), response.get("multiValueHeaders") or {}


def expect_detect_faces(backend: Backend, *faces: dict[str, Any]) -> None:
    backend.rekognition.add_response(
        "detect_faces", detect_faces_response(*faces), {"Image": {"Bytes": ANY}, "Attributes": ["ALL"]}
    )


class Capture:
    """Matches any expected parameter in Stubber and keeps what was actually sent."""

    value: Any = None

    def __eq__(self, other: object) -> bool:
        self.value = other
        return True


def decoded_face(body: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(body["encoded_face_image"])
    assert raw.startswith(b"\xff\xd8\xff"), "the face crop is a JPEG"
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize(
    ("image", "expected_frame"),
    [
        (data_url(png_bytes(), "image/png"), "frame.png"),
        (data_url(jpeg_bytes(), "image/jpeg"), "frame.jpg"),
        (base64.b64encode(jpeg_bytes()).decode(), "frame.jpg"),
        (data_url(rgba_png_bytes(), "image/png"), "frame.png"),
        (data_url(grayscale_png_bytes(), "image/png"), "frame.png"),
    ],
    ids=["png-data-url", "jpeg-data-url", "plain-base64", "rgba-canvas-png", "grayscale-png"],
)
def test_detect_describes_crops_and_archives_the_face(backend: Backend, image: str, expected_frame: str) -> None:
    expect_detect_faces(backend, face_detail())
    status, body, headers = post_detect({"image_bytes": image, "height": 480, "width": 640})

    assert status == 200
    # The workshop frontend's fields keep Rekognition's shapes.
    assert body["gender"] == {"Value": "Female", "Confidence": 99.7}
    assert body["smile"] == {"Value": False, "Confidence": 99.1}
    assert body["eyesOpen"] == {"Value": True, "Confidence": 99.9}
    assert body["mouthOpen"] == {"Value": False, "Confidence": 99.8}
    assert body["agerange"] == {"low": 26, "high": 43}  # the seed's lower-case keys
    assert body["pose"] == {"roll": -1.5, "yaw": -10.9, "pitch": -4.9}
    # Box 0.30x0.45 of 640x480 plus a 15% margin each side, edges rounded: x 195..445, y 64..344.
    face = decoded_face(body)
    assert face.shape == (280, 250, 3)
    assert body["faceImage"] == {"width": 250, "height": 280}
    assert body["faceCount"] == 1 and body["confidence"] == 99.99
    assert body["boundingBox"] == {"Width": 0.30, "Height": 0.45, "Left": 0.35, "Top": 0.20}
    assert body["quality"] == {"Brightness": 73.8, "Sharpness": 86.8}
    assert body["image"] == {"width": 640, "height": 480}
    assert body["requestId"].startswith("req-")
    assert headers["Access-Control-Allow-Origin"] == [ORIGIN]

    archive = body["archive"]
    stored = backend.objects()
    assert sorted(stored) == sorted([archive["frameKey"], archive["faceKey"]])
    assert all(KEY_PATTERN.match(key) for key in stored)
    assert archive["frameKey"].endswith(expected_frame) and archive["id"] in archive["frameKey"]
    assert all(head["ServerSideEncryption"] == "AES256" for head in stored.values())
    assert backend.body(archive["faceKey"]) == base64.b64decode(body["encoded_face_image"])
    for head in stored.values():
        assert head["Metadata"] == {"request-id": body["requestId"], "analyzer": "rekognition"}
    backend.rekognition.assert_no_pending_responses()


def test_archived_frame_is_the_uploaded_bytes(backend: Backend) -> None:
    upload = jpeg_bytes()
    expect_detect_faces(backend, face_detail())
    status, body, _ = post_detect({"image_bytes": data_url(upload, "image/jpeg")})
    assert status == 200
    assert backend.body(body["archive"]["frameKey"]) == upload


def test_every_detection_gets_fresh_keys(backend: Backend) -> None:
    keys = set()
    for _ in range(3):
        expect_detect_faces(backend, face_detail())
        status, body, _ = post_detect({"image_bytes": data_url(jpeg_bytes(), "image/jpeg")})
        assert status == 200
        keys.add(body["archive"]["frameKey"])
    assert len(keys) == 3
    assert len(backend.objects()) == 6


def test_face_at_the_edge_is_clamped_to_the_image(backend: Backend) -> None:
    edge_box = {"Width": 0.40, "Height": 0.70, "Left": -0.12, "Top": 0.45}  # off the left and bottom edges
    expect_detect_faces(backend, face_detail(BoundingBox=edge_box))
    status, body, _ = post_detect({"image_bytes": data_url(jpeg_bytes(), "image/jpeg")})
    assert status == 200
    # Left: (-0.12-0.06)*640 -> 0; right: (0.28+0.06)*640 = 218; top: (0.45-0.105)*480 = 166; bottom clamps to 480.
    assert decoded_face(body).shape == (314, 218, 3)


def test_face_entirely_outside_still_gives_a_non_empty_crop(backend: Backend) -> None:
    expect_detect_faces(backend, face_detail(BoundingBox={"Width": 0.2, "Height": 0.2, "Left": 1.3, "Top": -0.9}))
    status, body, _ = post_detect({"image_bytes": data_url(jpeg_bytes(), "image/jpeg")})
    assert status == 200
    height, width, _ = decoded_face(body).shape
    assert height >= 1 and width >= 1


def test_no_face_is_422_and_nothing_is_archived(backend: Backend) -> None:
    expect_detect_faces(backend)
    status, body, _ = post_detect({"image_bytes": data_url(jpeg_bytes(), "image/jpeg")})
    assert (status, body["code"]) == (422, "NO_FACE")
    assert set(body) == {"code", "message", "requestId"}
    assert backend.objects() == {}


def test_two_faces_are_422(backend: Backend) -> None:
    second = face_detail(BoundingBox={"Width": 0.1, "Height": 0.15, "Left": 0.8, "Top": 0.1})
    expect_detect_faces(backend, face_detail(), second)
    status, body, _ = post_detect({"image_bytes": data_url(jpeg_bytes(), "image/jpeg")})
    assert (status, body["code"]) == (422, "MULTIPLE_FACES")
    assert "2 faces" in body["message"]
    assert backend.objects() == {}


def _truncated_jpeg() -> str:
    raw = jpeg_bytes()
    return data_url(raw[: len(raw) // 2], "image/jpeg")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"image_bytes": "data:image/png;base64,@@@not base64@@@"}, 400, "INVALID_IMAGE"),
        ({"image_bytes": "data:image/png;base64,"}, 400, "INVALID_IMAGE"),
        (
            {"image_bytes": data_url(b"%PDF-1.7 this is not an image at all" * 10, "image/png")},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ({"image_bytes": data_url(png_bytes(), "image/gif")}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"image_bytes": _truncated_jpeg()}, 400, "INVALID_IMAGE"),
        ({"image_bytes": data_url(jpeg_bytes(64, 64), "image/jpeg")}, 400, "IMAGE_TOO_SMALL"),
        ({}, 400, "INVALID_REQUEST"),
        ({"image": data_url(jpeg_bytes(), "image/jpeg")}, 400, "INVALID_REQUEST"),
        ({"image_bytes": 12345}, 400, "INVALID_REQUEST"),
        ({"image_bytes": data_url(jpeg_bytes(), "image/jpeg"), "width": "640"}, 400, "INVALID_REQUEST"),
        ([1, 2, 3], 400, "INVALID_REQUEST"),
        ("{not json", 400, "INVALID_JSON"),
        ("", 400, "INVALID_JSON"),
        ("[" * 100_000 + "]" * 100_000, 400, "INVALID_JSON"),
        ('{"image_bytes": "x", "width": ' + "9" * 5000 + "}", 400, "INVALID_JSON"),
    ],
    ids=[
        "garbage-base64",
        "empty-payload",
        "non-image-bytes",
        "gif-media-type",
        "truncated-jpeg",
        "too-small",
        "missing-field",
        "wrong-field-name",
        "mistyped-image",
        "mistyped-width",
        "array-body",
        "invalid-json",
        "empty-body",
        "nested-100k-deep",
        "5000-digit-number",
    ],
)
def test_bad_input_gets_a_clear_4xx(backend: Backend, body: Any, status: int, code: str) -> None:
    got_status, got, headers = post_detect(body)
    assert (got_status, got["code"]) == (status, code)
    assert set(got) == {"code", "message", "requestId"} and got["message"]
    assert "Traceback" not in got["message"] and "Error(" not in got["message"]
    assert headers["Access-Control-Allow-Origin"] == [ORIGIN]
    assert backend.objects() == {}
    backend.rekognition.assert_no_pending_responses()  # rejected before any paid call


def test_oversize_upload_is_413(backend: Backend) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (2200, 2200, 3), dtype=np.uint8)
    huge_png = cv2.imencode(".png", noise)[1].tobytes()
    assert len(huge_png) > 6 * 1024 * 1024
    status, body, _ = post_detect({"image_bytes": data_url(huge_png, "image/png")})
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_decompression_bomb_is_refused_before_decoding(backend: Backend) -> None:
    # 10000x10000 of one colour compresses to a few hundred KB but would decode to 300 MB.
    flat = np.zeros((10000, 10000), dtype=np.uint8)
    bomb = cv2.imencode(".png", flat, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    assert len(bomb) < 1024 * 1024
    status, body, _ = post_detect({"image_bytes": data_url(bomb, "image/png")})
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_large_frame_is_downscaled_for_rekognition(backend: Backend) -> None:
    big = cv2.imencode(".jpg", scene_bgr(3840, 2160), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()  # a 4K frame
    sent = Capture()
    backend.rekognition.add_response(
        "detect_faces", detect_faces_response(face_detail()), {"Image": {"Bytes": sent}, "Attributes": ["ALL"]}
    )
    status, body, _ = post_detect({"image_bytes": data_url(big, "image/jpeg")})
    assert status == 200
    assert body["image"] == {"width": 1920, "height": 1080}
    analysed = cv2.imdecode(np.frombuffer(sent.value, np.uint8), cv2.IMREAD_COLOR)
    assert analysed.shape == (1080, 1920, 3) and len(sent.value) <= 5 * 1024 * 1024
    assert backend.body(body["archive"]["frameKey"]) == big  # the evidence keeps the original


@pytest.mark.parametrize(
    "error_code", ["ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"]
)
def test_rekognition_throttling_is_503_with_retry_after(backend: Backend, error_code: str) -> None:
    backend.rekognition.add_client_error("detect_faces", service_error_code=error_code, http_status_code=400)
    status, body, headers = post_detect({"image_bytes": data_url(jpeg_bytes(), "image/jpeg")})
    assert (status, body["code"]) == (503, "ANALYZER_UNAVAILABLE")
    assert headers["Retry-After"] == ["2"]
    assert error_code not in body["message"]
    assert backend.objects() == {}


def test_unexpected_aws_error_is_500_without_details(backend: Backend) -> None:
    backend.rekognition.add_client_error(
        "detect_faces", service_error_code="AccessDeniedException", service_message="secret-internal-detail"
    )
    status, body, _ = post_detect({"image_bytes": data_url(jpeg_bytes(), "image/jpeg")})
    assert (status, body["code"]) == (500, "INTERNAL_ERROR")
    assert "secret-internal-detail" not in json.dumps(body) and "AccessDenied" not in json.dumps(body)


def test_cors_only_for_listed_origins(backend: Backend) -> None:
    expect_detect_faces(backend)
    _, _, headers = post_detect(
        {"image_bytes": data_url(jpeg_bytes(), "image/jpeg")}, origin="https://evil.example.net"
    )
    assert "Access-Control-Allow-Origin" not in headers
    assert "Access-Control-Allow-Credentials" not in headers


def test_second_listed_origin_is_echoed(backend: Backend) -> None:
    expect_detect_faces(backend)
    _, _, headers = post_detect(
        {"image_bytes": data_url(jpeg_bytes(), "image/jpeg")}, origin="https://admin.example.com"
    )
    assert headers["Access-Control-Allow-Origin"] == ["https://admin.example.com"]


def test_unknown_route_is_a_json_404(backend: Backend) -> None:
    response = handler.lambda_handler(api_event("GET", "/nope"), LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 404 and body["code"] == "NOT_FOUND"


def test_logs_never_contain_image_data(
    backend: Backend, capsys: pytest.CaptureFixture[str], structured_logs: io.StringIO
) -> None:
    upload = jpeg_bytes()
    encoded = base64.b64encode(upload).decode()
    expect_detect_faces(backend, face_detail())
    status, body, _ = post_detect({"image_bytes": data_url(upload, "image/jpeg")})
    assert status == 200
    post_detect({"image_bytes": "data:image/jpeg;base64," + encoded[: len(encoded) // 2]})  # a rejected one too
    logs = structured_logs.getvalue() + capsys.readouterr().out  # logs plus EMF metrics
    assert '"code":"INVALID_IMAGE"' in logs
    assert '"message":"Frame analysed"' in logs and '"faces":1' in logs and '"latencyMs"' in logs
    assert '"width":640' in logs and f'"bytes":{len(upload)}' in logs
    for secret in (encoded, body["encoded_face_image"]):
        windows = {secret[i : i + 24] for i in range(0, len(secret) - 24, 997)}
        assert not any(window in logs for window in windows)
    assert "data:image" not in logs and "/9j/" not in logs  # no data URL, no JPEG base64 header


def test_in_lambda_the_dependencies_are_built_during_init(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Module import in a Lambda environment wires the app (and warms the analyzer) before any request."""
    import importlib

    import liveness.handler as module

    warmed: list[str] = []
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "liveness")
    monkeypatch.setenv("ANALYZER", "local")
    monkeypatch.setenv("STORAGE", "file")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr("liveness.analyzers.mesh.MeshAnalyzer.warm_up", lambda self: warmed.append(self.name))
    try:
        reloaded = importlib.reload(module)
        assert reloaded._app is not None and warmed == ["local-mesh"]
    finally:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
        importlib.reload(module)
    assert module._app is None


@pytest.mark.parametrize(
    "image",
    [jpeg_bytes() + b"PK\x03\x04" + bytes(4096), png_bytes() + b"PK\x05\x06" + bytes(18)],
    ids=["jpeg-plus-zip", "png-plus-zip"],
)
def test_detect_refuses_an_image_with_a_payload_after_it_and_archives_nothing(backend: Backend, image: bytes) -> None:
    status, body, _ = post_detect({"image_bytes": base64.b64encode(image).decode()})
    assert (status, body["code"]) == (400, "IMAGE_TRAILING_DATA") and "after its end marker" in body["message"]
    assert backend.objects() == {}  # no Rekognition call was stubbed either: Stubber would raise on one


def test_detect_archives_a_cameras_zero_padded_jpeg_without_the_padding(backend: Backend) -> None:
    expect_detect_faces(backend, face_detail())
    image = jpeg_bytes()
    status, body, _ = post_detect({"image_bytes": data_url(image + bytes(32), "image/jpeg")})
    assert status == 200 and backend.body(body["archive"]["frameKey"]) == image
