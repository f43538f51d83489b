"""Pure mapping from a verified callback to the Kafka records we publish.

The events-topic record is the public contract for downstream teams: value = the body bytes
exactly as NCS sent them; key = ``payload.cname`` so one channel's sessions (restarts too)
stay ordered on one partition; headers describe the event without parsing the value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from webhook.events import Notification
from webhook.settings import SCHEMA_VERSION

HEADER_NOTICE_ID = "noticeId"
HEADER_PRODUCT_ID = "productId"
HEADER_EVENT_TYPE = "eventType"
HEADER_SID = "sid"
HEADER_RECEIVED_AT = "received-at"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_QUARANTINE_REASON = "quarantine-reason"
HEADER_SIGNATURE_HEADER = "verified-by"


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        return next((v.decode() for k, v in self.headers if k == name), None)


def event_record(
    topic: str, body: bytes, notification: Notification, received_at_ms: int, verified_by: str
) -> Record:
    """The record for a valid callback; unknown event types are published the same way."""
    payload = notification.payload
    headers: list[tuple[str, bytes]] = [
        (HEADER_NOTICE_ID, notification.notice_id.encode()),
        (HEADER_PRODUCT_ID, str(notification.product_id).encode()),
        (HEADER_EVENT_TYPE, str(notification.event_type).encode()),
    ]
    if payload.sid:
        headers.append((HEADER_SID, payload.sid.encode()))
    headers += [
        (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
        (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
        (HEADER_SIGNATURE_HEADER, verified_by.encode()),
    ]
    key = payload.cname.encode() if payload.cname else None
    return Record(topic=topic, key=key, value=body, headers=tuple(headers))


def quarantine_record(topic: str, body: bytes, reason: str, received_at_ms: int) -> Record:
    """A signed body we cannot parse: kept byte for byte, with the parse error as a header."""
    return Record(
        topic=topic,
        key=None,
        value=body,
        headers=(
            (HEADER_QUARANTINE_REASON, reason[:1000].encode()),
            (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
            (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
        ),
    )


def pointer_record(topic: str, record: Record, reason: str, received_at_ms: int) -> Record:
    """What the quarantine topic gets for a record that can never be published (too large
    for the topic): its size, digest, destination and headers, never its body."""
    value = {
        "reason": reason[:1000],
        "topic": record.topic,
        "key": record.key.decode(errors="replace") if record.key is not None else None,
        "sizeBytes": len(record.value),
        "sha256": hashlib.sha256(record.value).hexdigest(),
        "headers": {name: v.decode(errors="replace") for name, v in record.headers},
    }
    carried = tuple(
        (name, v) for name, v in record.headers if name in (HEADER_NOTICE_ID, HEADER_EVENT_TYPE)
    )
    return Record(
        topic=topic,
        key=None,
        value=json.dumps(value, separators=(",", ":")).encode(),
        headers=(
            (HEADER_QUARANTINE_REASON, reason[:1000].encode()),
            (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
            (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
            *carried,
        ),
    )
