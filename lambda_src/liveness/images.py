"""Frame intake: parse the uploaded image, check it really is PNG/JPEG, decode, bound its size, crop faces.

Every limit here exists because of a downstream one:
- Rekognition accepts at most 5 MB of PNG/JPEG bytes and at least 80x80 pixels.
- A synchronous Lambda payload is at most 6 MB, so nothing bigger can ever arrive in AWS.
- A small compressed file can declare a huge raster (a decompression bomb); we read the declared size
  from the header and refuse it before decoding.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import ErrorCode, LivenessError
from .faces import BoundingBox, Frame

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
SUPPORTED_TYPES = ("image/jpeg", "image/png")

REKOGNITION_MAX_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_BYTES = 6 * 1024 * 1024
MIN_SIDE_PX = 80
MAX_PIXELS = 40_000_000
ANALYSIS_MAX_SIDE_PX = 1920
JPEG_QUALITY = 90
FACE_MARGIN = 0.15

_DATA_URL = re.compile(r"^data:(?P<media_type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?)$", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class ImageLimits:
    """Configurable bounds; defaults follow Rekognition's and Lambda's limits."""

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    analysis_max_side_px: int = ANALYSIS_MAX_SIDE_PX


DEFAULT_LIMITS = ImageLimits()


def parse_image_field(value: object, *, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """Turn a data URL (``data:image/png;base64,...``) or plain base64 into raw bytes."""
    if not isinstance(value, str) or not value:
        raise LivenessError(ErrorCode.INVALID_REQUEST, "The image must be a non-empty base64 string or data URL.")
    payload = _strip_data_url(value)
    if len(payload) > limits.max_upload_bytes * 4 // 3 + 4:
        raise _too_large(limits)
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise LivenessError(ErrorCode.INVALID_IMAGE, "The image is not valid base64.") from None
    if not raw:
        raise LivenessError(ErrorCode.INVALID_IMAGE, "The image is empty.")
    return raw


def _strip_data_url(value: str) -> str:
    """Split on the first comma (never a fixed-length prefix) and check the declared media type."""
    if value[:5].lower() != "data:":  # the URL scheme is case-insensitive
        return _without_whitespace(value)
    header, separator, payload = value.partition(",")
    match = _DATA_URL.match(header)
    if not separator or match is None or ";base64" not in match.group("params").lower():
        raise LivenessError(ErrorCode.INVALID_IMAGE, "The data URL must look like data:image/jpeg;base64,<data>.")
    media_type = (match.group("media_type") or "").lower()
    if media_type not in SUPPORTED_TYPES:
        raise LivenessError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"Only image/jpeg and image/png are accepted, not {media_type or 'none'}."
        )
    return _without_whitespace(payload)


_BASE64_WRAPPING = (" ", "\n", "\r", "\t")


def _without_whitespace(value: str) -> str:
    # Some clients wrap base64 at 76 columns (MIME style); whitespace is never part of the data.
    return "".join(value.split()) if any(space in value for space in _BASE64_WRAPPING) else value


def sniff_content_type(raw: bytes) -> str:
    """The real type from the magic bytes; the client's declared type is not trusted."""
    if raw.startswith(PNG_SIGNATURE):
        return "image/png"
    if raw.startswith(JPEG_SIGNATURE):
        return "image/jpeg"
    raise LivenessError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "The image must be a PNG or JPEG file.")


def load_frame(raw: bytes, *, limits: ImageLimits = DEFAULT_LIMITS) -> Frame:
    """Validate, decode to 3-channel BGR and bound the size of an uploaded image."""
    if len(raw) > limits.max_upload_bytes:
        raise _too_large(limits)
    content_type = sniff_content_type(raw)
    _check_complete(raw, content_type)
    width, height = _declared_size(raw, content_type)
    _check_dimensions(width, height, limits)
    bgr = _decode_bgr(raw)
    return _fit_for_analysis(Frame(bgr=bgr, encoded=raw, content_type=content_type), limits)


