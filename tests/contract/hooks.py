"""Schemathesis hooks for the contract run (SCHEMATHESIS_HOOKS=tests.contract.hooks).

Generated base64 is never a photo, so alone the run would only ever see an image refused. A third of the image
fields of the right form (chosen by the generated value, so a seed still decides everything) become a real
photo (scikit-image's astronaut), and the run also checks what a face gets: /detect's 200 and a judged frame.
"""

from __future__ import annotations

import base64
import re
import zlib
from functools import cache
from typing import Any

import cv2
import schemathesis
from liveness.openapi import IMAGE_PATTERN
from skimage import data

# The operations whose body carries one image field, by Schemathesis' label.
IMAGE_FIELDS = {"POST /detect": "image_bytes", "POST /sessions/{id}/frames": "image"}


@cache
def photo_data_url() -> str:
    bgr = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    encoded, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert encoded
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    field = IMAGE_FIELDS.get(context.operation.label) if context.operation is not None else None
    if field is None or not isinstance(body, dict):
        return body
    value = body.get(field)
    # Only a value of the documented form: a case that breaks the image field on purpose keeps its fault.
    if isinstance(value, str) and re.search(IMAGE_PATTERN, value) and zlib.crc32(value.encode()) % 3 == 0:
        return {**body, field: photo_data_url()}
    return body
