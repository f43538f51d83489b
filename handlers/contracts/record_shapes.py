"""The Kafka headers of every record the service writes.

Record values are described by their producers' models only (see the module map in
docs/architecture.md); two of them are re-exported here because the contracts name every
record model: the whiteboard capture (:class:`handlers.whiteboard.models.ScreenshotsRecord`)
and the open action report (:class:`handlers.reports.ActionReport`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from handlers.recording.reconciler import SYNTHETIC_HEADER, SYNTHETIC_SOURCE
from handlers.reports import (
    OUTCOME_RECORD,
    RECORD_TYPE_HEADER,
    REPORT_RECORD,
)
from handlers.reports import (
    ActionReport as ActionReport,  # re-exported: the contracts name every record model
)
from handlers.runtime import dlq
from handlers.whiteboard.models import (
    ScreenshotsRecord as ScreenshotsRecord,  # re-exported: the contracts name every record model
)
from webhook.shared import event_records as records
from webhook.shared.event_records import SCHEMA_VERSION

# --- headers ---------------------------------------------------------------------------------

HeaderFormat = Literal["text", "integer", "version", "timestamp"]


@dataclass(frozen=True, slots=True)
class Header:
    """One Kafka header: UTF-8 text on the wire; ``format`` narrows what the text holds."""

    name: str
    description: str
    required: bool = True
    format: HeaderFormat = "text"
    const: str | None = None
    pattern: str | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "description": self.description}
        if self.format == "integer":
            schema["pattern"] = "^-?[0-9]+$"
        elif self.format == "version":
            schema["const"] = SCHEMA_VERSION
        elif self.format == "timestamp":
            schema["format"] = "date-time"
            schema["pattern"] = _RFC3339
        if self.const is not None:
            schema["const"] = self.const
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        return schema


# RFC 3339 date-time as text (a pattern, since "format" only annotates in JSON Schema 2020-12).
_RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)


# W3C Trace Context, on every record written while tracing is on (webhook/shared/tracing.py).
TRACE_HEADERS = (
    Header(
        "traceparent",
        "W3C traceparent of the span that wrote the record (only when tracing is on): "
        "continue the trace from it.",
        required=False,
        pattern="^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
    ),
    Header("tracestate", "W3C tracestate that goes with traceparent, if any.", required=False),
)


def headers_schema(headers: tuple[Header, ...], *, open_ended: bool = False) -> dict[str, Any]:
    """The AsyncAPI ``headers`` schema of a message: an object of string values. The trace
    context headers are allowed on every message."""
    names = {h.name for h in headers}
    every = (*headers, *(h for h in TRACE_HEADERS if h.name not in names))
    return {
        "type": "object",
        "properties": {h.name: h.schema() for h in every},
        "required": [h.name for h in every if h.required],
        "additionalProperties": open_ended,
    }


SCHEMA_VERSION_HEADER = Header(
    records.HEADER_SCHEMA_VERSION, "Version of the value's schema.", format="version"
)
REPLAY_HEADERS = (
    Header(
        dlq.REPLAYED_FROM,
        "Only on a dead letter replayed by `agora-events dlq replay`: "
        "<dlq topic>/<partition>/<offset> it was copied from.",
        required=False,
    ),
    Header(
        dlq.REPLAY_FOR,
        "Only on a replay: the one handler that must handle it again (the others skip it).",
        required=False,
    ),
)

EVENT_HEADERS = (
    Header(records.HEADER_NOTICE_ID, "NCS noticeId (unique per notification)."),
    Header(records.HEADER_PRODUCT_ID, "NCS productId (3 = Cloud Recording).", format="integer"),
    Header(records.HEADER_EVENT_TYPE, "NCS eventType.", format="integer"),
    Header(
        records.HEADER_SID,
        "payload.sid, the recording session id (absent when the callback has none).",
        required=False,
    ),
    Header(
        records.HEADER_RECEIVED_AT,
        "Unix ms when the webhook received the callback.",
        format="integer",
    ),
    SCHEMA_VERSION_HEADER,
    Header(
        records.HEADER_SIGNATURE_HEADER,
        "The signature header that verified the callback: Agora-Signature-V2 or "
        "Agora-Signature; synthetic for callbacks the reconciler writes.",
    ),
    Header(
        SYNTHETIC_HEADER,
        f"Only on callbacks the service wrote itself: {SYNTHETIC_SOURCE} (a failure the "
        "reconciler found by querying Agora; the body says \"synthetic\": true too).",
        required=False,
        const=SYNTHETIC_SOURCE,
    ),
    *REPLAY_HEADERS,
    # CloudEvents 1.0, Kafka protocol binding, binary content mode.
    Header(records.CE_SPECVERSION, "CloudEvents specversion.", const="1.0"),
    Header(records.CE_ID, "CloudEvents id: the noticeId."),
    Header(
        records.CE_TYPE,
        f"CloudEvents type: {records.CE_TYPE_PREFIX}<productId>.<eventType>, e.g. "
        f"{records.CE_TYPE_PREFIX}3.11 for session_exit.",
    ),
    Header(
        records.CE_SOURCE,
        f"CloudEvents source: {records.CE_SOURCE_NCS} for NCS callbacks, "
        f"{records.CE_SOURCE_SYNTHETIC} for the reconciler's.",
    ),
    Header(
        records.CE_TIME,
        "CloudEvents time: notifyMs as RFC 3339 UTC (absent if notifyMs is not a date).",
        required=False,
        format="timestamp",
    ),
    Header(
        records.CONTENT_TYPE,
        "CloudEvents datacontenttype of the value.",
        const="application/json",
    ),
)

QUARANTINE_HEADERS = (
    Header(
        records.HEADER_QUARANTINE_REASON,
        "Why the body is not a valid envelope (field and expectation; at most 1000 characters).",
    ),
    Header(
        records.HEADER_RECEIVED_AT,
        "Unix ms when the webhook received the callback.",
        format="integer",
    ),
    SCHEMA_VERSION_HEADER,
)

POINTER_HEADERS = (
    *QUARANTINE_HEADERS,
    Header(records.CONTENT_TYPE, "The value is a JSON pointer, not a body.",
           const="application/json"),
    Header(records.HEADER_NOTICE_ID, "noticeId of the refused record, when it had one.", False),
    Header(records.HEADER_EVENT_TYPE, "eventType of the refused record, when it had one.",
           required=False, format="integer"),
)

OUTCOME_HEADERS = (
    Header(
        RECORD_TYPE_HEADER,
        f"Shape of the value: {OUTCOME_RECORD} (a runtime outcome).",
        const=OUTCOME_RECORD,
    ),
    Header("action", "Handler name (same as the value's action)."),
    Header("outcome", "The value's outcome."),
    SCHEMA_VERSION_HEADER,
    Header(records.HEADER_NOTICE_ID, "noticeId of the triggering event, when known.", False),
    *REPLAY_HEADERS,
)

REPORT_HEADERS = (
    Header(
        RECORD_TYPE_HEADER,
        f"Shape of the value: {REPORT_RECORD} (an action's report).",
        const=REPORT_RECORD,
    ),
    SCHEMA_VERSION_HEADER,
    Header("action", "Handler name (set by the notify handler).", required=False),
    Header("outcome", "The value's outcome (set by the restart handler).", required=False),
    Header(records.HEADER_NOTICE_ID, "noticeId of the triggering event, when known.", False),
    Header(records.HEADER_SID, "Recording session id, when known.", required=False),
    *REPLAY_HEADERS,
)

FILE_HEADERS = (
    Header(records.HEADER_NOTICE_ID, "noticeId of the reporting event."),
    Header(records.HEADER_EVENT_TYPE, "eventType of the reporting event.", format="integer"),
    Header(records.HEADER_SID, "Recording session id."),
    SCHEMA_VERSION_HEADER,
)

SCREENSHOT_HEADERS = (
    Header(records.HEADER_NOTICE_ID, "noticeId of the triggering event."),
    Header(records.HEADER_SID, "Recording session id of the triggering event."),
    SCHEMA_VERSION_HEADER,
)

SESSION_HEADERS = (
    Header(records.HEADER_SCHEMA_VERSION, "Version of the value's schema.", format="integer"),
)

STATE_HEADERS: tuple[Header, ...] = ()

_PROVENANCE_TEXT = {
    dlq.DLQ_TOPIC: ("Topic the record was consumed from (where a replay sends it).", "text"),
    dlq.DLQ_PARTITION: ("Its partition.", "integer"),
    dlq.DLQ_OFFSET: ("Its offset.", "integer"),
    dlq.DLQ_HANDLER: ("The handler that gave up on it.", "text"),
    dlq.DLQ_ERROR: (
        f"Exception class and message, secrets withheld, at most {dlq.MAX_ERROR_CHARS} "
        "characters.",
        "text",
    ),
    dlq.DLQ_ATTEMPTS: ("Handling attempts made (0: the record could not be decoded).", "integer"),
    dlq.DLQ_AT: ("Unix ms when it was dead-lettered.", "integer"),
}


def dlq_headers() -> tuple[Header, ...]:
    """The provenance headers of a dead letter, in the order the runtime writes them.

    Raises ``LookupError`` when the runtime gained a provenance header this module does not
    describe yet (the contract must say what every header means).
    """
    missing = [name for name in dlq.PROVENANCE if name not in _PROVENANCE_TEXT]
    if missing:
        raise LookupError(f"undocumented dead-letter headers: {', '.join(missing)}")
    headers: list[Header] = []
    for name in dlq.PROVENANCE:
        text, fmt = _PROVENANCE_TEXT[name]
        headers.append(Header(name, text, format="integer" if fmt == "integer" else "text"))
    return tuple(headers)
