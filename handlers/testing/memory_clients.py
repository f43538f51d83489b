"""Consumers and producers of a :class:`~handlers.testing.memory_broker.MemoryBroker`,
with the kafka-python calls the runtime makes (see
:mod:`handlers.runtime.client_protocols`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import TopicPartition
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata

from handlers.testing.memory_broker import GroupMetadata, MemoryBroker, MemoryRecord, Transaction


@dataclass(frozen=True, slots=True)
class RecordWritten:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Written:
    """The future ``send`` returns; the write happened already."""

    metadata: RecordWritten

    def get(self, timeout: float | None = None) -> RecordWritten:
        return self.metadata


class MemoryConsumer:
    """A consumer of a :class:`MemoryBroker`: by hand (``assign``) or as the one member
    of a group (``subscribe``; partitions assigned on the first ``poll``)."""

    def __init__(self, broker: MemoryBroker, *, group_id: str | None = None,
                 isolation_level: str = "read_committed", max_poll_records: int = 500) -> None:
        self._broker = broker
        self._group_id = group_id
        self._committed_only = isolation_level == "read_committed"
        self._max_poll_records = max_poll_records
        self._assigned: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._topics: list[str] | None = None
        self._listener: Any = None
        self._metadata: GroupMetadata | None = None
        self._next = 0  # which partition a poll reads first (fairness)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._broker.partitions_for(topic)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        if self._group_id is None:
            raise kafka_errors.IllegalStateError("subscribe needs a group_id")
        self._topics, self._listener = list(topics), listener

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def group_metadata(self) -> GroupMetadata:
        if self._metadata is None:
            raise kafka_errors.IllegalStateError("not a member of a group yet")
        return self._metadata

    def poll(self, timeout_ms: int = 0, max_records: int | None = None,
             ) -> dict[TopicPartition, list[MemoryRecord]]:
        self._join_if_needed()
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            batch = self._fetch(max_records or self._max_poll_records)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            self._broker.wait(remaining)

    def position(self, partition: TopicPartition) -> int:
        if partition not in self._positions:
            committed = None
            if self._group_id is not None:
                committed = self._broker.committed(self._group_id, partition)
            self._positions[partition] = committed or 0
        return self._positions[partition]

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._positions[partition] = offset

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions or self._assigned:
            self._positions[tp] = 0

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.end_offset(tp, self._committed_only) for tp in partitions}

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._broker.end_offset(partition, False)

    def committed(self, partition: TopicPartition) -> int | None:
        if self._group_id is None:
            return None
        return self._broker.committed(self._group_id, partition)

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def close(self, autocommit: bool = True) -> None:
        if self._group_id is not None and self._metadata is not None:
            self._broker.leave(self._group_id, self)
        self._assigned, self._metadata = [], None

    def _join_if_needed(self) -> None:
        """Join on the first poll, and again when a subscribed topic gains partitions
        (the metadata change a broker would rebalance on)."""
        if self._topics is None or self._group_id is None:
            return
        wanted = [TopicPartition(topic, p) for topic in self._topics
                  for p in sorted(self._broker.partitions_for(topic) or ())]
        if self._metadata is not None and wanted == self._assigned:
            return
        if self._metadata is not None and self._listener is not None:
            self._listener.on_partitions_revoked(set(self._assigned))
        self._metadata = self._broker.join(self._group_id, self)
        kept = set(self._assigned) & set(wanted)
        self._positions = {tp: o for tp, o in self._positions.items() if tp in kept}
        self._paused &= kept
        self._assigned = wanted
        if self._listener is not None:
            self._listener.on_partitions_assigned(set(wanted))

    def _fetch(self, limit: int) -> dict[TopicPartition, list[MemoryRecord]]:
        batch: dict[TopicPartition, list[MemoryRecord]] = {}
        order = self._assigned[self._next:] + self._assigned[:self._next]
        self._next = (self._next + 1) % max(1, len(self._assigned))
        for tp in order:
            if tp in self._paused or limit <= 0:
                continue
            records, self._positions[tp] = self._broker.read(
                tp, self.position(tp), limit, self._committed_only)
            if records:
                batch[tp] = records
                limit -= len(records)
        return batch


class MemoryProducer:
    """A producer of a :class:`MemoryBroker`; transactional when given an id."""

    def __init__(self, broker: MemoryBroker, transactional_id: str | None = None) -> None:
        self._broker = broker
        self._transactional_id = transactional_id
        self._epoch: int | None = None
        self._txn: Transaction | None = None

    def init_transactions(self) -> None:
        if self._transactional_id is None:
            raise kafka_errors.IllegalStateError("not a transactional producer")
        self._epoch = self._broker.init_transactions(self._transactional_id)

    def begin_transaction(self) -> None:
        if self._txn is not None:
            raise kafka_errors.IllegalStateError("a transaction is open already")
        self._txn = self._broker.begin(*self._id_and_epoch())

    def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None, partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Written:
        if self._transactional_id is not None:
            self._broker.check_epoch(*self._id_and_epoch())
            if self._txn is None:
                raise kafka_errors.IllegalStateError("send outside a transaction")
        record = self._broker.append(topic, key, value, tuple(headers or ()), timestamp_ms,
                                     self._txn, partition)
        return Written(RecordWritten(record.topic, record.partition, record.offset))

    def send_offsets_to_transaction(
        self, offsets: Mapping[TopicPartition, OffsetAndMetadata | int],
        consumer_group_id: GroupMetadata | str,
    ) -> None:
        self._broker.check_epoch(*self._id_and_epoch())
        self._broker.add_offsets(self._require_txn(), consumer_group_id, offsets)

    def commit_transaction(self) -> None:
        self._broker.end(*self._id_and_epoch(), self._require_txn(), commit=True)
        self._txn = None

    def abort_transaction(self) -> None:
        self._broker.end(*self._id_and_epoch(), self._require_txn(), commit=False)
        self._txn = None

    def partitions_for(self, topic: str) -> set[int] | None:
        return self._broker.partitions_for(topic)

    def flush(self, timeout: float | None = None) -> None:
        """Every send is written at once: nothing to wait for."""

    def close(self, timeout: float | None = None) -> None:
        """Like kafka-python: an open transaction stays open (its successor aborts it)."""

    def _id_and_epoch(self) -> tuple[str, int]:
        if self._transactional_id is None or self._epoch is None:
            raise kafka_errors.IllegalStateError("transactions were not initialised")
        return self._transactional_id, self._epoch

    def _require_txn(self) -> Transaction:
        if self._txn is None:
            raise kafka_errors.IllegalStateError("no transaction is open")
        return self._txn


class MemoryClientFactory:
    """The runtime's :class:`~handlers.runtime.client_protocols.ClientFactory` over a
    :class:`MemoryBroker`."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    def group_consumer(
        self, group_id: str, *, client_id: str, max_poll_interval_ms: int,
        max_poll_records: int, session_timeout_ms: int = 45_000,
    ) -> MemoryConsumer:
        return MemoryConsumer(self.broker, group_id=group_id, max_poll_records=max_poll_records)

    def topic_consumer(self) -> MemoryConsumer:
        return MemoryConsumer(self.broker)

    def durable_producer(self, client_id: str) -> MemoryProducer:
        return MemoryProducer(self.broker)

    def transactional_producer(
        self, transactional_id: str, *, transaction_timeout_ms: int
    ) -> MemoryProducer:
        producer = MemoryProducer(self.broker, transactional_id)
        producer.init_transactions()
        return producer
