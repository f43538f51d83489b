"""Views of compacted topics: the last JSON value per key, kept in memory.

A :class:`Table` is a read-only view of any compacted topic (e.g. the restart action's
view of ``agora.recording.sessions``): the runner loads it to the end before handling
records and refreshes it without blocking on every loop. The :class:`StateStore` is an
action's own state, a namespaced slice (``<action>/<key>``) of the state topic, whose
updates the runner writes in the same transaction as the offsets.

Both apply an entry only if it is newer (higher offset on the key's partition) than the
one they hold, so the process's own writes, applied as soon as their transaction
commits, are never overwritten by an older record read later from the topic.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from handlers.runtime.records import KafkaRecord

log = logging.getLogger(__name__)

JsonObject = Mapping[str, Any]


class CatchUpTimeout(Exception):
    """A compacted topic could not be read to its end in time."""


class TopicMissing(Exception):
    """A topic the runtime needs does not exist (topics are never auto-created)."""


def decode_json_object(value: bytes | None) -> JsonObject | None:
    """``None`` for a tombstone; raises ``ValueError`` unless the bytes are a JSON object."""
    if value is None:
        return None
    decoded = json.loads(value)
    if not isinstance(decoded, dict):
        raise ValueError(f"expected a JSON object, got {type(decoded).__name__}")
    return decoded


class CompactedView:
    """Last value per key, with the (partition, offset) it came from. Pure."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, int, JsonObject | None]] = {}

    def apply(self, key: str, partition: int, offset: int, value: JsonObject | None) -> bool:
        current = self._entries.get(key)
        if current is not None and current[0] == partition and current[1] >= offset:
            return False
        self._entries[key] = (partition, offset, value)
        return True

    def get(self, key: str) -> JsonObject | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[2]

    def items(self) -> Iterator[tuple[str, JsonObject]]:
        for key, (_, _, value) in self._entries.items():
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        return sum(1 for _ in self.items())


class TopicReader:
    """Reads every partition of one topic from the start, ``read_committed``, no group.

    Not thread-safe: the runner thread owning it calls every method.
    """

    def __init__(
        self,
        topic: str,
        client_config: Mapping[str, Any],
        on_record: Callable[[bytes | None, bytes | None, int, int], None],
    ) -> None:
        self.topic = topic
        self._client_config = dict(client_config)
        self._on_record = on_record
        self._consumer: KafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    def start(self, timeout_s: float) -> None:
        consumer = KafkaConsumer(
            **self._client_config,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)  # metadata may not have arrived yet; bounded by the deadline
            partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            consumer.close()
            raise TopicMissing(f"topic {self.topic!r} does not exist")
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._partitions)
        consumer.seek_to_beginning(*self._partitions)
        self._consumer = consumer
        self.catch_up(max(0.0, deadline - time.monotonic()))

    def catch_up(self, timeout_s: float) -> None:
        """Apply records until every partition is read up to its end offset as of now
        (the last stable offset: open transactions of other producers are waited for)."""
        consumer = self._require()
        deadline = time.monotonic() + timeout_s
        end = consumer.end_offsets(self._partitions)
        while any(consumer.position(tp) < end[tp] for tp in self._partitions):
            if time.monotonic() > deadline:
                raise CatchUpTimeout(f"could not read {self.topic!r} to its end in {timeout_s}s")
            self._apply(consumer.poll(timeout_ms=200))

    def refresh(self) -> None:
        """Apply whatever has already been fetched, without waiting."""
        self._apply(self._require().poll(timeout_ms=0))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _apply(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        for records in batch.values():
            for record in records:
                self._on_record(record.key, record.value, record.partition, record.offset)

    def _require(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError(f"reader of {self.topic!r} is not started")
        return self._consumer


class Table:
    """Read-only live view of a compacted topic: text key -> JSON object.

    Implements :class:`handlers.base.TableView`. Records whose key is not UTF-8 or whose
    value is not a JSON object are skipped with a warning (the previous value is kept).
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._view = CompactedView()
        self._reader: TopicReader | None = None

    def get(self, key: str) -> JsonObject | None:
        return self._view.get(key)

    def items(self) -> Iterator[tuple[str, JsonObject]]:
        return self._view.items()

    def __len__(self) -> int:
        return len(self._view)

    def observe(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        """Apply one record of the topic (read from it, or written by this process)."""
        if key is None:
            return
        try:
            text_key = key.decode()
            decoded = decode_json_object(value)
        except ValueError as exc:
            log.warning(
                "skipping a record of a compacted topic",
                extra={"topic": self.topic, "partition": partition, "offset": offset,
                       "error": str(exc)[:200]},
            )
            return
        self._view.apply(text_key, partition, offset, decoded)

    def start(self, client_config: Mapping[str, Any], timeout_s: float) -> None:
        self._reader = TopicReader(self.topic, client_config, self.observe)
        self._reader.start(timeout_s)

    def refresh(self) -> None:
        if self._reader is not None:
            self._reader.refresh()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class StateStore:
    """An action's durable state: ``<action>/<key>`` entries of the state topic.

    ``get`` sees updates staged by earlier records of the current batch; ``staged``
    turns them into records for the transaction; ``committed`` applies them once the
    transaction committed, ``abort`` forgets them.
    """

    def __init__(self, topic: str, action: str) -> None:
        self.topic = topic
        self._prefix = f"{action}/"
        self._table = Table(topic)
        self._overlay: dict[str, JsonObject | None] = {}
        self._reader: TopicReader | None = None

    def get(self, key: str) -> JsonObject | None:
        if key in self._overlay:
            return self._overlay[key]
        return self._table.get(key)

    def stage(self, updates: Mapping[str, JsonObject | None]) -> list[KafkaRecord]:
        """Stage updates; returns their records. Raises ``TypeError``/``ValueError`` when a
        value is not JSON-serialisable (nothing is staged then)."""
        records = [
            KafkaRecord(
                topic=self.topic,
                key=(self._prefix + key).encode(),
                value=None if value is None else json.dumps(
                    dict(value), separators=(",", ":"), sort_keys=True
                ).encode(),
            )
            for key, value in updates.items()
        ]
        self._overlay.update(updates)
        return records

    def observe(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        if key is not None and key.startswith(self._prefix.encode()):
            self._table.observe(key[len(self._prefix):], value, partition, offset)

    def committed(self) -> None:
        """The transaction holding the staged updates committed (``observe`` has been fed
        the written records with their offsets)."""
        self._overlay.clear()

    def abort(self) -> None:
        self._overlay.clear()

    def start(self, client_config: Mapping[str, Any], timeout_s: float) -> None:
        self._reader = TopicReader(self.topic, client_config, self.observe)
        self._reader.start(timeout_s)

    def catch_up(self, timeout_s: float) -> None:
        if self._reader is not None:
            self._reader.catch_up(timeout_s)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
