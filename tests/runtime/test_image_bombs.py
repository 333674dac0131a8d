"""Image bombs are refused by the container walk, before the decoder runs: counted, and bounded in a child
process with CPU and address-space limits that the bombs would blow through if they were decoded. Images that
carry bytes after their end (polyglots) are refused too, so no payload reaches the evidence archive."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from liveness.errors import ErrorCode, LivenessError
from liveness.images import decode
from liveness.images.container import MAX_JPEG_SCANS, MAX_PNG_CHUNKS, check_cost, inspect_container
from liveness.images.intake import load_frame, receive_upload
from liveness.images.limits import (
    DEFAULT_LIMITS,
    MAX_JPEG_DECODE_RATIO,
    MAX_PIXELS,
    MAX_PNG_DECODE_RATIO,
    MAX_TRAILING_ZEROS,
    PNG_SIGNATURE,
    ImageLimits,
)

from testkit import headturn
from testkit.bombs import (
    CAMERA_BOMBS,
    flat_png,
    header_only_jpeg,
    jpeg_segments,
    patterned,
    png_chunk,
    png_length_bomb,
    progressive_jpeg,
    scan_bomb,
    zip_archive,
)
from testkit.images import encode, jpeg_bytes, png_bytes, rgba_png_bytes, scene_bgr

ROOT = Path(__file__).resolve().parents[2]
DEV_FACES = ROOT.parent / "shared" / "faces" / "dev"


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the decoder's calls (and the bytes it was given): a refused bomb must cost none."""
    calls: list[int] = []
    real = cv2.imdecode

    def counting(buffer: np.ndarray, flags: int) -> Any:
        calls.append(len(buffer))
        return real(buffer, flags)

    monkeypatch.setattr(decode.cv2, "imdecode", counting)
    return calls


def refused(raw: bytes) -> LivenessError:
    with pytest.raises(LivenessError) as raised:
        load_frame(raw)
    return raised.value


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: scan_bomb(), ErrorCode.IMAGE_TOO_COMPLEX),
        (lambda: png_length_bomb(0xFFFFFFFF), ErrorCode.INVALID_IMAGE),
        (lambda: png_length_bomb(0x7FFFFFFF), ErrorCode.INVALID_IMAGE),
        (lambda: header_only_jpeg(), ErrorCode.INVALID_IMAGE),
    ],
    ids=["jpeg-40000-scans", "png-chunk-4GB", "png-chunk-2GB", "jpeg-40MP-header-no-data"],
)
def test_bombs_are_refused_without_decoding(make: Any, code: ErrorCode, decodes: list[int]) -> None:
    error = refused(make())
    assert error.code is code and error.status == 400
    assert decodes == []


@pytest.mark.parametrize(("make", "code"), CAMERA_BOMBS.values(), ids=CAMERA_BOMBS.keys())
def test_camera_sized_limits_refuse_each_bomb_before_decoding(make: Any, code: str, decodes: list[int]) -> None:
    error = refused(make())
    assert error.code.value == code and 400 <= error.status < 500
    assert decodes == []


def test_a_4k_camera_frame_is_within_every_limit(decodes: list[int]) -> None:
    frame = cv2.resize(scene_bgr(640, 360), (3840, 2160), interpolation=cv2.INTER_LINEAR)  # smooth, as upscaled
    raw = encode(frame, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert load_frame(raw).content_type == "image/jpeg" and decodes == [len(raw)]  # downscaled for analysis
    assert 3840 * 2160 <= MAX_PIXELS


def _browser_encodings(bgr: np.ndarray) -> list[tuple[bytes, str]]:
    """A frame as a browser's canvas sends it (JPEG at 0.85 and 0.92, baseline and progressive; RGBA PNG)."""
    encoded = [
        (encode(bgr, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, progressive]), "jpeg")
        for quality in (85, 92)
        for progressive in (0, 1)
    ]
    return [*encoded, (encode(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), ".png"), "png")]


