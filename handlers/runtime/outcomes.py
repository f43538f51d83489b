"""Outcome records on ``agora.actions``: what an action did with one event.

One JSON record per decision the runtime makes about an event for an action, key = the
event's ``cname`` (so a channel's outcomes stay in order on one partition), headers
``action``, ``outcome``, ``noticeId``, ``schema-version`` ("1") and ``record-type``
(``outcome``, telling these apart from actions' own reports). The value is an
:class:`ActionOutcome`; ``ActionOutcome.model_json_schema(by_alias=True)`` is its
published JSON Schema.

``outcome`` values:

- ``ok``: ``run`` succeeded; its outputs were published in the same transaction.
- ``failed``: the action gave up for good (``ActionFailed``, e.g. a 4xx from the remote
  API); its effects (alerts...) were still published.
- ``ignored``: ``decide`` returned no command (only published when the runtime is told
  to; counted in metrics always).
- ``retrying``: a transient failure; the record is parked and will be tried again in
  ``retry_in_s`` seconds (one record per failed attempt).
- ``dead_lettered``: the record went to ``agora.dlq`` (invalid, or retries exhausted).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr

from handlers.reports import OUTCOME_RECORD, RECORD_TYPE_HEADER, ActionRecordFields
from handlers.runtime.dispatch import Work
from handlers.runtime.kafka_record import KafkaRecord, decode_headers
from webhook.shared.event_records import HEADER_SCHEMA_VERSION, SCHEMA_VERSION

OutcomeKind = Literal["ok", "failed", "ignored", "retrying", "dead_lettered"]


class ActionOutcome(ActionRecordFields):
    """One action's outcome for one event (value of an ``agora.actions`` record). The
    fields shared with actions' reports come from :class:`ActionRecordFields`; ``action`` is
    the handler name here."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    action: str = Field(description="Handler name: restart, whiteboard, notify, ...")
    outcome: OutcomeKind = Field(description="What happened, see the module documentation.")
    attempts: int = Field(
        ge=0, description="Handling attempts so far (0: the record could not be decoded)."
    )
    duration_ms: float = Field(ge=0, description="Time spent in decide and run, this attempt.")
    source: str = Field(description="Where the event was read: <topic>/<partition>/<offset>.")
    replayed: bool = Field(default=False, description="The event was a DLQ replay.")
    retry_in_s: float | None = Field(
        default=None, description="For retrying: seconds until the next attempt."
    )

    # W3C trace context of the attempt's span (headers only, never in the value).
    _trace_headers: tuple[tuple[str, bytes], ...] = PrivateAttr(default=())

    def to_record(self, topic: str) -> KafkaRecord:
        return KafkaRecord(
            topic=topic,
            key=None if self.cname is None else self.cname.encode(),
            value=self.model_dump_json(by_alias=True).encode(),
            headers=_headers(self.action, self.outcome, self.notice_id, self._trace_headers),
        )


def outcome_of(
    work: Work,
    action: str,
    kind: OutcomeKind,
    elapsed_s: float,
    at_ms: int,
    *,
    error: str | None = None,
    retry_in_s: float | None = None,
) -> ActionOutcome:
    """The outcome of ``work``; event fields come from the decoded event, else headers."""
    outcome = ActionOutcome.model_validate(
        _fields(work, action, kind, elapsed_s, at_ms, error, retry_in_s))
    outcome._trace_headers = _trace_of(work)
    return outcome


def outcome_record(
    work: Work,
    action: str,
    kind: OutcomeKind,
    elapsed_s: float,
    at_ms: int,
    topic: str,
    *,
    error: str | None = None,
    retry_in_s: float | None = None,
) -> KafkaRecord:
    """``outcome_of(...).to_record(topic)``, byte for byte, without building the model:
    the runtime writes one per event, and validating and serialising through pydantic
    cost more than the rest of a no-op action's handling."""
    fields = _fields(work, action, kind, elapsed_s, at_ms, error, retry_in_s)
    cname = fields["cname"]
    return KafkaRecord(
        topic=topic,
        key=None if cname is None else cname.encode(),
        value=json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode(),
        headers=_headers(action, kind, fields["noticeId"], _trace_of(work)),
    )


def _fields(
    work: Work, action: str, kind: OutcomeKind, elapsed_s: float, at_ms: int,
    error: str | None, retry_in_s: float | None,
) -> dict[str, Any]:
    """The value's fields by their published names, in the model's field order."""
    notification = work.received.notification if work.received else None
    headers = work.received.headers if work.received else decode_headers(work.headers)
    header_type = headers.get("eventType", "")
    return {
        "action": action,
        "outcome": kind,
        "cname": work.key.decode("utf-8", "replace") if work.key is not None else None,
        "sid": (notification.payload.sid if notification else None) or headers.get("sid"),
        "noticeId": notification.notice_id if notification else headers.get("noticeId"),
        "eventType": (
            notification.event_type if notification
            else int(header_type) if header_type.isdigit() else None
        ),
        "at": at_ms,
        "error": error,
        "attempts": work.attempts,
        "duration_ms": round(elapsed_s * 1000, 3),
        "source": work.source,
        "replayed": work.replayed,
        "retry_in_s": None if retry_in_s is None else round(retry_in_s, 3),
    }


def _headers(
    action: str, kind: str, notice_id: str | None, trace: tuple[tuple[str, bytes], ...]
) -> tuple[tuple[str, bytes], ...]:
    headers: list[tuple[str, bytes]] = [
        ("action", action.encode()),
        ("outcome", kind.encode()),
        (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
        (RECORD_TYPE_HEADER, OUTCOME_RECORD.encode()),
    ]
    if notice_id:
        headers.append(("noticeId", notice_id.encode()))
    headers.extend(trace)
    return tuple(headers)


def _trace_of(work: Work) -> tuple[tuple[str, bytes], ...]:
    """``traceparent`` of the attempt's span, set by handlers.runtime.tracing when sampled."""
    trace_id, span_id = work.log_context.get("trace_id"), work.log_context.get("span_id")
    if trace_id and span_id:
        return (("traceparent", f"00-{trace_id}-{span_id}-01".encode()),)
    return ()
