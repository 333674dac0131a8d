"""The collaborators every route receives: settings, analyzer, archive, session store and clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .archive import Archive
from .faces import Analyzer
from .images.limits import ImageLimits
from .sessions.store import SessionStore
from .settings import Settings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Dependencies:
    settings: Settings
    analyzer: Analyzer
    archive: Archive
    session_store: SessionStore
    clock: Clock = utc_now
    # The embedded analyzer refusing clear misses before Rekognition (sessions/prescreen.py); None: off.
    prescreen: Analyzer | None = None

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_upload_bytes=self.settings.max_upload_bytes, max_pixels=self.settings.max_image_pixels)