@pytest.mark.skipif(not headturn.available(), reason="../shared/video/headturn.gif is absent (not in the repo)")
def test_real_camera_frames_compress_well_within_the_ratio_bound() -> None:
    """The developers' webcam clip, every frame as a browser encodes it, the clip upscaled to 4K, and the face
    photos: each passes every cost check, at under half the decoded-to-compressed bound (the margin)."""
    frames = headturn.read_frames()
    samples = [sample for bgr in frames for sample in _browser_encodings(bgr)]
    samples += _browser_encodings(cv2.resize(frames[0], (3840, 2160), interpolation=cv2.INTER_CUBIC))
    if DEV_FACES.is_dir():
        samples += [(path.read_bytes(), "jpeg" if path.suffix == ".jpg" else "png") for path in DEV_FACES.glob("*.*g")]
    highest = {"jpeg": 0.0, "png": 0.0}
    for raw, kind in samples:
        layout = inspect_container(raw, f"image/{kind}")
        check_cost(layout, DEFAULT_LIMITS)
        highest[kind] = max(highest[kind], layout.decoded_bytes / layout.end)
    assert len(samples) > 400
    assert highest["jpeg"] < MAX_JPEG_DECODE_RATIO / 2 and highest["png"] < MAX_PNG_DECODE_RATIO / 2, highest


def test_the_bit_depth_and_colour_type_count_before_decoding(decodes: list[int]) -> None:
    """The same picture and size: 8-bit RGBA (a canvas PNG, 7 bytes a pixel decoded) fits a 1 MP budget of
    9 bytes a pixel, 16-bit RGBA (11 bytes a pixel) does not, and is refused without decoding."""
    limits = ImageLimits(max_pixels=1_000_000)
    bgra = cv2.cvtColor(scene_bgr(1000, 1000), cv2.COLOR_BGR2BGRA)
    assert load_frame(encode(bgra, ".png"), limits=limits).width == 1000 and len(decodes) == 1
    with pytest.raises(LivenessError) as raised:
        load_frame(encode(bgra.astype(np.uint16) * 257, ".png"), limits=limits)
    assert raised.value.code is ErrorCode.IMAGE_TOO_COMPLEX and "bit depth" in raised.value.message
    assert len(decodes) == 1


def test_a_file_compressed_beyond_any_camera_frame_is_refused_by_its_ratio(decodes: list[int]) -> None:
    error = refused(flat_png(3000, 3000))
    assert error.code is ErrorCode.IMAGE_TOO_COMPLEX and "at most 64:1" in error.message and decodes == []
    # Under the ratio-free floor, a flat frame (a covered lens) still decodes: it costs little.
    assert load_frame(flat_png(1280, 720)).width == 1280 and len(decodes) == 1


@pytest.mark.parametrize("make", [jpeg_bytes, rgba_png_bytes], ids=["jpeg", "canvas-png"])
def test_a_cameras_zero_padding_is_stripped_and_never_archived(make: Any, decodes: list[int]) -> None:
    image = make()
    padded = image + bytes(16)
    upload = receive_upload(base64.b64encode(padded).decode())
    assert upload.raw == image and upload.sha256 == hashlib.sha256(image).hexdigest()
    assert load_frame(padded).encoded == image and decodes == [len(image)] * 2


@pytest.mark.parametrize(
    "trailer",
    [bytes(MAX_TRAILING_ZEROS + 1), bytes(10) + b"PK\x05\x06", b"\xff\xd9", b"<script>alert(1)</script>"],
    ids=["zeros-over-a-page", "zeros-then-zip-end", "a-second-end-marker", "script"],
)
@pytest.mark.parametrize("make", [jpeg_bytes, png_bytes], ids=["jpeg", "png"])
def test_bytes_after_the_image_end_are_refused(make: Any, trailer: bytes, decodes: list[int]) -> None:
    error = refused(make() + trailer)
    assert error.code is ErrorCode.IMAGE_TRAILING_DATA and f"{len(trailer)} bytes after" in error.message
    assert decodes == []


def test_a_png_end_chunk_that_carries_data_is_refused(decodes: list[int]) -> None:
    raw = png_bytes()[:-12] + png_chunk(b"IEND", zip_archive())
    assert refused(raw).code is ErrorCode.INVALID_IMAGE and decodes == []


def test_a_normal_progressive_jpeg_is_decoded_once(decodes: list[int]) -> None:
    raw = progressive_jpeg(scene_bgr(640, 480), quality=90)
    layout = inspect_container(raw, "image/jpeg")
    assert layout.scans == 10  # libjpeg's standard progressive script for colour
    assert load_frame(raw).width == 640 and decodes == [len(raw)]


