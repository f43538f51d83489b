"""Bounded reads of a topic for the operator commands: only the partitions and the time
range asked for, forwards (timeline, replay) or newest first (dead letters).

A channel's records are on the partition its key hashes to (the producers' default
partitioner, murmur2 as in the Java client), and the broker's time index gives the first
offset at or after a time: a read of one channel over one hour touches one partition from
that offset on, not the whole topic. Reads are ``read_committed`` (handler outputs are
transactional) and stop at the end offsets as of the start, so they finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from handlers.runtime.clients import wait_for_topic
from handlers.runtime.state import CatchUpTimeout

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``, called now and then during a long read."""

TOPIC_WAIT_S = 5.0
STALL_S = 30.0
"""A read that gets no record for this long while records remain is abandoned."""


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the default partitioner puts ``key`` on."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Bounds:
    """Offsets ``[start, end)`` of one partition for a time range."""

    partition: int
    start: int
    end: int


def open_consumer(client_config: Mapping[str, Any]) -> KafkaConsumer:
    return KafkaConsumer(
        **client_config, group_id=None, enable_auto_commit=False,
        isolation_level="read_committed", auto_offset_reset="earliest",
    )


def bounds(
    consumer: KafkaConsumer,
    topic: str,
    *,
    key: bytes | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> list[Bounds]:
    """Per partition to read (only the key's one when ``key`` is given): the first offset
    at or after ``since_ms`` and the first at or after ``until_ms`` (else the end)."""
    partitions = sorted(wait_for_topic(consumer, topic, TOPIC_WAIT_S))
    if key is not None:
        partitions = [partitions[partition_for(key, len(partitions))]]
    tps = [TopicPartition(topic, p) for p in partitions]
    end = consumer.end_offsets(tps)
    begin = consumer.beginning_offsets(tps)

    def at(ms: int | None, default: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        if ms is None:
            return dict(default)
        found = consumer.offsets_for_times({tp: max(ms, 0) for tp in tps})
        return {tp: end[tp] if found.get(tp) is None else found[tp].offset for tp in tps}

    start = at(since_ms, begin)
    stop = at(until_ms, end)
    return [Bounds(tp.partition, start[tp], min(stop[tp], end[tp])) for tp in tps]


def read_forward(
    consumer: KafkaConsumer,
    topic: str,
    ranges: Sequence[Bounds],
    *,
    progress: Progress | None = None,
) -> Iterator[Any]:
    """Every record of ``ranges``, each partition in offset order (partitions interleave)."""
    todo = {TopicPartition(topic, b.partition): b for b in ranges if b.start < b.end}
    if not todo:
        return
    consumer.assign(list(todo))
    for tp, b in todo.items():
        consumer.seek(tp, b.start)
    total = sum(b.end - b.start for b in todo.values())
    done = 0
    last_record = time.monotonic()
    while todo:
        if time.monotonic() - last_record > STALL_S:
            raise CatchUpTimeout(f"no record from {topic!r} for {STALL_S:g}s")
        for tp, batch in consumer.poll(timeout_ms=200).items():
            wanted = todo.get(tp)
            if wanted is None:
                continue
            last_record = time.monotonic()
            for record in batch:
                if record.offset >= wanted.end:
                    break
                done += 1
                yield record
        # Transaction markers and aborted records advance the position without records.
        for tp in [tp for tp, b in todo.items() if consumer.position(tp) >= b.end]:
            del todo[tp]
            last_record = time.monotonic()
        if todo:
            consumer.assign(list(todo))
        if progress is not None:
            progress(topic, done, total)


def read_backward(
    consumer: KafkaConsumer,
    topic: str,
    b: Bounds,
    *,
    chunk: int = 500,
) -> Iterator[Any]:
    """The records of one partition range, newest first, reading ``chunk`` offsets at a
    time from the end: the first lines come after one chunk, whatever the topic's size."""
    tp = TopicPartition(topic, b.partition)
    high = b.end
    while high > b.start:
        low = max(b.start, high - chunk)
        consumer.assign([tp])
        consumer.seek(tp, low)
        records: list[Any] = []
        last_record = time.monotonic()
        while consumer.position(tp) < high:
            if time.monotonic() - last_record > STALL_S:
                raise CatchUpTimeout(f"no record from {topic!r} for {STALL_S:g}s")
            for got, batch in consumer.poll(timeout_ms=200).items():
                if got != tp:
                    continue  # fetched for an earlier assignment
                last_record = time.monotonic()
                records.extend(r for r in batch if low <= r.offset < high)
        yield from reversed(records)
        high = low
