"""One channel's story: what every topic says about a cname, as one line per record.

:func:`describe` is pure (a record in, an :class:`Entry` out); :func:`read_timeline` does
the reading, only the partition each topic keys the channel to and only the time range
asked for (:mod:`handlers.runtime.scan`). The registry topic may key a channel's tasks
under other keys, so it is read whole (it is compacted and small) and matched on the
value's ``cname``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.runtime.scan import Progress, bounds, open_consumer, read_forward
from handlers.runtime.state import TopicMissing
from handlers.timeargs import format_ms
from webhook.shared.events import EVENT_TYPES
from webhook.shared.kafka_settings import TopicNames

SOURCES = ("events", "actions", "sessions", "files", "screenshots", "dlq")
"""TopicNames fields the timeline reads, in the order ties are shown."""


@dataclass(frozen=True, slots=True)
class Entry:
    at_ms: int
    source: str
    what: str
    sid: str | None = None
    task: str | None = None
    ref: str = ""
    alert: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        mark = " !" if self.alert else ""
        return (f"{format_ms(self.at_ms)}  {self.source:<11} {self.what}{mark}  "
                f"sid={self.sid or '-'} task={self.task or '-'}")

    def as_json(self) -> dict[str, Any]:
        return {"at": format_ms(self.at_ms), "at_ms": self.at_ms, "source": self.source,
                "what": self.what, "sid": self.sid, "task": self.task, "alert": self.alert,
                "record": self.ref}


def _headers(raw: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in raw or () if v is not None}


def _json(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _event_what(body: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, Any, Any]:
    payload = body.get("payload") or body.get("playload") or {}
    details = payload.get("details") or {}
    event_type = body.get("eventType")
    known = EVENT_TYPES.get(event_type) if isinstance(event_type, int) else None
    name = details.get("msgName") or (known.msg_name if known else "unknown")
    what = f"callback {event_type} {name}"
    facts = []
    for key in ("exitStatus", "errorCode", "errorLevel", "module", "errorMsg", "warnCode",
                "newUid", "leaveCode", "status", "fileName"):
        if key in details:
            facts.append(f"{key}={details[key]}")
    if isinstance(details.get("fileList"), list):
        facts.append(f"files={len(details['fileList'])}")
    if facts:
        what += " " + " ".join(facts)
    if headers.get("synthetic"):
        what += f" [{headers['synthetic']}]"
    if headers.get("replay-for"):
        what += f" [replay for {headers['replay-for']}]"
    return what, payload.get("sid"), payload.get("uid")


def _alert_line(alert: Mapping[str, Any]) -> str:
    line = f"{alert.get('rule')} {alert.get('transition')} ({alert.get('severity')})"
    delivered, failed = alert.get("delivered") or [], alert.get("failed") or []
    line += f" -> {', '.join(map(str, delivered)) or 'no sink'}"
    if failed:
        line += f", failed: {', '.join(map(str, failed))}"
    return line


def _action_what(value: Mapping[str, Any]) -> tuple[str, bool]:
    outcome = value.get("outcome")
    if "handler" not in value:  # runtime outcome: one per decision about an event
        event_type = value.get("eventType")
        what = f"{value.get('action')} {outcome} on " + (
            f"callback {event_type}" if event_type is not None else "an actions record")
        if value.get("attempts"):
            what += f" attempts={value['attempts']}"
        if value.get("error"):
            what += f": {value['error']}"
        return what, outcome == "dead_lettered"
    handler = value.get("handler")
    operation = value.get("action")
    what = f"{handler}: {outcome}" if operation == handler else f"{handler} {operation}: {outcome}"
    if value.get("new_sid"):
        what += f" -> new sid {value['new_sid']}"
    if handler == "notify" and isinstance(value.get("alerts"), list):
        alerts = [a for a in value["alerts"] if isinstance(a, dict)]
        what = f"alert {outcome}: {'; '.join(map(_alert_line, alerts)) or 'no rule'}"
        # A resolution needs no one; a new or failed alert does.
        return what, outcome != "notified" or any(
            a.get("transition") != "resolve" for a in alerts)
    for key in ("reason", "error"):
        if value.get(key):
            what += f" ({value[key]})"
    return what, bool(value.get("alert"))


def describe(
    source: str, record: Any, topic_ref: str
) -> Entry | None:
    """The timeline line of one record of topic ``source`` (a TopicNames field)."""
    headers = _headers(record.headers)
    value = _json(record.value)
    at = record.timestamp
    ref = f"{topic_ref}/{record.partition}/{record.offset}"
    if source == "events":
        # When NCS reached the webhook; a replayed copy is shown when it was replayed.
        if headers.get("received-at", "").isdigit() and "replay-for" not in headers:
            at = int(headers["received-at"])
        if value is None:
            return Entry(at, source, "callback (not JSON)", ref=ref)
        what, sid, uid = _event_what(value, headers)
        return Entry(at, source, what, _text(sid), _text(uid), ref)
    if source == "sessions":
        if record.value is None:
            return Entry(at, "registry", "entry removed (tombstone)", ref=ref)
        if value is None:
            return Entry(at, "registry", "entry (not JSON)", ref=ref)
        what = f"{value.get('status')} profile={value.get('profile')}"
        restarts = value.get("restarts") or []
        if restarts:
            what += f" restarts={len(restarts)}"
        if value.get("pending"):
            what += " (restart in flight)"
        if value.get("error"):
            what += f" error={value['error']}"
        return Entry(at, "registry", what, _text(value.get("sid")), _text(value.get("uid")),
                     ref, alert=value.get("status") in ("failed", "gave_up"))
    if value is None and source != "dlq":
        return Entry(at, source, "record (not JSON)", ref=ref)
    if source == "actions":
        assert value is not None
        what, alert = _action_what(value)
        return Entry(at, source, what, _text(value.get("sid")), _text(value.get("uid")), ref,
                     alert=alert)
    if source == "files":
        assert value is not None
        what = f"{value.get('fileName')} ({value.get('source')})"
        return Entry(at, source, what, _text(value.get("sid")), _text(value.get("uid")), ref)
    if source == "screenshots":
        assert value is not None
        shots = value.get("screenshots") or []
        what = f"{len(shots)} whiteboard screenshot(s) of {value.get('path')}"
        return Entry(at, source, what, _text(value.get("sid")), None, ref)
    if source == "dlq":
        sid = headers.get("sid")
        what = (f"dead letter: {headers.get('dlq-handler')} gave up on callback "
                f"{headers.get('eventType')} after {headers.get('dlq-attempts')} attempt(s): "
                f"{headers.get('dlq-error')}")
        return Entry(at, source, what, sid, None, ref, alert=True)
    return None


def _mine(source: str, record: Any, cname: str) -> bool:
    key = cname.encode()
    if source != "sessions":
        return bool(record.key == key)
    if record.key == key:
        return True
    value = _json(record.value)
    return value is not None and value.get("cname") == cname


def read_timeline(
    client_config: Mapping[str, Any],
    topics: TopicNames,
    cname: str,
    *,
    since_ms: int | None,
    until_ms: int | None,
    progress: Progress | None = None,
    sources: Iterable[str] = SOURCES,
    ends: dict[tuple[str, int], int] | None = None,
    skipped: Callable[[str], None] | None = None,
) -> list[Entry]:
    """Every entry of ``cname`` in ``[since_ms, until_ms)``, in time order. ``ends``, if
    given, receives where each partition's read stopped (for :func:`follow`). A topic that
    does not exist is reported to ``skipped`` (else :class:`TopicMissing` is raised)."""
    entries: list[Entry] = []
    order = {s: i for i, s in enumerate(SOURCES)}
    consumer = open_consumer(client_config)
    try:
        for source in sources:
            topic = getattr(topics, source)
            key = None if source == "sessions" else cname.encode()
            try:
                ranges = bounds(consumer, topic, key=key, since_ms=since_ms, until_ms=until_ms)
            except TopicMissing:
                # One missing topic (e.g. no whiteboard in this deployment) must not hide
                # the rest of the story.
                if skipped is None:
                    raise
                skipped(topic)
                continue
            if ends is not None:
                ends.update({(topic, b.partition): b.end for b in ranges})
            for record in read_forward(consumer, topic, ranges, progress=progress):
                if _mine(source, record, cname):
                    entry = describe(source, record, topic)
                    if entry is not None:
                        entries.append(entry)
    finally:
        consumer.close()
    return sorted(entries, key=lambda e: (e.at_ms, order.get(e.source, 9), e.ref))


def follow(
    client_config: Mapping[str, Any],
    topics: TopicNames,
    cname: str,
    emit: Callable[[Entry], None],
    *,
    stop: Callable[[], bool],
    sources: Iterable[str] = SOURCES,
    start: Mapping[tuple[str, int], int] | None = None,
) -> None:
    """Entries of ``cname`` as they arrive, until ``stop()``: from ``start`` (where the
    history read stopped, so nothing falls between) or else from the end."""
    from kafka import TopicPartition

    consumer = open_consumer(client_config)
    try:
        by_topic: dict[str, str] = {}
        tps: list[TopicPartition] = []
        for source in sources:
            topic = getattr(topics, source)
            by_topic[topic] = source
            key = None if source == "sessions" else cname.encode()
            try:
                tps.extend(TopicPartition(topic, b.partition)
                           for b in bounds(consumer, topic, key=key))
            except TopicMissing:
                continue  # reported by the history read
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            if start is not None and (tp.topic, tp.partition) in start:
                consumer.seek(tp, start[(tp.topic, tp.partition)])
        while not stop():
            for tp, batch in consumer.poll(timeout_ms=500).items():
                source = by_topic[tp.topic]
                for record in batch:
                    if _mine(source, record, cname):
                        entry = describe(source, record, tp.topic)
                        if entry is not None:
                            emit(entry)
    finally:
        consumer.close()


def iter_lines(entries: Iterable[Entry], as_json: bool) -> Iterator[str]:
    for entry in entries:
        yield json.dumps(entry.as_json(), sort_keys=True) if as_json else entry.line()
