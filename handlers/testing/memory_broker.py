"""An in-memory Kafka broker speaking the runtime's client protocols.

:class:`MemoryBroker` holds topics (partitioned logs), consumer groups (committed
offsets) and transactional ids (epochs); :meth:`MemoryBroker.clients` is a
:class:`handlers.runtime.client_protocols.ClientFactory` whose consumers and producers
(:mod:`handlers.testing.memory_clients`) act on it. Enough of Kafka for the handler
runtime, with Kafka's rules:

- keyed records go to ``murmur2(key) % partitions`` (kafka-python's partitioner, so a
  key lands on the partition it would on a broker), unkeyed ones round-robin;
- a transaction's records are in the log from ``send`` on, with a control record
  after them when it commits or aborts; ``read_committed`` readers stop at the first
  open transaction (the last stable offset) and skip aborted records, while
  ``read_uncommitted`` ones see everything but control records;
- ``init_transactions`` aborts what a previous holder of the transactional id left open
  and fences that producer (:class:`kafka.errors.ProducerFencedError`);
- offsets sent with a transaction are committed with it, and only if the consumer's
  group metadata is current (:class:`kafka.errors.IllegalGenerationError` otherwise);
- a group's member is assigned every partition of its topics on its first ``poll``,
  after which positions start at the committed offset (the earliest without one).

One member per group: rebalances between members are left to the real-broker tests,
and a second member joining a group raises ``NotImplementedError``. Compaction is
explicit (:meth:`MemoryBroker.compact`), as a log cleaner run would be.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kafka import TopicPartition
from kafka import errors as kafka_errors
from kafka.partitioner.default import murmur2
from kafka.structs import OffsetAndMetadata

if TYPE_CHECKING:
    from handlers.testing.memory_clients import MemoryClientFactory

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """A record as consumers get it (the fields of kafka-python's ``ConsumerRecord``
    that the runtime reads)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    """What a transaction needs to commit a member's offsets (and fence a stale one)."""

    group_id: str
    generation_id: int
    member_id: str


@dataclass(eq=False)
class Transaction:
    state: str = "open"  # open | committed | aborted
    partitions: dict[TopicPartition, int] = field(default_factory=dict)
    """Where it wrote first in each partition (bounds the last stable offset there)."""
    offsets: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)


@dataclass(slots=True)
class _Slot:
    record: MemoryRecord | None  # None: a control record, or one removed by compaction
    txn: Transaction | None = None

    def visible(self, committed_only: bool) -> bool:
        if self.record is None:
            return False
        return not committed_only or self.txn is None or self.txn.state == "committed"


@dataclass(eq=False)
class _Group:
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    member: object | None = None
    generation: int = 0


