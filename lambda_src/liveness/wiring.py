"""The composition root: builds the runtime's ``Dependencies`` from settings (which analyzer, which storage).

The routes receive a ``Dependencies``; tests and the local server pass their own.
"""

from __future__ import annotations

from typing import Any

from .archive import Archive, FileArchive, S3Archive
from .dependencies import Dependencies
from .faces import Analyzer
from .sessions.store import DynamoDbSessionStore, FileSessionStore, SessionStore
from .settings import Settings


def build_analyzer(settings: Settings, aws: Any = None) -> Analyzer:
    """``aws``: the boto3 session the clients come from (default: boto3's default session)."""
    if settings.analyzer == "local":
        from .analyzers.mesh import MeshAnalyzer  # imported lazily: only local mode needs the models

        return MeshAnalyzer()
    if settings.analyzer == "rekognition":
        from .analyzers.rekognition import CLIENT_CONFIG, RekognitionAnalyzer

        return RekognitionAnalyzer(_aws(aws).client("rekognition", config=CLIENT_CONFIG))
    raise ValueError(f"ANALYZER must be 'rekognition' or 'local', not {settings.analyzer!r}")


def build_prescreen(settings: Settings, analyzer: Analyzer) -> Analyzer | None:
    """The embedded analyzer in front of Rekognition (PRESCREEN=on); none in local mode, where it judges alone."""
    if not settings.prescreen or analyzer.name != "rekognition":
        return None
    from .analyzers.mesh import MeshAnalyzer

    return MeshAnalyzer()


def build_archive(settings: Settings, aws: Any = None) -> Archive:
    if settings.storage == "file":
        return FileArchive(settings.data_dir / "archive")
    return S3Archive(_aws(aws).client("s3"), settings.archive_bucket)


def build_session_store(settings: Settings, aws: Any = None) -> SessionStore:
    if settings.storage == "file":
        return FileSessionStore(settings.data_dir / "sessions")
    return DynamoDbSessionStore(_aws(aws).client("dynamodb"), settings.sessions_table)


def build_dependencies(
    settings: Settings, *, aws: Any = None, analyzer: Analyzer | None = None, prescreen: Analyzer | None = None
) -> Dependencies:
    """``analyzer``, ``prescreen``: keep these (an embedded analyzer with its models loaded) instead of building
    others."""
    analyzer = analyzer or build_analyzer(settings, aws)
    return Dependencies(
        settings=settings,
        analyzer=analyzer,
        archive=build_archive(settings, aws),
        session_store=build_session_store(settings, aws),
        prescreen=prescreen or build_prescreen(settings, analyzer),
    )


def fresh_aws_session(like: Any = None) -> Any:
    """A boto3 session that resolves its credentials afresh and opens its own connections. It shares the
    service models already loaded by ``like`` (a boto3 session), so building its clients reads no JSON again."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    previous = (like or boto3.DEFAULT_SESSION or boto3.Session())._session
    core.register_component("data_loader", previous.get_component("data_loader"))
    return boto3.Session(botocore_session=core)


def _aws(session: Any) -> Any:
    if session is not None:
        return session
    import boto3

    return boto3
