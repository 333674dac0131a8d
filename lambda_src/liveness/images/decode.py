"""Strict decoding to BGR, the dimension checks, and the fit of a frame for the analyzer."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from typing import Any

import cv2
import numpy as np

from ..errors import ErrorCode, LivenessError
from ..faces import Frame
from .container import ContainerLayout
from .crop import encode_jpeg
from .limits import MIN_SIDE_PX, REKOGNITION_MAX_BYTES, ImageLimits, too_large


def decode_frame(raw: bytes, layout: ContainerLayout, content_type: str, limits: ImageLimits) -> Frame:
    """Decode a walked container to 3-channel BGR, then fit it for analysis."""
    bgr = _decode_bgr(raw) if layout.jpeg is None else _decode_jpeg_strictly(raw)
    return fit_for_analysis(Frame(bgr=bgr, encoded=raw, content_type=content_type), limits)


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width < MIN_SIDE_PX or height < MIN_SIDE_PX:
        raise LivenessError(
            ErrorCode.IMAGE_TOO_SMALL, f"The image is {width}x{height}; at least {MIN_SIDE_PX}x{MIN_SIDE_PX} is needed."
        )
    if width * height > limits.max_pixels:
        raise LivenessError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The image is {width}x{height}; at most {limits.max_pixels / 1e6:g} megapixels (a camera frame) "
            "are accepted.",
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


def fit_for_analysis(frame: Frame, limits: ImageLimits) -> Frame:
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
        raise too_large(limits)
    return Frame(bgr=bgr, encoded=encoded, content_type="image/jpeg")
