"""The ingest decision, free of HTTP and Kafka: verify, parse, check freshness, build the
record. The view calls this, then publishes the record it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from webhook.events import EventError, Notification, parse_notification
from webhook.freshness import check_fresh
from webhook.records import Record, event_record, quarantine_record
from webhook.settings import TopicNames
from webhook.signature import HeaderSource, SignatureMatch, verify


@dataclass(frozen=True, slots=True)
class Accepted:
    record: Record
    notification: Notification
    match: SignatureMatch


@dataclass(frozen=True, slots=True)
class Quarantined:
    record: Record
    reason: str
    match: SignatureMatch


def ingest(
    body: bytes,
    headers: HeaderSource,
    secrets: Sequence[str],
    topics: TopicNames,
    now_ms: int,
    freshness_tolerance_ms: int = 0,
) -> Accepted | Quarantined:
    """Decide what to publish for one callback.

    Raises ``SignatureError`` (nothing may be published) and ``StaleNotification`` (signed,
    but outside the replay window). A signed body that is not a valid envelope is quarantined:
    NCS retrying it cannot fix it, and dropping it would lose it.
    """
    match = verify(body, headers, secrets)
    try:
        notification = parse_notification(body)
    except EventError as exc:
        return Quarantined(
            quarantine_record(topics.quarantine, body, str(exc), now_ms), str(exc), match
        )
    check_fresh(notification.notify_ms, now_ms, freshness_tolerance_ms)
    record = event_record(topics.events, body, notification, now_ms, match.header)
    return Accepted(record, notification, match)
