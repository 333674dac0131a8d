"""Audits sessions nobody finished: DynamoDB's TTL deletes the item, and its stream brings the old image here.
The event source, permissions, metrics and failure contract: see the docs (session expiry).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from .archive import Archive
from .challenges import Thresholds
from .constants import METRICS_NAMESPACE
from .dependencies import Clock, utc_now
from .sessions.audit import write_audit
from .sessions.repair import settle_abandoned
from .sessions.store import ATTEMPTS_KEY_PREFIX, session_from_item
from .sessions.transitions import close_if_due
from .settings import Settings
from .wiring import build_archive

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

logger = Logger(service="liveness")  # old images hold no image data, and are never logged anyway
# Always answer with the failed items, even when all failed: the same contract for every batch.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


@dataclass(frozen=True)
class ExpiryRuntime:
    archive: Archive
    thresholds: Thresholds  # written into the audit record, as the API writes the ones in force
    clock: Clock = utc_now


_runtime: ExpiryRuntime | None = None


def use_runtime(runtime: ExpiryRuntime | None) -> None:
    """Swap the collaborators (tests); None rebuilds them from the environment on the next event."""
    global _runtime
    _runtime = runtime


def _current_runtime() -> ExpiryRuntime:
    global _runtime
    if _runtime is None:
        settings = Settings.from_env()
        _runtime = ExpiryRuntime(archive=build_archive(settings), thresholds=settings.thresholds)
    return _runtime


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", "") or "ttl-expiry"
    handle = functools.partial(audit_removed_session, runtime=_current_runtime(), request_id=request_id)
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)


def is_ttl_removal(record: DynamoDBRecord) -> bool:
    identity = record.user_identity
    return record.event_name is DynamoDBRecordEventName.REMOVE and all(
        identity.get(key) == value for key, value in TTL_IDENTITY.items()
    )


def audit_removed_session(record: DynamoDBRecord, *, runtime: ExpiryRuntime, request_id: str) -> None:
    """One stream record. Raises (and so lands in batchItemFailures) when the audit record cannot be written."""
    if not is_ttl_removal(record):
        logger.info("Stream record ignored", extra={"eventName": record.get("eventName"), "eventId": record.event_id})
        return
    keys = record.dynamodb.keys if record.dynamodb else None
    if str((keys or {}).get("sessionId", "")).startswith(ATTEMPTS_KEY_PREFIX):
        logger.info("Attempt record expired", extra={"eventId": record.event_id})  # a user's, not a session
        return
    old_image = record.dynamodb.old_image if record.dynamodb else {}
    if not old_image:  # a stream without old images cannot be audited: fail loudly, the record goes to the DLQ
        raise ValueError("a TTL removal without OldImage: the stream view type must include old images")
    try:
        session = session_from_item(old_image)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        keys = record.dynamodb.keys if record.dynamodb else None
        logger.error(
            "Malformed session item skipped",
            extra={
                "sessionId": (keys or {}).get("sessionId"),
                "eventId": record.event_id,
                "error": type(error).__name__,
            },
        )
        _count("ExpiryRecordsSkipped")
        return
    if session.audit_written:
        logger.info("Expired session already audited", extra={"sessionId": session.session_id})
        return
    closed = close_if_due(session, session.expires_at)  # at its deadline, as if read late: EXPIRED if still open
    # A day after expiry, a frame slot still unsettled belongs to a request that died: log it as NOT_JUDGED.
    closed = settle_abandoned(closed, closed.closed_at or session.expires_at)
    try:
        written = write_audit(
            runtime.archive, closed, thresholds=runtime.thresholds, request_id=request_id, written_at=runtime.clock()
        )
    except Exception as error:
        logger.warning(
            "Expired session not audited", extra={"sessionId": session.session_id, "error": type(error).__name__}
        )
        _count("ExpiryAuditFailures")
        raise
    logger.info(
        "Expired session audited",
        extra={"sessionId": session.session_id, "status": closed.status.value, "written": written},
    )
    if session.is_open and written:  # this call closed it and wrote its record: not a redelivery
        with single_metric(
            name="SessionsClosed", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
        ) as metric:
            metric.add_dimension(name="status", value=closed.status.value)


def _count(name: str) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE):
        pass
