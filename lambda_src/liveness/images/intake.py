"""Upload intake: the image field (data URL or base64), its real type, its size, and the one path from the
request body to a decoded frame that /detect and session frames share."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from ..errors import ErrorCode, LivenessError, clip, unavailable
from ..faces import Frame
from .container import check_cost, image_bytes, inspect_container
from .decode import check_dimensions, decode_frame
from .limits import DEFAULT_LIMITS, JPEG_SIGNATURE, PNG_SIGNATURE, SUPPORTED_TYPES, ImageLimits, too_large

_DATA_URL = re.compile(r"^data:(?P<media_type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?)$", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class Upload:
    """An upload's image (``raw``: as received up to its end marker, never logged), its decoded frame and its
    sniffed type."""

    raw: bytes
    frame: Frame  # may have been re-encoded for the analyzer; archive ``raw``
    content_type: str

    @cached_property
    def sha256(self) -> str:
        """Hex digest of the upload's bytes: only the digest is kept, the image stays in the archive."""
        return hashlib.sha256(self.raw).hexdigest()


def receive_upload(value: object, *, limits: ImageLimits = DEFAULT_LIMITS) -> Upload:
    """The image field of a request body, parsed, checked and decoded: malformed uploads are refused here."""
    image, frame = _checked_and_decoded(parse_image_field(value, limits=limits), limits)
    return Upload(raw=image, frame=frame, content_type=sniff_content_type(image))


def parse_image_field(value: object, *, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """Turn a data URL (``data:image/png;base64,...``) or plain base64 into raw bytes."""
    if not isinstance(value, str) or not value:
        raise LivenessError(ErrorCode.INVALID_REQUEST, "The image must be a non-empty base64 string or data URL.")
    payload = _strip_data_url(value)
    if len(payload) > limits.max_upload_bytes * 4 // 3 + 4:
        raise too_large(limits)
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
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"Only image/jpeg and image/png are accepted, not {clip(media_type) or 'none'}.",
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
    return _checked_and_decoded(raw, limits)[1]


def _checked_and_decoded(raw: bytes, limits: ImageLimits) -> tuple[bytes, Frame]:
    """The image's bytes (without a camera's zero padding) and its frame. The container is walked first
    (``inspect_container``), so a file whose structure promises more work or memory than a camera frame, or
    that carries bytes after its end, is refused before the decoder sees it."""
    if len(raw) > limits.max_upload_bytes:
        raise too_large(limits)
    content_type = sniff_content_type(raw)
    layout = inspect_container(raw, content_type)
    check_dimensions(layout.width, layout.height, limits)
    check_cost(layout, limits)
    image = image_bytes(raw, layout)
    return image, decode_frame(image, layout, content_type, limits)


def load_stored_frame(jpeg: bytes, what: str) -> Frame:
    """A stored crop (e.g. the reference face: at least 80 px a side, see ``face_crop_jpeg``), through the same
    checks as an upload: the store is outside the request, but a local data folder is writable. Unreadable, it
    is a 503 (``what`` names it)."""
    try:
        return load_frame(jpeg)
    except LivenessError:
        raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, what) from None
