"""The web client (web/) from the local front's origin, with the deployed site's security headers.

A file is served only if its resolved path (symlinks followed, ``..`` collapsed) is a regular file inside
web/: a symlink pointing out of web/ is as missing as a file that does not exist. ``/config.json`` is the
page's runtime configuration: the stack writes it at deploy time; locally it says "this origin, no sign-in".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liveness import web_security
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from .gateway import GatewayError

LOCAL_CONFIG_NAME = "config.json"
# The web client's runtime configuration in local mode: the API on the same origin, no sign-in.
LOCAL_WEB_CONFIG: dict[str, Any] = {"apiUrl": "", "mode": "local"}
NAME_MAX_BYTES = 255  # the longest file name the common file systems allow

# What CloudFront's response-headers policy adds to every file of the deployed site, less HSTS (this is plain
# HTTP on localhost, where browsers ignore it). connect-src 'self': the API is on this origin.
SECURITY_HEADERS = (
    ("Content-Security-Policy", web_security.content_security_policy("", "")),
    ("X-Content-Type-Options", web_security.CONTENT_TYPE_OPTIONS),
    ("X-Frame-Options", web_security.FRAME_OPTIONS),
    ("Referrer-Policy", web_security.REFERRER_POLICY),
)


def path_not_found() -> GatewayError:
    # A path no file could have (a segment longer than a file name may be): never a route, never a file.
    return GatewayError(404, "NOT_FOUND", "Not Found")


class StaticFiles:
    def __init__(self, web_dir: Path) -> None:
        self.root = web_dir.resolve()

    def response(self, request: Request) -> Response | None:
        """The file ``request.path`` names, or None when web/ has no such file."""
        relative = request.path.lstrip("/")
        if any(len(segment.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES for segment in relative.split("/")):
            raise path_not_found()
        if relative == LOCAL_CONFIG_NAME and self._resolve(relative) is None:
            body = json.dumps(LOCAL_WEB_CONFIG).encode("utf-8")
            return _secured(Response(body, status=200, headers={"Content-Type": "application/json"}), no_store=True)
        path = self._resolve(relative)
        if path is not None and path.is_dir():
            path = self._resolve(f"{relative.rstrip('/')}/index.html".lstrip("/"))
        if path is None or not path.is_file():
            return None
        return _secured(send_file(path, request.environ), no_store=False)

    def _resolve(self, relative: str) -> Path | None:
        """The real path inside web/, or None if there is none (missing, outside, or not a valid name)."""
        try:
            path = (self.root / relative).resolve(strict=True)
        except (OSError, ValueError, RuntimeError):  # missing, too long, a NUL byte, a symlink loop
            return None
        return path if path.is_relative_to(self.root) else None


def _secured(response: Response, *, no_store: bool) -> Response:
    for name, value in SECURITY_HEADERS:
        response.headers[name] = value
    if no_store:
        response.headers["Cache-Control"] = "no-store"
    return response
