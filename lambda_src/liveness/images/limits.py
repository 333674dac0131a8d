"""The image bounds; every one exists because of a downstream limit (Rekognition's, Lambda's)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ErrorCode, LivenessError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
SUPPORTED_TYPES = ("image/jpeg", "image/png")

# Rekognition accepts at most 5 MB of PNG/JPEG bytes and at least 80x80 pixels.
REKOGNITION_MAX_BYTES = 5 * 1024 * 1024
# A synchronous Lambda payload is at most 6 MB, so nothing bigger can ever arrive in AWS.
MAX_UPLOAD_BYTES = 6 * 1024 * 1024
MIN_SIDE_PX = 80
# A small compressed file can declare a huge raster (a decompression bomb), a chunk of gigabytes (a memory bomb)
# or thousands of progressive scans (a CPU bomb); the container is walked and refused before decoding.
MAX_PIXELS = 40_000_000
MAX_DECODE_WORK = 160_000_000  # pixels x scans: e.g. 4 scans of a 40 MP frame, or 10 of a 16 MP one
ANALYSIS_MAX_SIDE_PX = 1920
JPEG_QUALITY = 90
FACE_MARGIN = 0.15


@dataclass(frozen=True)
class ImageLimits:
    """Configurable bounds; defaults follow Rekognition's and Lambda's limits."""

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    analysis_max_side_px: int = ANALYSIS_MAX_SIDE_PX
    max_decode_work: int = MAX_DECODE_WORK


DEFAULT_LIMITS = ImageLimits()


def too_large(limits: ImageLimits) -> LivenessError:
    return LivenessError(
        ErrorCode.PAYLOAD_TOO_LARGE, f"The image is larger than {limits.max_upload_bytes // (1024 * 1024)} MB."
    )
