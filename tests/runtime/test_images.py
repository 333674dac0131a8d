"""Frame intake rules: parsing, sniffing, size guards and the never-empty face box."""

from __future__ import annotations

import base64

import pytest
from liveness.errors import ErrorCode, LivenessError
from liveness.faces import BoundingBox
from liveness.images.crop import face_pixel_box
from liveness.images.intake import load_frame, parse_image_field

from testkit.images import data_url, jpeg_bytes, png_bytes


def test_data_url_is_split_on_the_first_comma_not_a_fixed_prefix() -> None:
    raw = png_bytes(100, 100)
    encoded = base64.b64encode(raw).decode()
    assert parse_image_field(f"data:image/png;base64,{encoded}") == raw
    assert parse_image_field(f"data:image/png;name=selfie.png;base64,{encoded}") == raw
    assert parse_image_field(encoded) == raw


def test_line_wrapped_base64_is_accepted() -> None:
    raw = jpeg_bytes(100, 100)
    wrapped = base64.encodebytes(raw).decode()  # 76-column lines
    assert "\n" in wrapped
    assert parse_image_field(wrapped) == raw


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("data:image/png,plain-not-base64", ErrorCode.INVALID_IMAGE),
        ("data:image/png;base64", ErrorCode.INVALID_IMAGE),
        ("data:text/html;base64,PGgxPg==", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ("not*base64", ErrorCode.INVALID_IMAGE),
        ("", ErrorCode.INVALID_REQUEST),
        (None, ErrorCode.INVALID_REQUEST),
    ],
)
def test_malformed_image_fields(value: object, code: ErrorCode) -> None:
    with pytest.raises(LivenessError) as raised:
        parse_image_field(value)
    assert raised.value.code is code


def test_declared_type_is_not_trusted() -> None:
    """A JPEG sent as image/png is decoded as what its bytes say."""
    raw = parse_image_field(data_url(jpeg_bytes(), "image/png"))
    assert load_frame(raw).content_type == "image/jpeg"


def test_small_frames_are_passed_through_untouched() -> None:
    raw = jpeg_bytes()
    frame = load_frame(raw)
    assert frame.encoded is raw and (frame.width, frame.height) == (640, 480)


@pytest.mark.parametrize(
    "box",
    [
        BoundingBox(left=0.3, top=0.2, width=0.3, height=0.4),
        BoundingBox(left=-0.5, top=-0.5, width=0.4, height=0.4),
        BoundingBox(left=0.9, top=0.9, width=0.5, height=0.5),
        BoundingBox(left=1.5, top=1.5, width=0.1, height=0.1),
        BoundingBox(left=-2.0, top=0.1, width=0.1, height=0.1),
        BoundingBox(left=0.5, top=0.5, width=0.0, height=0.0),
        BoundingBox(left=-0.1, top=-0.1, width=1.4, height=1.4),
    ],
)
def test_face_box_is_inside_the_image_and_never_empty(box: BoundingBox) -> None:
    pixels = face_pixel_box(box, 640, 480)
    assert 0 <= pixels.left < pixels.right <= 640
    assert 0 <= pixels.top < pixels.bottom <= 480


def test_face_box_adds_the_margin() -> None:
    pixels = face_pixel_box(BoundingBox(left=0.25, top=0.25, width=0.5, height=0.5), 400, 400, margin=0.1)
    assert (pixels.left, pixels.top, pixels.right, pixels.bottom) == (80, 80, 320, 320)


def test_scheme_is_case_insensitive_and_any_base64_wrapping_is_accepted() -> None:
    raw = png_bytes(100, 100)
    encoded = base64.b64encode(raw).decode()
    assert parse_image_field(f"DATA:image/PNG;BASE64,{encoded}") == raw
    crlf_wrapped = "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert parse_image_field(crlf_wrapped) == raw
    assert parse_image_field("\t".join(encoded[i : i + 64] for i in range(0, len(encoded), 64))) == raw
