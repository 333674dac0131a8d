"""Hostile images made in the test from real encoder output: the fuzzing run's bombs, rebuilt.

- ``scan_bomb``: a progressive JPEG whose cheapest full-image scan (a chroma AC refinement of 14 bytes that
  libjpeg still runs over every block) is repeated thousands of times: 0.57 MB that decodes for minutes.
- ``png_length_bomb``: a PNG whose second chunk declares 0xFFFFFFFF bytes: the decoder allocates them.
- ``header_only_jpeg``: a real 6000x6600 header with its scan header and no data: a 40 MP decode of nothing.
- ``flat_png``: a valid PNG of one colour at any size, bit depth and colour type (rows deflated as a stream):
  6000x6600 at 1 bit is the 4.9 KB file that cost +226 MB to decode, at 16-bit RGBA the 320 KB one.
- ``polyglot``: an image with a file appended after its end marker (a ZIP archive, random bytes).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from functools import cache

import cv2
import numpy as np


def jpeg_segments(raw: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of every segment of an encoder's JPEG; a scan's end includes its entropy data."""
    position, found = 2, []
    while position < len(raw):
        marker = raw[position + 1]
        if marker == 0xD9:
            found.append((marker, position, position + 2))
            break
        end = position + 2 + struct.unpack(">H", raw[position + 2 : position + 4])[0]
        if marker == 0xDA:
            while True:
                end = raw.index(b"\xff", end)
                if raw[end + 1] == 0 or 0xD0 <= raw[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        found.append((marker, position, end))
        position = end
    return found


def patterned(width: int, height: int) -> np.ndarray:
    """Flat with a sparse dot pattern: compresses to little, but every block still has a few coefficients."""
    image = np.full((height, width, 3), 90, np.uint8)
    image[::7, ::5] = (200, 120, 40)
    return image


def progressive_jpeg(image: np.ndarray, quality: int = 50) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    return buffer.tobytes()


def scan_bomb(width: int = 4000, height: int = 4000, repeats: int = 40_000) -> bytes:
    raw = progressive_jpeg(patterned(width, height))
    scans = [(start, end) for marker, start, end in jpeg_segments(raw) if marker == 0xDA]
    start, end = min(scans, key=lambda scan: scan[1] - scan[0])  # the cheapest complete scan
    return raw[:-2] + raw[start:end] * repeats + b"\xff\xd9"


def png_chunk(kind: bytes, body: bytes, declared: int | None = None) -> bytes:
    length = len(body) if declared is None else declared
    return struct.pack(">I", length) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_length_bomb(declared: int = 0xFFFFFFFF, total: int = 153) -> bytes:
    ok, buffer = cv2.imencode(".png", patterned(640, 480))
    assert ok
    raw = buffer.tobytes()
    after_header = 8 + 25  # signature, IHDR
    bomb = raw[:after_header] + struct.pack(">I", declared) + b"IDAT" + raw[after_header + 8 :]
    return bomb[:total]


def header_only_jpeg(width: int = 6000, height: int = 6600) -> bytes:
    raw = progressive_jpeg(patterned(320, 240))
    sof = next(start for marker, start, _ in jpeg_segments(raw) if marker in (0xC0, 0xC2))
    raw = raw[: sof + 5] + struct.pack(">HH", height, width) + raw[sof + 9 :]
    first_scan = next((start, end) for marker, start, end in jpeg_segments(raw) if marker == 0xDA)
    header_end = first_scan[0] + 2 + struct.unpack(">H", raw[first_scan[0] + 2 : first_scan[0] + 4])[0]
    return raw[:header_end] + b"\xff\xd9"


# PNG colour types: grey 0, RGB 2, palette 3, grey + alpha 4, RGBA 6.
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@cache
def flat_png(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A complete PNG of zeros, compressed row by row so a 317 MB raster never exists in memory."""
    row = bytes(1 + (width * depth * _CHANNELS[colour] + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))]
    if colour == 3:
        chunks.append(png_chunk(b"PLTE", bytes(3)))
    chunks += [png_chunk(b"IDAT", data), png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def zip_archive(size: int = 2048) -> bytes:
    """A real ZIP file (what a JPEG+ZIP polyglot carries): readable by any unzip tool from the end of a file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("payload.txt", bytes(range(256)) * (size // 256))
    return buffer.getvalue()


def polyglot(image: bytes, payload: bytes) -> bytes:
    """The image, then the payload: an image viewer shows the picture, an unzip tool finds the archive."""
    return image + payload


def _camera_frame() -> bytes:
    ok, buffer = cv2.imencode(".jpg", patterned(640, 480), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buffer.tobytes()


def _camera_png() -> bytes:
    ok, buffer = cv2.imencode(".png", patterned(640, 480))
    assert ok
    return buffer.tobytes()


# The outside test's bombs, and the same kinds inside the pixel limit: (maker, the code that refuses it).
CAMERA_BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "png-1bit-6000x6600-4.9KB": (lambda: flat_png(6000, 6600, depth=1, colour=0), "PAYLOAD_TOO_LARGE"),
    "png-16bit-rgba-6000x6600-308KB": (lambda: flat_png(6000, 6600, depth=16, colour=6), "PAYLOAD_TOO_LARGE"),
    "png-1bit-3000x3000": (lambda: flat_png(3000, 3000, depth=1, colour=0), "IMAGE_TOO_COMPLEX"),
    "png-16bit-rgba-3000x3000": (lambda: flat_png(3000, 3000, depth=16, colour=6), "IMAGE_TOO_COMPLEX"),
    "png-16bit-rgba-2500x2500": (lambda: flat_png(2500, 2500, depth=16, colour=6), "IMAGE_TOO_COMPLEX"),
    "png-8bit-rgb-3000x3000": (lambda: flat_png(3000, 3000), "IMAGE_TOO_COMPLEX"),
    "png-palette-3000x3000": (lambda: flat_png(3000, 3000, depth=1, colour=3), "IMAGE_TOO_COMPLEX"),
    "jpeg-plus-4MB-random": (lambda: polyglot(_camera_frame(), os.urandom(4 * 2**20)), "IMAGE_TRAILING_DATA"),
    "jpeg-plus-zip": (lambda: polyglot(_camera_frame(), zip_archive()), "IMAGE_TRAILING_DATA"),
    "png-plus-zip": (lambda: polyglot(_camera_png(), zip_archive()), "IMAGE_TRAILING_DATA"),
}
