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

from typing import Literal

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
        headers: list[tuple[str, bytes]] = [
            ("action", self.action.encode()),
            ("outcome", self.outcome.encode()),
            (HEADER_SCHEMA_VERSION, SCHEMA_VERSION.encode()),
            (RECORD_TYPE_HEADER, OUTCOME_RECORD.encode()),
        ]
        if self.notice_id:
            headers.append(("noticeId", self.notice_id.encode()))
        headers.extend(self._trace_headers)
        return KafkaRecord(
            topic=topic,
            key=None if self.cname is None else self.cname.encode(),
            value=self.model_dump_json(by_alias=True).encode(),
            headers=tuple(headers),
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
    notification = work.received.notification if work.received else None
    headers = work.received.headers if work.received else decode_headers(work.headers)
    header_type = headers.get("eventType", "")
    outcome = ActionOutcome(
        action=action,
        outcome=kind,
        cname=work.key.decode("utf-8", "replace") if work.key is not None else None,
        notice_id=notification.notice_id if notification else headers.get("noticeId"),
        event_type=(
            notification.event_type if notification
            else int(header_type) if header_type.isdigit() else None
        ),
        sid=(notification.payload.sid if notification else None) or headers.get("sid"),
        attempts=work.attempts,
        error=error,
        duration_ms=round(elapsed_s * 1000, 3),
        at=at_ms,
        source=work.source,
        replayed=work.replayed,
        retry_in_s=None if retry_in_s is None else round(retry_in_s, 3),
    )
    trace_id, span_id = work.log_context.get("trace_id"), work.log_context.get("span_id")
    if trace_id and span_id:  # set by handlers.runtime.tracing for a sampled attempt
        outcome._trace_headers = (("traceparent", f"00-{trace_id}-{span_id}-01".encode()),)
    return outcome
