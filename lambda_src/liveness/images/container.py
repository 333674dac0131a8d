"""The PNG/JPEG container walk: the structure, cost and completeness checks made before any decoding."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ..errors import ErrorCode, LivenessError
from .limits import (
    MAX_JPEG_DECODE_RATIO,
    MAX_PNG_DECODE_RATIO,
    MAX_TRAILING_ZEROS,
    PNG_SIGNATURE,
    RATIO_FREE_DECODE_BYTES,
    ImageLimits,
)

# The container walk: everything the decoder would trust, checked in bounded time before it runs.
#
# PNG: every chunk lies inside the upload, IHDR is first and sane, the chunk count is bounded, IEND ends it,
# and the compressed image data can hold the declared raster (deflate never exceeds 1032:1).
# JPEG: one baseline, extended or progressive Huffman frame with a sane SOF, a bounded number of segments
# and scans, every entropy-coded segment inside the upload, EOI at the end, at least the bits the format
# needs for every block (1 a block for a progressive DC scan, 2 for a sequential scan), and a progressive
# script that brings every coefficient of every component to full precision (otherwise scans are missing).
# Both: the bytes the decoder will produce are counted from the header (bit depth, colour type, sampling), and
# nothing but zero padding may follow the image's end.

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
    end: int  # the offset just past the end marker (PNG IEND, JPEG EOI)
    decoded_bytes: int  # the BGR output plus the inflated PNG rows or a progressive JPEG's coefficients
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
            if length:
                raise _corrupt("The PNG end chunk (IEND) is not empty.")
            break
        elif kind not in _PNG_CRITICAL and length > MAX_PNG_ANCILLARY_BYTES:
            raise _too_complex(f"a PNG metadata chunk is over {MAX_PNG_ANCILLARY_BYTES // 1024} KB")
        position = end
    width, height, bits_per_pixel = header
    raster = height * (1 + (width * bits_per_pixel + 7) // 8)  # each row: a filter byte and its samples
    if idat_bytes < raster // DEFLATE_MAX_RATIO:
        raise _corrupt(f"The PNG holds too little image data for {width}x{height} pixels (truncated or forged).")
    decoded = raster + 3 * width * height
    return ContainerLayout(width=width, height=height, scans=1, end=end, decoded_bytes=decoded)


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
    decoded = 3 * width * height
    if progressive:  # libjpeg keeps every block's 64 coefficients (2 bytes each) across the scans
        decoded += 128 * sum(across * down for across, down in _component_blocks(layout, width, height).values())
    return ContainerLayout(
        width=width, height=height, scans=len(scans), end=position, decoded_bytes=decoded, jpeg=layout
    )


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


def check_cost(layout: ContainerLayout, limits: ImageLimits) -> None:
    """Refuse what would cost more to decode than a camera frame: passes, bytes, and bytes per byte sent."""
    if layout.width * layout.height * layout.scans > limits.max_decode_work:
        raise _too_complex(
            f"{layout.scans} scans over {layout.width}x{layout.height} pixels exceed this service's decoding budget"
        )
    megabytes = layout.decoded_bytes / 2**20
    if layout.decoded_bytes > limits.max_decode_bytes:
        raise _too_complex(
            f"its bit depth and colour type at {layout.width}x{layout.height} decode to {megabytes:.0f} MB, "
            f"over this service's {limits.max_decode_bytes / 2**20:.0f} MB"
        )
    bound = MAX_JPEG_DECODE_RATIO if layout.jpeg is not None else MAX_PNG_DECODE_RATIO
    if layout.decoded_bytes > max(RATIO_FREE_DECODE_BYTES, bound * layout.end):
        raise _too_complex(
            f"{layout.end / 1024:.0f} KB declaring {megabytes:.0f} MB of decoded data "
            f"is compressed beyond any camera frame (at most {bound}:1)"
        )


def image_bytes(raw: bytes, layout: ContainerLayout) -> bytes:
    """The image without what follows its end marker: a camera's zero padding is stripped, anything else (an
    appended archive, a script, a second file) refuses the upload, so no payload reaches the evidence archive."""
    trailing = len(raw) - layout.end
    if trailing == 0:
        return raw
    if trailing > MAX_TRAILING_ZEROS or raw.count(0, layout.end) != trailing:
        raise LivenessError(
            ErrorCode.IMAGE_TRAILING_DATA,
            f"The image has {trailing} bytes after its end marker; only the image itself is accepted.",
        )
    return raw[: layout.end]


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _too_complex(why: str) -> LivenessError:
    return LivenessError(ErrorCode.IMAGE_TOO_COMPLEX, f"The image is refused before decoding: {why}.")


def _truncated() -> LivenessError:
    return LivenessError(ErrorCode.INVALID_IMAGE, "The image is truncated or corrupt.")


def _corrupt(message: str) -> LivenessError:
    return LivenessError(ErrorCode.INVALID_IMAGE, message)
