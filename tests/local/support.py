"""Helpers for the local-mode tests: a small HTTP client over http.client and real encoded images."""

from __future__ import annotations

import base64
import http.client
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

ALLOWED_ORIGIN = "http://app.example.test"
OTHER_ALLOWED_ORIGIN = "http://localhost:3000"
DISALLOWED_ORIGIN = "http://evil.example.test"
ALLOWED_ORIGINS = f"{ALLOWED_ORIGIN},{OTHER_ALLOWED_ORIGIN}"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.raw)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def call(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    user: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Reply:
    """One request on a fresh connection. ``body`` is sent as JSON; ``raw`` as given."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    sent_headers = {"Content-Type": "application/json"} if body is not None or raw is not None else {}
    if user is not None:
        sent_headers["X-Local-User"] = user
    sent_headers.update(headers or {})
    payload = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
    try:
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        return Reply(status=response.status, headers=response.headers, raw=response.read())
    finally:
        connection.close()


def jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def data_url(image: bytes, media_type: str = "image/jpeg") -> str:
    return f"data:{media_type};base64,{base64.b64encode(image).decode('ascii')}"


def astronaut_bgr() -> np.ndarray:
    """A real face shipped by a dev dependency (scikit-image; public domain, NASA). RGB -> BGR for OpenCV."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def neutral_astronaut_bgr() -> np.ndarray:
    """The same photograph with the mouth corners pulled in by a smooth local warp, so the embedded analyzer reads
    a neutral face (smile confidence about 51, under the 80 that counts) that can answer the neutral start; the
    original smiles (98) and is refused there."""
    image = astronaut_bgr()
    centre_x, centre_y, radius_x, radius_y, pull = 223.0, 146.0, 55.0, 28.0, 0.6  # around the mouth
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    weight = np.clip(1 - ((xs - centre_x) / radius_x) ** 2 - ((ys - centre_y) / radius_y) ** 2, 0, 1) ** 2
    map_x = xs + pull * (xs - centre_x) * weight  # sample further out: the mouth narrows
    map_y = ys + 0.25 * (ys - centre_y) * weight  # and the lips close a little
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR)


def blank_bgr(width: int = 640, height: int = 480) -> np.ndarray:
    return np.full((height, width, 3), 128, dtype=np.uint8)


def is_jpeg(raw: bytes) -> bool:
    return raw.startswith(b"\xff\xd8\xff") and cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR) is not None


def registered_routes() -> set[tuple[str, str]]:
    """(method, resource) pairs the handler's Powertools resolver serves, with "<name>" written "{}"."""
    import re

    from liveness.dependencies import Dependencies
    from liveness.handler import create_app
    from liveness.sessions.store import FileSessionStore
    from liveness.settings import Settings

    with tempfile.TemporaryDirectory() as root:
        store = FileSessionStore(Path(root) / "sessions")
        app = create_app(Dependencies(settings=Settings(), analyzer=None, archive=None, session_store=store))  # type: ignore[arg-type]
    routes = app._static_routes + app._dynamic_routes  # no public listing short of the OpenAPI generator
    return {(route.method, re.sub(r"<[^>]+>", "{}", route.path)) for route in routes}


def template(resource: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "{}", resource)
