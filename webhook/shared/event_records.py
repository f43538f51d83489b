"""Pure mapping from a verified callback to the Kafka records we publish.

The events-topic record is the public contract for downstream teams: value = the body bytes
exactly as NCS sent them; key = ``payload.cname`` so one channel's sessions (restarts too)
stay ordered on one partition; headers describe the event without parsing the value.

The same record is a CloudEvent in Kafka binary content mode (CloudEvents 1.0 Kafka protocol
binding): ``ce_specversion``, ``ce_id`` (noticeId), ``ce_type``, ``ce_source``, ``ce_time``
and ``content-type`` sit next to our own headers, so Knative, Dapr and the CloudEvents SDKs
read it without knowing NCS; the value is the data, unchanged.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from webhook.shared.events import Notification

SCHEMA_VERSION: Final = "1"
"""Version of every record this project writes (``schema-version`` header, ``schema_version``
field): a breaking change to any record shape bumps it. The recording registry versions its
records on its own (:data:`handlers.recording.schema.SESSION_SCHEMA_VERSION`)."""

HEADER_NOTICE_ID = "noticeId"
HEADER_PRODUCT_ID = "productId"
HEADER_EVENT_TYPE = "eventType"
HEADER_SID = "sid"
HEADER_RECEIVED_AT = "received-at"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_QUARANTINE_REASON = "quarantine-reason"
HEADER_SIGNATURE_HEADER = "verified-by"

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_TYPE = "ce_type"
CE_SOURCE = "ce_source"
CE_TIME = "ce_time"
CONTENT_TYPE = "content-type"
CE_TYPE_PREFIX = "io.agora.ncs."
"""``ce_type`` = this prefix + ``<productId>.<eventType>``, e.g. ``io.agora.ncs.3.11``
(known for every event, unknown types included)."""
CE_SOURCE_NCS = "/agora/ncs"
CE_SOURCE_SYNTHETIC = "/agora-events/reconciler"
VERIFIED_SYNTHETIC = "synthetic"
"""``verified-by`` of callbacks the service writes itself (the reconciler)."""


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
        *cloudevent_headers(notification, verified_by),
    ]
    key = payload.cname.encode() if payload.cname else None
    return Record(topic=topic, key=key, value=body, headers=tuple(headers))


def cloudevent_headers(
    notification: Notification, verified_by: str
) -> list[tuple[str, bytes]]:
    """The CloudEvents binary-mode attributes of an events-topic record.

    ``ce_time`` is ``notifyMs`` (when NCS sent the notification), RFC 3339 UTC with
    milliseconds. ``ce_source`` says who produced it: NCS, or our reconciler.
    """
    source = CE_SOURCE_SYNTHETIC if verified_by == VERIFIED_SYNTHETIC else CE_SOURCE_NCS
    headers = [
        (CE_SPECVERSION, b"1.0"),
        (CE_ID, notification.notice_id.encode()),
        (CE_TYPE, f"{CE_TYPE_PREFIX}{notification.product_id}.{notification.event_type}"
         .encode()),
        (CE_SOURCE, source.encode()),
    ]
    sent = _rfc3339(notification.notify_ms)
    if sent is not None:
        headers.append((CE_TIME, sent.encode()))
    headers.append((CONTENT_TYPE, b"application/json"))
    return headers


_YEAR_1_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
_YEAR_10000_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z


def _rfc3339(ms: int) -> str | None:
    """``ms`` as RFC 3339 UTC text; ``None`` outside the years 1-9999 (``ce_time`` is
    optional: a nonsense notifyMs must not stop the event from being published).

    Integer arithmetic and ``time.gmtime``: half the cost of a ``datetime`` per callback,
    and exact to the millisecond at any size (a float division is not)."""
    if not _YEAR_1_MS <= ms < _YEAR_10000_MS:
        return None
    seconds, millis = divmod(ms, 1000)
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


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


class QuarantinePointer(BaseModel):
    """The value of a quarantine record standing for a record the topic can never take (too
    large, invalid): where it was going and how to recognise it, never its body."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True,
        title="agora.ncs.quarantine pointer",
    )

    reason: str = Field(max_length=1000, description="Why the broker refused the record.")
    topic: str = Field(description="The topic the record was meant for.")
    key: str | None = Field(description="Its key (UTF-8, undecodable bytes replaced).")
    size_bytes: int = Field(alias="sizeBytes", ge=0, description="Size of its value.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of its value, hex.")
    headers: dict[str, str] = Field(description="Its headers (noticeId, eventType, ...).")


def pointer_record(topic: str, record: Record, reason: str, received_at_ms: int) -> Record:
    """What the quarantine topic gets for a record that can never be published (too large
    for the topic): a :class:`QuarantinePointer`, JSON (``content-type`` says so, which the
    raw bodies quarantined by :func:`quarantine_record` do not carry)."""
    pointer = QuarantinePointer(
        reason=reason[:1000],
        topic=record.topic,
        key=record.key.decode(errors="replace") if record.key is not None else None,
        size_bytes=len(record.value),
        sha256=hashlib.sha256(record.value).hexdigest(),
        headers={name: v.decode(errors="replace") for name, v in record.headers},
    )
    carried = tuple(
        (name, v) for name, v in record.headers if name in (HEADER_NOTICE_ID, HEADER_EVENT_TYPE)
    )
    return Record(
        topic=topic,
        key=None,
        value=pointer.model_dump_json(by_alias=True).encode(),
        headers=(
            (HEADER_QUARANTINE_REASON, reason[:1000].encode()),
            (HEADER_RECEIVED_AT, str(received_at_ms).encode()),
            (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
            (CONTENT_TYPE, b"application/json"),
            *carried,
        ),
    )