class MemoryBroker:
    """Topics, groups and transactions in memory; thread-safe (one lock)."""

    def __init__(self, now_ms: Callable[[], int] | None = None) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._logs: dict[str, list[list[_Slot]]] = {}
        self._groups: dict[str, _Group] = {}
        self._epochs: dict[str, tuple[int, Transaction | None]] = {}
        self._open: set[Transaction] = set()
        self._round_robin = itertools.count()
        self._members = itertools.count(1)
        self._failing_commits = 0

    # -- administration and test helpers ---------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> None:
        with self._cond:
            if name in self._logs:
                raise kafka_errors.TopicAlreadyExistsError(name)
            self._logs[name] = [[] for _ in range(partitions)]
            self._cond.notify_all()

    def clients(self) -> MemoryClientFactory:
        """A client factory for the runtime (``ActionRunner(..., clients=...)``)."""
        from handlers.testing.memory_clients import MemoryClientFactory

        return MemoryClientFactory(self)

    def produce(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: Iterable[tuple[str, bytes]] = (), *, timestamp_ms: int | None = None,
    ) -> MemoryRecord:
        """Write one record outside any transaction (as an ``acks=all`` producer would)."""
        return self.append(topic, key, value, tuple(headers), timestamp_ms, None)

    def records(self, topic: str, *, committed_only: bool = True) -> list[MemoryRecord]:
        """Every record of ``topic`` a fresh reader would get, in partition order."""
        with self._cond:
            return [slot.record for log in self._require(topic) for slot in log
                    if slot.visible(committed_only) and slot.record is not None]

    def committed_offsets(self, group: str, topic: str) -> dict[int, int | None]:
        with self._cond:
            committed = self._groups.get(group, _Group()).committed
            return {p: committed.get(TopicPartition(topic, p))
                    for p in range(len(self._require(topic)))}

    def fail_commits(self, count: int = 1) -> None:
        """The next ``count`` transaction commits fail (a request timeout, as when the
        coordinator does not answer): the transaction stays open for the producer to abort."""
        with self._cond:
            self._failing_commits += count

    def compact(self, topic: str) -> None:
        """Remove every committed record a later committed record of its key supersedes
        (offsets stay: the log has gaps, as after the log cleaner)."""
        with self._cond:
            for log in self._require(topic):
                latest: dict[bytes | None, int] = {}
                for index, slot in enumerate(log):
                    if slot.visible(True) and slot.record is not None:
                        latest[slot.record.key] = index
                for index, slot in enumerate(log):
                    if (slot.visible(True) and slot.record is not None
                            and latest[slot.record.key] != index):
                        log[index] = _Slot(None)

    # -- what the clients call -------------------------------------------------------

    def partitions_for(self, topic: str) -> set[int] | None:
        with self._cond:
            log = self._logs.get(topic)
            return None if log is None else set(range(len(log)))

    def append(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers,
        timestamp_ms: int | None, txn: Transaction | None, partition: int | None = None,
    ) -> MemoryRecord:
        with self._cond:
            logs = self._logs.get(topic)
            if logs is None:
                # kafka-python waits max_block_ms for the topic's metadata, then gives up.
                raise kafka_errors.KafkaTimeoutError(f"topic {topic!r} not in metadata")
            if partition is None:
                spread = next(self._round_robin) if key is None else murmur2(key) & 0x7FFFFFFF
                partition = spread % len(logs)
            log = logs[partition]
            record = MemoryRecord(topic, partition, len(log),
                                  self._now_ms() if timestamp_ms is None else timestamp_ms,
                                  key, value, headers)
            log.append(_Slot(record, txn))
            if txn is not None:
                txn.partitions.setdefault(TopicPartition(topic, partition), record.offset)
            self._cond.notify_all()
            return record

    def read(
        self, tp: TopicPartition, position: int, limit: int, committed_only: bool
    ) -> tuple[list[MemoryRecord], int]:
        """Up to ``limit`` records from ``position``; returns them and the next position
        (past skipped control and aborted records, never past the readable end)."""
        with self._cond:
            log = self._partition(tp)
            end = self.end_offset(tp, committed_only)
            found: list[MemoryRecord] = []
            while position < end and len(found) < limit:
                slot = log[position]
                if slot.visible(committed_only) and slot.record is not None:
                    found.append(slot.record)
                position += 1
            return found, position

    def end_offset(self, tp: TopicPartition, committed_only: bool) -> int:
        """The last stable offset (``read_committed``) or the high watermark."""
        with self._cond:
            end = len(self._partition(tp))
            if committed_only:
                end = min([end, *(t.partitions[tp] for t in self._open if tp in t.partitions)])
            return end

    def wait(self, timeout_s: float) -> None:
        """Until something is written or committed, at most ``timeout_s``."""
        with self._cond:
            self._cond.wait(timeout_s)

    def committed(self, group: str, tp: TopicPartition) -> int | None:
        with self._cond:
            return self._groups.get(group, _Group()).committed.get(tp)

    def join(self, group: str, member: object) -> GroupMetadata:
        with self._cond:
            state = self._groups.setdefault(group, _Group())
            if state.member is not None and state.member is not member:
                raise NotImplementedError(
                    f"group {group!r} has a member already: rebalances between members "
                    "need a real broker")
            state.member = member
            state.generation += 1
            return GroupMetadata(group, state.generation, f"member-{next(self._members)}")

    def leave(self, group: str, member: object) -> None:
        with self._cond:
            state = self._groups.get(group)
            if state is not None and state.member is member:
                state.member = None

    def init_transactions(self, transactional_id: str) -> int:
        """A new epoch for the id: what its previous holder left open is aborted."""
        with self._cond:
            epoch, open_txn = self._epochs.get(transactional_id, (0, None))
            if open_txn is not None:
                self._end(open_txn, commit=False)
            self._epochs[transactional_id] = (epoch + 1, None)
            return epoch + 1

    def begin(self, transactional_id: str, epoch: int) -> Transaction:
        with self._cond:
            self.check_epoch(transactional_id, epoch)
            txn = Transaction()
            self._open.add(txn)
            self._epochs[transactional_id] = (epoch, txn)
            return txn

    def check_epoch(self, transactional_id: str, epoch: int) -> None:
        with self._cond:
            if self._epochs.get(transactional_id, (0, None))[0] != epoch:
                raise kafka_errors.ProducerFencedError(
                    f"transactional id {transactional_id!r} has a newer producer")

    def add_offsets(
        self, txn: Transaction, group: GroupMetadata | str,
        offsets: Mapping[TopicPartition, OffsetAndMetadata | int],
    ) -> None:
        with self._cond:
            metadata = group if isinstance(group, GroupMetadata) else None
            group_id = group.group_id if isinstance(group, GroupMetadata) else group
            state = self._groups.get(group_id, _Group())
            if metadata is not None and metadata.generation_id != state.generation:
                # The member lost its partitions: its offsets must not be committed.
                raise kafka_errors.IllegalGenerationError(
                    f"group {group_id!r} moved on to generation {state.generation}")
            plain = {tp: o.offset if isinstance(o, OffsetAndMetadata) else int(o)
                     for tp, o in offsets.items()}
            txn.offsets.setdefault(group_id, {}).update(plain)

    def end(self, transactional_id: str, epoch: int, txn: Transaction, commit: bool) -> None:
        with self._cond:
            self.check_epoch(transactional_id, epoch)
            if commit and self._failing_commits:
                self._failing_commits -= 1
                raise kafka_errors.KafkaTimeoutError("commit not acknowledged (injected)")
            self._end(txn, commit)
            self._epochs[transactional_id] = (epoch, None)

    def _end(self, txn: Transaction, commit: bool) -> None:
        txn.state = "committed" if commit else "aborted"
        self._open.discard(txn)
        for tp in txn.partitions:
            self._partition(tp).append(_Slot(None, txn))  # the control record
        if commit:
            for group_id, offsets in txn.offsets.items():
                self._groups.setdefault(group_id, _Group()).committed.update(offsets)
        self._cond.notify_all()

    def _require(self, topic: str) -> list[list[_Slot]]:
        logs = self._logs.get(topic)
        if logs is None:
            raise kafka_errors.UnknownTopicOrPartitionError(topic)
        return logs

    def _partition(self, tp: TopicPartition) -> list[_Slot]:
        logs = self._require(tp.topic)
        if not 0 <= tp.partition < len(logs):
            raise kafka_errors.UnknownTopicOrPartitionError(f"{tp.topic}/{tp.partition}")
        return logs[tp.partition]
