"""Frame intake: parse the uploaded image, check it really is PNG/JPEG, decode, bound its size, crop faces.

Every limit here exists because of a downstream one:
- Rekognition accepts at most 5 MB of PNG/JPEG bytes and at least 80x80 pixels.
- A synchronous Lambda payload is at most 6 MB, so nothing bigger can ever arrive in AWS.
- A small compressed file can declare a huge raster (a decompression bomb), a chunk of gigabytes (a memory
  bomb) or thousands of progressive scans (a CPU bomb); the container is walked and refused before decoding.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .errors import ErrorCode, LivenessError, clip, unavailable
from .faces import BoundingBox, FaceDetail, Frame

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
SUPPORTED_TYPES = ("image/jpeg", "image/png")

REKOGNITION_MAX_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_BYTES = 6 * 1024 * 1024
MIN_SIDE_PX = 80
MAX_PIXELS = 40_000_000
MAX_DECODE_WORK = 160_000_000  # pixels x scans: e.g. 4 scans of a 40 MP frame, or 10 of a 16 MP one
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
    max_decode_work: int = MAX_DECODE_WORK


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
    """Validate, decode to 3-channel BGR and bound the size of an uploaded image.

    The container is walked first (``inspect_container``), so a file whose structure promises more work or
    memory than its size allows is refused before the decoder sees it."""
    if len(raw) > limits.max_upload_bytes:
        raise _too_large(limits)
    content_type = sniff_content_type(raw)
    layout = inspect_container(raw, content_type)
    _check_dimensions(layout.width, layout.height, limits)
    _check_cost(layout, limits)
    bgr = _decode_bgr(raw) if layout.jpeg is None else _decode_jpeg_strictly(raw)
    return _fit_for_analysis(Frame(bgr=bgr, encoded=raw, content_type=content_type), limits)


# ---------------------------------------------------------------------------------------------------------
# The container walk: everything the decoder would trust, checked in bounded time before it runs.
#
# PNG: every chunk lies inside the upload, IHDR is first and sane, the chunk count is bounded, IEND ends it,
# and the compressed image data can hold the declared raster (deflate never exceeds 1032:1).
# JPEG: one baseline, extended or progressive Huffman frame with a sane SOF, a bounded number of segments
# and scans, every entropy-coded segment inside the upload, EOI at the end, at least the bits the format
# needs for every block (1 a block for a progressive DC scan, 2 for a sequential scan), and a progressive
# script that brings every coefficient of every component to full precision (otherwise scans are missing).

MAX_PNG_CHUNKS = 4096  # 5 MB of image data in libpng's usual 8 KB IDAT chunks is 640
MAX_PNG_ANCILLARY_BYTES = 256 * 1024  # text, ICC profile, EXIF: none of it is needed, and none may be a bomb
MAX_JPEG_SEGMENTS = 1024
MAX_JPEG_SCANS = 64  # libjpeg's progressive script has 10 scans for colour; thousands are a CPU bomb
DEFLATE_MAX_RATIO = 1032  # 258 bytes per 2-bit length/distance pair: the most deflate can expand

_PNG_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
_PNG_ANIMATION = frozenset({b"acTL", b"fcTL", b"fdAT"})

_JPEG_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2})  # baseline, extended sequential, progressive
_JPEG_OTHER_FRAMES = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# The end of an entropy-coded segment: 0xFF followed by neither a stuffed 0x00 nor a restart marker.
_ENTROPY_END = re.compile(rb"\xff(?![\x00\xd0-\xd7])")
_NOT_FILL = re.compile(rb"[^\xff]")


@dataclass(frozen=True)
class JpegScan:
    components: tuple[int, ...]  # component ids, in scan order
    spectral: tuple[int, int]  # Ss, Se
    approximation: tuple[int, int]  # Ah, Al


@dataclass(frozen=True)
class JpegLayout:
    progressive: bool
    components: tuple[tuple[int, int, int], ...]  # (id, horizontal, vertical sampling)
    scans: tuple[JpegScan, ...]
    entropy_bytes: int


@dataclass(frozen=True)
class ContainerLayout:
    width: int
    height: int
    scans: int  # full passes the decoder makes over the image (JPEG scans; 1 for PNG)
    jpeg: JpegLayout | None = None


def inspect_container(raw: bytes, content_type: str) -> ContainerLayout:
    """Walk the PNG chunks or JPEG segments; refuse what is malformed, truncated or too costly to decode."""
    return _walk_png(raw) if content_type == "image/png" else _walk_jpeg(raw)


def _walk_png(raw: bytes) -> ContainerLayout:
    position, chunks, idat_bytes, header = len(PNG_SIGNATURE), 0, 0, None
    while True:
        if position + 12 > len(raw):
            raise _truncated()
        length, kind = struct.unpack(">I4s", raw[position : position + 8])
        end = position + 12 + length
        if end > len(raw):  # also every length >= 2**31, which PNG forbids
            raise _truncated()
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _too_complex(f"it has more than {MAX_PNG_CHUNKS} PNG chunks")
        if header is None and kind != b"IHDR":
            raise _corrupt("The PNG does not start with its IHDR header.")
        if kind == b"IHDR":
            if header is not None or length != 13:
                raise _corrupt("The PNG header (IHDR) is malformed.")
            header = _png_header(raw[position + 8 : position + 21])
        elif kind in _PNG_ANIMATION:
            raise LivenessError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Animated PNGs are not accepted.")
        elif kind == b"IDAT":
            idat_bytes += length
        elif kind == b"IEND":
            break
        elif kind not in _PNG_CRITICAL and length > MAX_PNG_ANCILLARY_BYTES:
            raise _too_complex(f"a PNG metadata chunk is over {MAX_PNG_ANCILLARY_BYTES // 1024} KB")
        position = end
    width, height, bits_per_pixel = header
    raster = height * ((width * bits_per_pixel + 7) // 8)
    if idat_bytes < raster // DEFLATE_MAX_RATIO:
        raise _corrupt(f"The PNG holds too little image data for {width}x{height} pixels (truncated or forged).")
    return ContainerLayout(width=width, height=height, scans=1)


def _png_header(body: bytes) -> tuple[int, int, int]:
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    sane = (
        0 < width < 2**31
        and 0 < height < 2**31
        and depth in _PNG_BIT_DEPTHS.get(colour, ())
        and (compression, filtering) == (0, 0)
        and interlace in (0, 1)
    )
    if not sane:
        raise _corrupt("The PNG header (IHDR) is malformed.")
    return int(width), int(height), depth * _PNG_CHANNELS[colour]


def _walk_jpeg(raw: bytes) -> ContainerLayout:
    position, segments, frame, entropy_bytes = 2, 0, None, 0
    scans: list[JpegScan] = []
    while True:
        if position >= len(raw) or raw[position] != 0xFF:
            raise _truncated() if position >= len(raw) else _corrupt("The JPEG's segments are malformed.")
        fill_end = _NOT_FILL.search(raw, position)  # 0xFF fill bytes may precede any marker
        if fill_end is None:
            raise _truncated()
        marker, position = raw[fill_end.start()], fill_end.start() + 1
        if marker == 0xD9:
            break
        if marker in _JPEG_STANDALONE or marker in (0x00, 0xD8):
            raise _corrupt("The JPEG's segments are malformed.")
        if position + 2 > len(raw):
            raise _truncated()
        length = (raw[position] << 8) | raw[position + 1]
        if length < 2 or position + length > len(raw):
            raise _truncated() if length >= 2 else _corrupt("The JPEG's segments are malformed.")
        body = raw[position + 2 : position + length]
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_complex(f"it has more than {MAX_JPEG_SEGMENTS} JPEG segments")
        position += length
        if marker in _JPEG_OTHER_FRAMES:
            raise LivenessError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "Only baseline and progressive JPEGs are accepted (not lossless, hierarchical or arithmetic-coded).",
            )
        if marker in _JPEG_HUFFMAN_FRAMES:
            if frame is not None:
                raise _corrupt("The JPEG has more than one frame header.")
            frame = _jpeg_frame_header(marker, body)
        elif marker == 0xDA:
            if frame is None:
                raise _corrupt("The JPEG has a scan before its frame header.")
            scans.append(_jpeg_scan_header(body, frame))
            if len(scans) > MAX_JPEG_SCANS:
                raise _too_complex(f"it has more than {MAX_JPEG_SCANS} JPEG scans")
            data_end = _ENTROPY_END.search(raw, position)
            if data_end is None:
                raise _truncated()
            entropy_bytes += data_end.start() - position
            position = data_end.start()
    if frame is None or not scans:
        raise _corrupt("The JPEG has no frame header or no scan.")
    progressive, width, height, components = frame
    layout = JpegLayout(
        progressive=progressive,
        components=components,
        scans=tuple(scans),
        entropy_bytes=entropy_bytes,
    )
    _check_jpeg_data(layout, width, height)
    return ContainerLayout(width=width, height=height, scans=len(scans), jpeg=layout)


def _jpeg_frame_header(marker: int, body: bytes) -> tuple[bool, int, int, tuple[tuple[int, int, int], ...]]:
    if len(body) < 6:
        raise _corrupt("The JPEG frame header (SOF) is malformed.")
    precision, height, width, count = struct.unpack(">BHHB", body[:6])
    if precision not in (8, 12) or height == 0 or width == 0 or count not in (1, 3, 4) or len(body) != 6 + 3 * count:
        # height 0 defers the height to a DNL marker after the first scan: no camera writes that
        raise _corrupt("The JPEG frame header (SOF) is malformed.")
    components = []
    for index in range(count):
        ident, sampling = body[6 + 3 * index], body[7 + 3 * index]
        horizontal, vertical = sampling >> 4, sampling & 0x0F
        if not (1 <= horizontal <= 4 and 1 <= vertical <= 4):
            raise _corrupt("The JPEG frame header (SOF) is malformed.")
        components.append((ident, horizontal, vertical))
    if len({ident for ident, _, _ in components}) != count:
        raise _corrupt("The JPEG frame header (SOF) is malformed.")
    return marker == 0xC2, int(width), int(height), tuple(components)


def _jpeg_scan_header(body: bytes, frame: tuple[bool, int, int, tuple[tuple[int, int, int], ...]]) -> JpegScan:
    count = body[0] if body else 0
    known = {ident for ident, _, _ in frame[3]}
    if not 1 <= count <= 4 or len(body) != 4 + 2 * count:
        raise _corrupt("The JPEG scan header (SOS) is malformed.")
    idents = tuple(body[1 + 2 * index] for index in range(count))
    start, end, approximation = body[1 + 2 * count], body[2 + 2 * count], body[3 + 2 * count]
    if not set(idents) <= known or len(set(idents)) != count or start > end or end > 63:
        raise _corrupt("The JPEG scan header (SOS) is malformed.")
    return JpegScan(
        components=idents,
        spectral=(start, end),
        approximation=(approximation >> 4, approximation & 0x0F),
    )


def _component_blocks(layout: JpegLayout, width: int, height: int) -> dict[int, tuple[int, int]]:
    """Each component's blocks across and down (non-interleaved count: a lower bound)."""
    h_max = max(h for _, h, _ in layout.components)
    v_max = max(v for _, _, v in layout.components)
    return {
        ident: (_ceil_div(_ceil_div(width * h, h_max), 8), _ceil_div(_ceil_div(height * v, v_max), 8))
        for ident, h, v in layout.components
    }