def test_the_scan_cap_counts_scans(decodes: list[int]) -> None:
    raw = progressive_jpeg(patterned(320, 240))
    scans = [(start, end) for marker, start, end in jpeg_segments(raw) if marker == 0xDA]
    start, end = min(scans, key=lambda scan: scan[1] - scan[0])
    at_cap = raw[:-2] + raw[start:end] * (MAX_JPEG_SCANS - len(scans)) + b"\xff\xd9"
    assert inspect_container(at_cap, "image/jpeg").scans == MAX_JPEG_SCANS
    over = raw[:-2] + raw[start:end] * (MAX_JPEG_SCANS - len(scans) + 1) + b"\xff\xd9"
    assert refused(over).code is ErrorCode.IMAGE_TOO_COMPLEX and decodes == []


def test_decode_work_is_bounded_by_pixels_times_scans(decodes: list[int]) -> None:
    """Pixels x scans is bounded: 41 scans of a 4000x1000 frame exceed it (40 would just fit)."""
    raw = progressive_jpeg(patterned(4000, 1000))
    base = len([marker for marker, _, _ in jpeg_segments(raw) if marker == 0xDA])
    scans = [(start, end) for marker, start, end in jpeg_segments(raw) if marker == 0xDA]
    start, end = min(scans, key=lambda scan: scan[1] - scan[0])
    heavy = raw[:-2] + raw[start:end] * (41 - base) + b"\xff\xd9"
    error = refused(heavy)
    assert error.code is ErrorCode.IMAGE_TOO_COMPLEX and "41 scans over 4000x1000" in error.message
    assert decodes == []


def _png(width: int, height: int, chunks: list[bytes]) -> bytes:
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return PNG_SIGNATURE + header + b"".join(chunks) + png_chunk(b"IEND", b"")


def _idat(width: int, height: int) -> bytes:
    return png_chunk(b"IDAT", zlib.compress(bytes((1 + 3 * width) * height), 9))


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (_png(640, 480, [png_chunk(b"tEXt", b"x" * 10)] * (MAX_PNG_CHUNKS + 1)), "IMAGE_TOO_COMPLEX", "chunks"),
        (_png(640, 480, [png_chunk(b"zTXt", b"k\0\0" + b"x" * 300_000), _idat(640, 480)]), "IMAGE_TOO_COMPLEX", "KB"),
        (_png(640, 480, [png_chunk(b"acTL", bytes(8)), _idat(640, 480)]), "UNSUPPORTED_MEDIA_TYPE", "Animated"),
        (_png(0, 480, [_idat(640, 480)]), "INVALID_IMAGE", "IHDR"),
        (_png(640, 480, [png_chunk(b"IDAT", zlib.compress(bytes(100)))]), "INVALID_IMAGE", "too little image data"),
        (PNG_SIGNATURE + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b""), "INVALID_IMAGE", "IHDR"),
        (png_bytes()[:-12], "INVALID_IMAGE", "truncated"),
    ],
    ids=["too-many-chunks", "huge-metadata", "animated", "zero-width", "no-data-for-size", "no-ihdr", "no-iend"],
)
def test_png_structure_is_checked_before_decoding(raw: bytes, code: str, fragment: str, decodes: list[int]) -> None:
    error = refused(raw)
    assert error.code.value == code and fragment in error.message
    assert decodes == []


