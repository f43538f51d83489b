"""The ingest decision, free of HTTP and Kafka: verify, parse, check freshness, build the
record. The view calls this, then publishes the record it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from webhook.dedup import body_key, notice_key
from webhook.freshness import check_fresh, loose_notify_ms
from webhook.shared.event_records import Record, event_record, quarantine_record
from webhook.shared.events import EventError, Notification, parse_notification
from webhook.shared.kafka_settings import TopicNames
from webhook.shared.signature import HeaderSource, SignatureMatch, verify


@dataclass(frozen=True, slots=True)
class Accepted:
    record: Record
    notification: Notification
    match: SignatureMatch
    replay_key: str  # see webhook.dedup


@dataclass(frozen=True, slots=True)
class Quarantined:
    record: Record
    reason: str
    match: SignatureMatch
    replay_key: str


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
    NCS retrying it cannot fix it, and dropping it would lose it. Such a body is still held
    to the freshness window when it carries an integer ``notifyMs``.
    """
    match = verify(body, headers, secrets)
    try:
        notification = parse_notification(body)
    except EventError as exc:
        loose_ms = loose_notify_ms(body)
        if loose_ms is not None:
            check_fresh(loose_ms, now_ms, freshness_tolerance_ms)
        return Quarantined(
            quarantine_record(topics.quarantine, body, str(exc), now_ms),
            str(exc),
            match,
            body_key(body),
        )
    check_fresh(notification.notify_ms, now_ms, freshness_tolerance_ms)
    record = event_record(topics.events, body, notification, now_ms, match.header)
    key = notice_key(
        str(notification.notice_id),
        notification.event_type,
        notification.payload.model_dump(mode="json", by_alias=True),
    )
    return Accepted(record, notification, match, key)
