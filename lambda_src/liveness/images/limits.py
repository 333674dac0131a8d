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
# A camera frame: 4K UHD is 8.3 MP (3840x2160), DCI 4K 8.8 MP, a webcam 0.3-2 MP; 10 MP is 20% over 4K.
MAX_PIXELS = 10_000_000
MAX_DECODE_WORK = 160_000_000  # pixels x scans: e.g. 16 scans of a 10 MP frame (libjpeg's script has 10)
# Decoded bytes: the 3-byte BGR output plus what the decoder holds per pixel before it (a PNG's inflated rows,
# 8 bytes a pixel for 16-bit RGBA; a progressive JPEG's coefficients, 2 bytes a sample). The budget is a
# MAX_PIXELS frame at 9 bytes a pixel, the costliest a camera writes (a progressive 4:4:4 JPEG).
DECODE_BYTES_PER_PIXEL = 9
# Decoded bytes over the image's bytes, past a floor any frame may cost (a black 1080p canvas PNG is 14.5 MB):
# real images measure up to 18:1 as PNG and 268:1 as JPEG (docs/security.md); bombs are far above.
RATIO_FREE_DECODE_BYTES = 16 * 1024 * 1024
MAX_PNG_DECODE_RATIO = 64
MAX_JPEG_DECODE_RATIO = 512
# Bytes after the image's end (JPEG EOI, PNG IEND) are a payload, never archived: only a camera driver's zero
# padding to its buffer alignment, at most a page, is tolerated, and stripped.
MAX_TRAILING_ZEROS = 4096
ANALYSIS_MAX_SIDE_PX = 1920
JPEG_QUALITY = 90
FACE_MARGIN = 0.15


@dataclass(frozen=True)
class ImageLimits:
    """Configurable bounds; defaults follow Rekognition's and Lambda's limits and a camera's frame size."""

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    analysis_max_side_px: int = ANALYSIS_MAX_SIDE_PX
    max_decode_work: int = MAX_DECODE_WORK

    @property
    def max_decode_bytes(self) -> int:
        return self.max_pixels * DECODE_BYTES_PER_PIXEL


DEFAULT_LIMITS = ImageLimits()


def too_large(limits: ImageLimits) -> LivenessError:
    return LivenessError(
        ErrorCode.PAYLOAD_TOO_LARGE, f"The image is larger than {limits.max_upload_bytes // (1024 * 1024)} MB."
    )