def _check_complete(raw: bytes, content_type: str) -> None:
    """Reject truncated uploads: OpenCV would otherwise decode them with a grey bottom half."""
    if content_type == "image/png":
        complete = b"IEND" in raw[-64:]
    else:
        # Entropy-coded data never contains FFD9, so an end-of-image marker near the end means complete;
        # the tail allowance covers trailers some cameras append after it.
        complete = b"\xff\xd9" in raw[-4096:]
    if not complete:
        raise LivenessError(ErrorCode.INVALID_IMAGE, "The image is truncated or corrupt.")


def _declared_size(raw: bytes, content_type: str) -> tuple[int, int]:
    """Width and height from the header, read before decoding so a decompression bomb is never decoded."""
    size = _png_size(raw) if content_type == "image/png" else _jpeg_size(raw)
    if size is None:
        raise LivenessError(ErrorCode.INVALID_IMAGE, "The image header is corrupt.")
    return size


def _png_size(raw: bytes) -> tuple[int, int] | None:
    if len(raw) < 24 or raw[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", raw[16:24])
    return int(width), int(height)


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 <= len(raw):
        if raw[position] != 0xFF:
            return None
        marker = raw[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        segment_length = struct.unpack(">H", raw[position + 2 : position + 4])[0]
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", raw[position + 5 : position + 9])
            return int(width), int(height)
        position += 2 + segment_length
    return None


def _check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width < MIN_SIDE_PX or height < MIN_SIDE_PX:
        raise LivenessError(
            ErrorCode.IMAGE_TOO_SMALL, f"The image is {width}x{height}; at least {MIN_SIDE_PX}x{MIN_SIDE_PX} is needed."
        )
    if width * height > limits.max_pixels:
        raise LivenessError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The image is {width}x{height}; at most {limits.max_pixels // 1_000_000} megapixels are accepted.",
        )


def _decode_bgr(raw: bytes) -> np.ndarray:
    # IMREAD_COLOR gives 3-channel 8-bit BGR from RGBA (canvas PNG), grayscale and 16-bit input alike.
    bgr = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise LivenessError(ErrorCode.INVALID_IMAGE, "The image could not be decoded.")
    return bgr


def _fit_for_analysis(frame: Frame, limits: ImageLimits) -> Frame:
    """Keep the upload as is when the analyzer can take it; otherwise downscale and re-encode as JPEG."""
    long_side = max(frame.width, frame.height)
    if len(frame.encoded) <= REKOGNITION_MAX_BYTES and long_side <= limits.analysis_max_side_px:
        return frame
    bgr = frame.bgr
    if long_side > limits.analysis_max_side_px:
        scale = limits.analysis_max_side_px / long_side
        size = (max(MIN_SIDE_PX, round(frame.width * scale)), max(MIN_SIDE_PX, round(frame.height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    encoded = encode_jpeg(bgr)
    if len(encoded) > REKOGNITION_MAX_BYTES:
        raise _too_large(limits)
    return Frame(bgr=bgr, encoded=encoded, content_type="image/jpeg")


def _too_large(limits: ImageLimits) -> LivenessError:
    return LivenessError(
        ErrorCode.PAYLOAD_TOO_LARGE, f"The image is larger than {limits.max_upload_bytes // (1024 * 1024)} MB."
    )


def encode_jpeg(bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # only on an empty or malformed array, which is a bug on our side
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes()


@dataclass(frozen=True)
class PixelBox:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def face_pixel_box(box: BoundingBox, width: int, height: int, margin: float = FACE_MARGIN) -> PixelBox:
    """Clamp a Rekognition box (which may be negative or exceed 1) to the image, with a margin; never empty."""
    pad_x, pad_y = box.width * margin, box.height * margin
    left = _clamp(round((box.left - pad_x) * width), 0, width - 1)
    top = _clamp(round((box.top - pad_y) * height), 0, height - 1)
    right = _clamp(round((box.left + box.width + pad_x) * width), left + 1, width)
    bottom = _clamp(round((box.top + box.height + pad_y) * height), top + 1, height)
    return PixelBox(left=left, top=top, right=right, bottom=bottom)


def crop_face(frame: Frame, box: BoundingBox, margin: float = FACE_MARGIN) -> np.ndarray:
    pixels = face_pixel_box(box, frame.width, frame.height, margin)
    return frame.bgr[pixels.top : pixels.bottom, pixels.left : pixels.right]


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))
