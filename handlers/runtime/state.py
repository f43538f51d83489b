"""Views of compacted topics: the last JSON value per key, kept in memory.

A :class:`Table` is a read-only view of any compacted topic (e.g. the restart action's
view of ``agora.recording.sessions``): the runner loads it to the end before handling
records and refreshes it without blocking on every loop. The :class:`StateStore` is an
action's own state, a namespaced slice (``<action>/<key>``) of the state topic, whose
updates the runner writes in the same transaction as the offsets.

Both apply an entry only if it is newer (higher offset on the key's partition) than the
one they hold, so the process's own writes, applied as soon as their transaction
commits, are never overwritten by an older record read later from the topic.

Memory stays bounded (see :meth:`StateStore.expire`): every entry keeps its age (the
record's Kafka timestamp, or the time of an own write); the runner periodically
tombstones the action's entries older than a TTL, and a tombstone is forgotten once
the view's reader has read past its offset. From then on no older record of that key
can arrive (the reader reads each partition in offset order and never seeks back) and
any later record has a higher offset, so forgetting it keeps "newer offset wins".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kafka import TopicPartition

from handlers.runtime.client_protocols import Batch, ClientFactory, TopicConsumer
from handlers.runtime.kafka_record import KafkaRecord

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


def encode_json_object(value: JsonObject | None) -> bytes | None:
    """A state entry's value: compact JSON, keys sorted; ``None`` stays a tombstone. The
    state topic's two writers (:class:`StateStore` in the transaction, and the notes of
    :mod:`handlers.runtime.notes` outside it) both encode with this."""
    if value is None:
        return None
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True).encode()


def now_ms() -> int:
    return int(time.time() * 1000)


class CompactedView:
    """Last value per key, with the (partition, offset) it came from and its time. Pure.

    Tombstones are kept (value ``None``) until :meth:`forget_tombstones`: they stop an
    older value read late from bringing the key back.
    """

    def __init__(self) -> None:
        # key -> (partition, offset, value, timestamp ms)
        self._entries: dict[str, tuple[int, int, JsonObject | None, int]] = {}

    def apply(
        self, key: str, partition: int, offset: int, value: JsonObject | None,
        timestamp_ms: int = 0,
    ) -> bool:
        """Keep the entry unless the one held is newer; ``timestamp_ms`` is its age
        (0, unknown, expires first)."""
        current = self._entries.get(key)
        if current is not None and current[0] == partition and current[1] >= offset:
            return False
        self._entries[key] = (partition, offset, value, timestamp_ms)
        return True

    def older_than(self, cutoff_ms: int) -> list[str]:
        """Keys holding a value (not a tombstone) written before ``cutoff_ms``."""
        return [k for k, (_, _, v, ts) in self._entries.items() if v is not None and ts < cutoff_ms]

    def forget_tombstones(self, read_to: Mapping[int, int]) -> int:
        """Drop tombstones below ``read_to[partition]`` (the reader's next offset there);
        returns how many."""
        gone = [
            k for k, (p, o, v, _) in self._entries.items()
            if v is None and o < read_to.get(p, 0)
        ]
        for key in gone:
            del self._entries[key]
        return len(gone)

    def keys_held(self) -> int:
        """Entries in memory, tombstones included."""
        return len(self._entries)

    def held(self) -> dict[str, JsonObject | None]:
        """A copy of the entries in memory (``None``: a tombstone); one C-level copy, so
        another thread may take it while the owner applies records."""
        return {k: v for k, (_, _, v, _) in self._entries.copy().items()}

    def get(self, key: str) -> JsonObject | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[2]

    def items(self) -> Iterator[tuple[str, JsonObject]]:
        # Over a C-level copy: actions run on worker threads while the loop applies records.
        for key, (_, _, value, _) in self._entries.copy().items():
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
        clients: ClientFactory,
        on_record: Callable[[bytes | None, bytes | None, int, int, int], None],
    ) -> None:
        self.topic = topic
        self._clients = clients
        self._on_record = on_record
        self._consumer: TopicConsumer | None = None
        self._partitions: list[TopicPartition] = []

    def start(self, timeout_s: float) -> None:
        consumer = self._clients.topic_consumer()
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

    def positions(self) -> dict[int, int]:
        """The next offset to read, per partition: everything below was delivered."""
        consumer = self._require()
        return {tp.partition: consumer.position(tp) for tp in self._partitions}

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _apply(self, batch: Batch) -> None:
        for records in batch.values():
            for record in records:
                # No timestamp (-1, old message formats): its age counts from now.
                ts = record.timestamp
                if ts is None or ts < 0:
                    ts = now_ms()
                self._on_record(record.key, record.value, record.partition, record.offset, ts)

    def _require(self) -> TopicConsumer:
        if self._consumer is None:
            raise RuntimeError(f"reader of {self.topic!r} is not started")
        return self._consumer


class Table:
    """Read-only live view of a compacted topic: text key -> JSON object.

    Implements :class:`handlers.action_contract.TableView`. Records whose key is not UTF-8 or whose
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

    def observe(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int,
        timestamp_ms: int | None = None,
    ) -> None:
        """Apply one record of the topic (read from it, or written by this process);
        ``timestamp_ms`` is its Kafka timestamp or write time (``None``: now)."""
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
        self._view.apply(
            text_key, partition, offset, decoded,
            now_ms() if timestamp_ms is None else timestamp_ms,
        )

    def older_than(self, cutoff_ms: int) -> list[str]:
        return self._view.older_than(cutoff_ms)

    def forget_tombstones(self, read_to: Mapping[int, int] | None = None) -> int:
        """Drop tombstones the reader has read past (``read_to``: its positions, by
        default those of this table's own reader; none without one)."""
        if read_to is None:
            if self._reader is None:
                return 0
            read_to = self._reader.positions()
        return self._view.forget_tombstones(read_to)

    def keys_held(self) -> int:
        return self._view.keys_held()

    def held(self) -> dict[str, JsonObject | None]:
        return self._view.held()

    def start(self, clients: ClientFactory | Mapping[str, Any], timeout_s: float) -> None:
        """Load the topic to its end; ``clients``: a factory or a kafka-python client
        configuration."""
        self._reader = TopicReader(self.topic, _factory(clients), self.observe)
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
        self._staged_at: dict[str, int] = {}  # key -> stage sequence of its overlay value
        self._seq = 0
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
                value=encode_json_object(value),
            )
            for key, value in updates.items()
        ]
        self._overlay.update(updates)
        self._seq += 1
        for key in updates:
            self._staged_at[key] = self._seq
        return records

    def mark(self) -> int:
        """The stage sequence so far: pass it to :meth:`committed` when the transaction
        holding everything staged up to now commits (later stages stay in the overlay)."""
        return self._seq

    def observe(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int,
        timestamp_ms: int | None = None,
    ) -> None:
        if key is not None and key.startswith(self._prefix.encode()):
            self._table.observe(key[len(self._prefix):], value, partition, offset, timestamp_ms)

    def expire(self, now: int, ttl_ms: int, limit: int | None = None) -> list[KafkaRecord]:
        """Stage tombstones for entries older than ``ttl_ms`` at ``now`` (ms), at most
        ``limit``; returns their records. Keys with an update staged are left alone. The
        entries read as absent at once; memory is freed when the tombstones commit
        (``observe`` replaces each value by its tombstone, :meth:`forget_tombstones`
        drops those later).

        Another instance of the action may write a key between this store's last
        catch-up and the commit of its tombstone, which would then delete that fresh
        value; the runner catches up right before expiring, so this needs a key idle for
        the whole TTL to be written again within that moment.
        """
        keys = [k for k in self._table.older_than(now - ttl_ms) if k not in self._overlay]
        if limit is not None:
            keys = keys[:limit]
        return self.stage(dict.fromkeys(keys))

    def forget_tombstones(self, read_to: Mapping[int, int] | None = None) -> int:
        """Drop tombstones the reader has read past (see the module docstring);
        ``read_to``: its positions, by default asked of the started reader."""
        if read_to is None:
            if self._reader is None:
                return 0
            read_to = self._reader.positions()
        return self._table.forget_tombstones(read_to)

    def live_keys(self) -> int:
        """Entries holding a value (committed ones; staged updates not counted)."""
        return len(self._table)

    def keys_held(self) -> int:
        """Entries in memory, tombstones included."""
        return self._table.keys_held()

    def held(self) -> dict[str, JsonObject | None]:
        """Committed entries in memory, tombstones (``None``) included."""
        return self._table.held()

    def committed(self, upto: int | None = None) -> None:
        """The transaction holding the staged updates (those staged up to ``upto``, a
        :meth:`mark`; all when ``None``) committed: ``observe`` has been fed the written
        records with their offsets."""
        if upto is None:
            self._overlay.clear()
            self._staged_at.clear()
            return
        for key in [k for k, seq in self._staged_at.items() if seq <= upto]:
            del self._staged_at[key]
            self._overlay.pop(key, None)

    def abort(self) -> None:
        self._overlay.clear()
        self._staged_at.clear()

    def start(self, clients: ClientFactory | Mapping[str, Any], timeout_s: float) -> None:
        """Load the topic to its end; ``clients``: a factory or a kafka-python client
        configuration."""
        self._reader = TopicReader(self.topic, _factory(clients), self.observe)
        self._reader.start(timeout_s)

    def catch_up(self, timeout_s: float) -> None:
        if self._reader is not None:
            self._reader.catch_up(timeout_s)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _factory(source: ClientFactory | Mapping[str, Any]) -> ClientFactory:
    from handlers.runtime.clients import client_factory  # clients imports this module

    return client_factory(source)
