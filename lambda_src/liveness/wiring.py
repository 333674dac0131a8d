"""Builds the runtime's collaborators from settings: which analyzer, which storage, which clock.

The routes receive a ``Dependencies``; tests and the local server pass their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .archive import Archive, FileArchive, S3Archive
from .faces import Analyzer
from .images import ImageLimits
from .sessions.store import DynamoDbSessionStore, FileSessionStore, SessionStore
from .settings import Settings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Dependencies:
    settings: Settings
    analyzer: Analyzer
    archive: Archive
    clock: Clock = utc_now
    # Required by the session routes, and build_dependencies always sets it. The None default exists only for
    # callers that never reach a session route (the /detect tests, the benchmark, listing the routes).
    session_store: SessionStore | None = None

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_upload_bytes=self.settings.max_upload_bytes)


def build_analyzer(settings: Settings) -> Analyzer:
    if settings.analyzer == "local":
        from .analyzers.mesh import MeshAnalyzer  # imported lazily: only local mode needs the models

        return MeshAnalyzer()
    if settings.analyzer == "rekognition":
        import boto3

        from .analyzers.rekognition import CLIENT_CONFIG, RekognitionAnalyzer

        return RekognitionAnalyzer(boto3.client("rekognition", config=CLIENT_CONFIG))
    raise ValueError(f"ANALYZER must be 'rekognition' or 'local', not {settings.analyzer!r}")


def build_archive(settings: Settings) -> Archive:
    if settings.storage == "file":
        return FileArchive(settings.data_dir / "archive")
    import boto3

    return S3Archive(boto3.client("s3"), settings.archive_bucket)


def build_session_store(settings: Settings) -> SessionStore:
    if settings.storage == "file":
        return FileSessionStore(settings.data_dir / "sessions")
    import boto3

    return DynamoDbSessionStore(boto3.client("dynamodb"), settings.sessions_table)


def build_dependencies(settings: Settings) -> Dependencies:
    return Dependencies(
        settings=settings,
        analyzer=build_analyzer(settings),
        archive=build_archive(settings),
        session_store=build_session_store(settings),
    )
