"""The session registry's store: reading the compacted topic (a live table view, or a
one-off read), finding a channel's tasks, and writing records durably."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from handlers.recording.schema import (
    SESSION_SCHEMA_VERSION,
    SessionRecord,
    SessionRecordError,
    parse_session,
)
from webhook.shared.event_records import HEADER_SCHEMA_VERSION

log = logging.getLogger(__name__)



class SessionStore(Protocol):
    """Read and write access to the registry: the restart action reads through ``get``
    (a live view) and writes in-flight restarts through ``save`` (durable on return)."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]: ...

    def save(self, record: SessionRecord) -> None: ...


class SessionWriter:
    """Publishes records to the sessions topic with an ``acks=all`` producer;
    :meth:`publish` returns once the broker acknowledged (raises otherwise)."""

    def __init__(self, client_config: Mapping[str, Any], topic: str,
                 timeout_s: float = 10.0, *, warm: bool = False) -> None:
        """``warm``: fetch the topic's metadata and connect now, in the background, so
        the first write (the journal between a restart's acquire and its start, whose
        resource goes stale within seconds) does not pay for it."""
        from handlers.runtime.clients import durable_producer

        self.topic = topic
        self._timeout_s = timeout_s
        self._producer = durable_producer(client_config, "agora-events.sessions-writer")
        if warm:
            threading.Thread(target=self._warm, name="sessions-writer-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            self._producer.partitions_for(self.topic)
        except Exception:  # the first write will find out and say so
            log.debug("sessions writer could not warm up", exc_info=True)

    def publish(self, record: SessionRecord) -> None:
        self._send(record.key, record.to_bytes(), str(record.schema_version))

    def delete(self, key: str) -> None:
        """Tombstone: the task (the record under ``key``) leaves the registry."""
        self._send(key, None, str(SESSION_SCHEMA_VERSION))

    def _send(self, key: str, value: bytes | None, version: str) -> None:
        future = self._producer.send(
            self.topic, key=key.encode(), value=value,
            headers=[(HEADER_SCHEMA_VERSION, version.encode())],
        )
        future.get(timeout=self._timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)


class TableSessions:
    """A :class:`SessionStore` over a live view of the topic (the runtime's ``Table``)
    plus a writer created on first use. What ``save`` writes shows in the view once the
    view has read it back from the topic."""

    def __init__(self, view: Any, writer_factory: Callable[[], SessionWriter]) -> None:
        self._view = view
        self._writer_factory = writer_factory
        self._writer: SessionWriter | None = None
        self._closed = False
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Create the writer now, in the background, rather than on the first save (a
        producer connects before its constructor returns); a save meanwhile waits for it."""
        threading.Thread(target=self._create_writer, name="sessions-writer-start",
                         daemon=True).start()

    def _create_writer(self) -> None:
        with self._lock:
            if self._writer is not None or self._closed:
                return
            try:
                self._writer = self._writer_factory()
            except Exception:  # the first save creates it again and reports the error
                log.debug("sessions writer could not be created ahead", exc_info=True)

    def get(self, key: str) -> Mapping[str, Any] | None:
        value: Mapping[str, Any] | None = self._view.get(key)
        return value

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        items: Iterator[tuple[str, Mapping[str, Any]]] = self._view.items()
        return items

    def save(self, record: SessionRecord) -> None:
        with self._lock:
            if self._closed:
                # A run abandoned at shutdown: a new producer now would never be closed.
                raise RuntimeError("the session registry writer is closed")
            if self._writer is None:
                self._writer = self._writer_factory()
            writer = self._writer
        writer.publish(record)

    def close(self) -> None:
        """Close the writer, if one was created; later saves are refused."""
        with self._lock:
            writer, self._writer = self._writer, None
            self._closed = True
        if writer is not None:
            writer.close()


class MemorySessions:
    """A :class:`SessionStore` and table view held in memory (tests, single-process
    tools). Values are stored as the JSON the topic would carry."""

    def __init__(self, *records: SessionRecord) -> None:
        self._values: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.saved: list[SessionRecord] = []
        for record in records:
            self.put(record)

    def put(self, record: SessionRecord) -> None:
        with self._lock:
            self._values[record.key] = json.loads(record.to_bytes())

    def put_raw(self, key: str, value: Mapping[str, Any] | None) -> None:
        with self._lock:
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = dict(value)

    def save(self, record: SessionRecord) -> None:
        self.put(record)
        with self._lock:
            self.saved.append(record)

    def get(self, key: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._values.get(key)

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        with self._lock:
            snapshot = list(self._values.items())
        return iter(snapshot)

    def record(self, key: str) -> SessionRecord | None:
        value = self.get(key)
        return None if value is None else parse_session(value, key)

    def only(self, cname: str) -> SessionRecord | None:
        """The one task of ``cname`` (``None`` when it has none; error when several)."""
        tasks = channel_tasks(self, cname)
        if len(tasks) > 1:
            raise LookupError(f"{cname!r} has {len(tasks)} tasks")
        return tasks[0] if tasks else None


def load_sessions(
    client_config: Mapping[str, Any], topic: str, timeout_s: float = 30.0
) -> dict[str, Mapping[str, Any]]:
    """The latest value per cname, read from the start of the topic to its current end
    (a one-off read; long-running processes keep a runtime ``Table`` instead)."""
    from handlers.runtime.state import Table

    table = Table(topic)
    table.start(client_config, timeout_s)
    try:
        return dict(table.items())
    finally:
        table.close()


def lookup(view: Any, key: str) -> SessionRecord | None:
    """The valid record under ``key`` (:attr:`SessionRecord.key`) in a table view; a
    malformed one is logged and treated as absent (its writer must fix it)."""
    value = view.get(key)
    if value is None:
        return None
    try:
        return parse_session(value, key)
    except SessionRecordError as exc:
        log.warning("ignoring a malformed session record", extra={"key": key,
                                                                  "error": str(exc)[:500]})
        return None


def channel_values(view: Any, cname: str) -> list[Mapping[str, Any]]:
    """The raw values of every record of ``cname`` (any schema version), ordered by key:
    for readers that need one field of a channel's tasks (e.g. a whiteboard link)."""
    found = [(key, value) for key, value in view.items()
             if isinstance(value, Mapping) and value.get("cname") == cname]
    return [value for _, value in sorted(found, key=lambda item: item[0])]


def channel_tasks(view: Any, cname: str) -> list[SessionRecord]:
    """Every valid task of ``cname`` in a table view (version-1 and version-2 keys),
    ordered by key. One pass over the view: the registry holds live and recently
    finished tasks only (the reconciler prunes the rest)."""
    found = []
    for key, value in view.items():
        if not isinstance(value, Mapping) or value.get("cname") != cname:
            continue
        record = lookup(view, key)
        if record is not None:
            found.append(record)
    return sorted(found, key=lambda r: r.key)


def find_task(tasks: list[SessionRecord], sid: str | None,
              uid: str | None) -> SessionRecord | None:
    """The task a callback is about: the one whose ``sid`` (or restart in flight) it
    names, else the one whose uid pair holds its recorder ``uid`` (an older sid of a
    restarted task: ``classify`` then calls it irrelevant)."""
    for record in tasks:
        if sid is not None and (record.sid == sid or (
                record.pending is not None and record.pending.failed_sid == sid)):
            return record
    for record in tasks:
        if uid is not None and uid in (record.uid, record.backup_uid):
            return record
    return None