def _check_jpeg_data(layout: JpegLayout, width: int, height: int) -> None:
    blocks = sum(across * down for across, down in _component_blocks(layout, width, height).values())
    # Every Huffman code is at least one bit: a sequential scan spends a DC code and an AC code on each block,
    # a progressive DC scan one code. Fewer bytes than that cannot describe the declared raster.
    least = blocks // 8 if layout.progressive else blocks // 4
    if layout.entropy_bytes < least:
        raise _corrupt(f"The JPEG holds too little image data for {width}x{height} pixels (truncated or forged).")
    if layout.progressive:
        precise = {ident: [False] * 64 for ident, _, _ in layout.components}
        for scan in layout.scans:
            if scan.approximation[1] == 0:
                for ident in scan.components:
                    for coefficient in range(scan.spectral[0], scan.spectral[1] + 1):
                        precise[ident][coefficient] = True
        complete = all(all(flags) for flags in precise.values())
    else:
        complete = {ident for scan in layout.scans for ident in scan.components} == {
            ident for ident, _, _ in layout.components
        }
    if not complete:
        raise _truncated()


def _check_cost(layout: ContainerLayout, limits: ImageLimits) -> None:
    if layout.width * layout.height * layout.scans > limits.max_decode_work:
        raise _too_complex(
            f"{layout.scans} scans over {layout.width}x{layout.height} pixels exceed this service's decoding budget"
        )


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _too_complex(why: str) -> LivenessError:
    return LivenessError(ErrorCode.IMAGE_TOO_COMPLEX, f"The image is refused before decoding: {why}.")