def test_a_flat_png_at_deflates_best_ratio_is_still_accepted() -> None:
    """The plausibility bound is deflate's own limit (1032:1), so even the flattest real image passes."""
    flat = cv2.imencode(".png", np.zeros((480, 640, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
    assert load_frame(flat).width == 640


@pytest.mark.parametrize("marker", [0xC3, 0xC9, 0xCA, 0xC5])
def test_lossless_arithmetic_and_hierarchical_jpegs_are_refused(marker: int, decodes: list[int]) -> None:
    raw = jpeg_bytes()
    sof = next(start for found, start, _ in jpeg_segments(raw) if found == 0xC0)
    error = refused(raw[: sof + 1] + bytes([marker]) + raw[sof + 2 :])
    assert error.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE and decodes == []


@pytest.mark.parametrize("progressive", [False, True])
def test_every_cut_of_a_jpeg_with_its_end_marker_put_back_is_refused(progressive: bool) -> None:
    """Truncated means: the entropy-coded data ends before every block of every scan is decoded. libjpeg
    notices it (and warns); before, 87 of 100 such cuts of a 640x480 face passed."""
    raw = cv2.imencode(".jpg", scene_bgr(640, 480), [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])[1].tobytes()
    assert load_frame(raw).width == 640
    accepted = []
    for percent in range(1, 100):
        cut = raw[: len(raw) * percent // 100] + b"\xff\xd9"
        try:
            load_frame(cut)
            accepted.append(percent)
        except LivenessError as error:
            assert error.code is ErrorCode.INVALID_IMAGE
    assert accepted == []


def test_other_output_on_stderr_during_a_decode_does_not_refuse_a_good_jpeg() -> None:
    """Other threads write to stderr while a JPEG decodes (the local server logs every request there): only
    libjpeg's own warnings refuse the file. Many decodes run while another thread logs without pause."""
    import os
    import threading

    raw = jpeg_bytes()
    stop = threading.Event()

    def log_lines() -> None:
        while not stop.is_set():
            os.write(2, b"127.0.0.1 - - POST /detect 200 (a log line from another thread)\n")

    writer = threading.Thread(target=log_lines)
    writer.start()
    try:
        widths = [load_frame(raw).width for _ in range(50)]
    finally:
        stop.set()
        writer.join()
    assert widths == [640] * 50


def test_a_grey_background_is_not_mistaken_for_missing_data() -> None:
    """Missing JPEG blocks decode as mid-grey; a real mid-grey picture is complete and accepted."""
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[100:300, 200:400] = scene_bgr(200, 200)
    for progressive in (0, 1):
        raw = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive])[1].tobytes()
        assert load_frame(raw).width == 640


_CHILD = r"""
import json, resource, sys
from testkit.bombs import flat_png, header_only_jpeg, png_length_bomb, scan_bomb
from testkit.images import jpeg_bytes
from liveness.errors import LivenessError
from liveness.images.intake import load_frame
bombs = {"scan": scan_bomb(), "png4g": png_length_bomb(0xFFFFFFFF), "png2g": png_length_bomb(0x7FFFFFFF),
         "header": header_only_jpeg(), "png1bit": flat_png(6000, 6600, depth=1, colour=0),
         "png16": flat_png(3000, 3000, depth=16, colour=6)}
normal = jpeg_bytes()
load_frame(normal)  # warm up: the decoder's own buffers are not the bombs' cost
with open("/proc/self/status") as status:
    vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
# 128 MB of address space and 5 s of CPU beyond what the process holds: a 4 GB chunk, a 40 MP raster or
# minutes of scans cannot fit.
resource.setrlimit(resource.RLIMIT_AS, (vm + 128 * 2**20, vm + 128 * 2**20))
used = resource.getrusage(resource.RUSAGE_SELF)
resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime) + 5,) * 2)
answers = {}
for name, raw in bombs.items():
    try:
        load_frame(raw)
        answers[name] = "accepted"
    except LivenessError as error:
        answers[name] = error.code.value
    answers[name + "-then-normal"] = load_frame(normal).width
after = resource.getrusage(resource.RUSAGE_SELF)
answers["cpu_seconds"] = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
answers["maxrss_growth_mb"] = (after.ru_maxrss - used.ru_maxrss) / 1024
print(json.dumps(answers))
"""


def test_bombs_fit_in_tight_cpu_and_memory_limits_while_normal_frames_keep_working() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=ROOT,  # the child imports the bombs (package testkit) from the repository root
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout)
    assert answers["scan"] == "IMAGE_TOO_COMPLEX"
    assert answers["png4g"] == answers["png2g"] == answers["header"] == "INVALID_IMAGE"
    assert answers["png1bit"] == "PAYLOAD_TOO_LARGE" and answers["png16"] == "IMAGE_TOO_COMPLEX"
    names = ("scan", "png4g", "png2g", "header", "png1bit", "png16")
    assert all(answers[f"{name}-then-normal"] == 640 for name in names)
    assert answers["maxrss_growth_mb"] < 64
