"""One attempt at one record: call the action and classify what happened.

No Kafka here. The runner feeds a :class:`Work` item in and routes the :data:`Result`:
``Handled`` is committed with its effects, ``Invalid`` is dead-lettered at once,
``Transient`` is retried within the budget. Exceptions are routing signals
(:mod:`handlers.action_contract`); anything unexpected is treated as transient, so a bug delays
events (and, if it persists, dead-letters them with the error) but never drops them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.action_contract import (
    Action,
    ActionFailed,
    Effects,
    InvalidEvent,
    RawRecord,
    Received,
    StateView,
    TransientError,
)
from handlers.runtime.dlq import REPLAY_FOR, describe_error
from handlers.runtime.kafka_record import Headers, decode_headers, header_value
from handlers.runtime.offsets import Partition
from webhook.shared.event_records import HEADER_EVENT_TYPE
from webhook.shared.events import parse_notification

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Work:
    """A consumed record on its way through one action, with its retry bookkeeping."""

    partition: Partition
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    received: Received | None
    raw_input: RawRecord | None = None
    parse_error: str | None = None
    replayed: bool = False
    command: Any = None
    decided: bool = False
    attempts: int = 0
    failures: int = 0
    first_failure_at: float | None = None
    log_context: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return f"{self.partition[0]}/{self.partition[1]}/{self.offset}"


@dataclass(frozen=True, slots=True)
class Handled:
    kind: Literal["ok", "failed", "ignored"]
    effects: Effects
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    error: str


@dataclass(frozen=True, slots=True)
class Transient:
    error: str
    retry_after_s: float | None = None


Result = Handled | Invalid | Transient


def not_for(handler: str, headers: Headers, *, events: bool) -> bool:
    """A record this handler skips: a DLQ replay for another handler (this one handled
    the original already), or its own outcome read back from an extra input. Pure."""
    replay_for = header_value(headers, REPLAY_FOR)
    if replay_for is not None and replay_for != handler:
        return True
    return not events and header_value(headers, "action") == handler


def skipped_by_type(event_types: frozenset[int] | None, headers: Headers) -> bool:
    """A callback the action declared it never acts on (``Action.event_types``), told by
    its ``eventType`` header without decoding the value. A record without the header, or a
    DLQ replay, is decoded and decided as usual. Pure."""
    if event_types is None:
        return False
    event_type = header_value(headers, HEADER_EVENT_TYPE)
    if event_type is None or not event_type.isdigit():
        return False
    return int(event_type) not in event_types and header_value(headers, REPLAY_FOR) is None


def work_from_record(
    handler: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    *,
    decode: bool = True,
) -> Work:
    """Decode a consumed record; a record that does not decode becomes invalid work.
    With ``decode=False`` (an extra input topic) the record is passed on as is."""
    text_headers = decode_headers(headers)
    text_key = key.decode("utf-8", "replace") if key is not None else None
    work = Work(
        partition=(topic, partition),
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        received=None,
        replayed=REPLAY_FOR in text_headers,
        log_context={
            "handler": handler,
            "noticeId": text_headers.get("noticeId", ""),
            "cname": text_key or "",
            "sid": text_headers.get("sid", ""),
            "source": f"{topic}/{partition}/{offset}",
        },
    )
    if value is not None and not decode:
        work.raw_input = RawRecord(
            raw=value, topic=topic, partition=partition, offset=offset,
            headers=text_headers, key=text_key,
        )
        return work
    try:
        if value is None:
            raise ValueError("the record has no value (tombstone)")
        notification = parse_notification(value)
    except ValueError as exc:  # EventError, or bytes that are not UTF-8/JSON
        work.parse_error = f"InvalidEvent: {describe_error(exc)}"
        return work
    work.received = Received(
        notification=notification,
        raw=value,
        topic=topic,
        partition=partition,
        offset=offset,
        headers=text_headers,
        key=text_key,
    )
    return work


def attempt(action: Action[Any], work: Work, state: StateView) -> Result:
    """Decide (unless an earlier attempt already did and the action keeps decisions) and
    run the command once."""
    decided = decide_step(action, work, state)
    return decided if decided is not None else run_step(action, work)


def decide_step(action: Action[Any], work: Work, state: StateView) -> Result | None:
    """The pure half of an attempt: ``None`` when ``run_step`` must follow (a command
    was decided), else the result (ignored, invalid, transient). Cheap and local, so the
    runtime calls it on its loop thread, where state is consistent."""
    event: Any = work.received if work.received is not None else work.raw_input
    if event is None:
        return Invalid(work.parse_error or "InvalidEvent: the record could not be decoded")
    work.attempts += 1
    if not work.decided or getattr(action, "decide_each_attempt", False):
        try:
            command = action.decide(event, state)
        except InvalidEvent as exc:
            return Invalid(describe_error(exc))
        except TransientError as exc:
            return Transient(describe_error(exc), exc.retry_after_s)
        except Exception as exc:  # a bug in decide: retried, then dead-lettered
            log.warning("decide raised unexpectedly", exc_info=True, extra=work.log_context)
            return Transient(describe_error(exc))
        work.command, work.decided = command, True
    if work.command is None:
        return Handled("ignored", Effects())
    return None


def run_step(action: Action[Any], work: Work) -> Result:
    """The effectful half: run the decided command once, in a span continuing the record's
    trace (when tracing is on). May block on remote calls, so the runtime calls it on a
    worker thread."""
    # Imported here: the tracing module builds on this module's types.
    from handlers.runtime.tracing import traced_attempt

    handler = work.log_context.get("handler") or type(action).__name__
    return traced_attempt(handler, work, lambda: _run(action, work))


def _run(action: Action[Any], work: Work) -> Result:
    try:
        effects: object = action.run(work.command)
    except TransientError as exc:
        return Transient(describe_error(exc), exc.retry_after_s)
    except InvalidEvent as exc:
        return Invalid(describe_error(exc))
    except ActionFailed as exc:
        return Handled("failed", exc.effects, describe_error(exc))
    except Exception as exc:  # a bug in run: retried, then dead-lettered
        log.warning("run raised unexpectedly", exc_info=True, extra=work.log_context)
        return Transient(describe_error(exc))
    if not isinstance(effects, Effects):
        return Transient(f"TypeError: run returned {type(effects).__name__}, expected Effects")
    return Handled("ok", effects)