def _truncated() -> LivenessError:
    return LivenessError(ErrorCode.INVALID_IMAGE, "The image is truncated or corrupt.")


def _corrupt(message: str) -> LivenessError:
    return LivenessError(ErrorCode.INVALID_IMAGE, message)


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


# A JPEG cut short with its end marker put back decodes without error: libjpeg fills the blocks after the data
# ran out with mid-grey and only warns ("Corrupt JPEG data: premature end of data segment"). Its warnings go to
# the process's stderr (OpenCV keeps libjpeg's default message output), so the decode runs with file
# descriptor 2 pointed at a scratch file, under a lock; a libjpeg warning about the data refuses the file, and
# whatever the scratch file caught is passed on to the real stderr afterwards. Other threads write there too
# meanwhile (the local server's request log), so only libjpeg's own warnings count, never any byte.
_STDERR_LOCK = threading.Lock()
_LIBJPEG_DATA_WARNINGS = (
    b"Corrupt JPEG data",  # premature end of a data segment, extraneous bytes, a marker where data belongs
    b"Premature end of JPEG file",
    b"Inconsistent progression sequence",
    b"Invalid SOS parameters",
)


def _decode_jpeg_strictly(raw: bytes) -> np.ndarray:
    with _STDERR_LOCK, _scratch_file() as scratch:
        if sys.stderr is not None:  # what Python buffered goes out first, not into the scratch file
            sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(scratch.fileno(), 2)
            try:
                bgr = _decode_bgr(raw)
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        scratch.seek(0)
        caught = scratch.read()
    if caught:
        os.write(2, caught)
    if any(warning in caught for warning in _LIBJPEG_DATA_WARNINGS):
        raise LivenessError(ErrorCode.INVALID_IMAGE, "The JPEG data is truncated or corrupt.")
    return bgr


def _scratch_file() -> Any:
    if hasattr(os, "memfd_create"):  # Linux (Lambda): in memory, no file system involved
        return os.fdopen(os.memfd_create("libjpeg-messages"), "w+b")
    return tempfile.TemporaryFile()


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


def face_crop_jpeg(frame: Frame, face: FaceDetail) -> bytes:
    """The face with a margin, upscaled if needed: CompareFaces refuses images under 80x80 pixels."""
    crop = crop_face(frame, face.bounding_box)
    short_side = min(crop.shape[0], crop.shape[1])
    if short_side < MIN_SIDE_PX:
        scale = MIN_SIDE_PX / short_side
        crop = cv2.resize(
            crop, (round(crop.shape[1] * scale) + 1, round(crop.shape[0] * scale) + 1), interpolation=cv2.INTER_CUBIC
        )
    return encode_jpeg(crop)


def load_stored_frame(jpeg: bytes, what: str) -> Frame:
    """A stored crop (e.g. the reference face: at least 80 px a side, see ``face_crop_jpeg``), through the same
    checks as an upload: the store is outside the request, but a local data folder is writable. Unreadable, it
    is a 503 (``what`` names it)."""
    try:
        return load_frame(jpeg)
    except LivenessError:
        raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, what) from None


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))
