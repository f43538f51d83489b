"""Re-running one handler over past events: ``agora-events replay``.

The events of a time range (of one channel, or all) are copied back to the events topic
marked ``replay-for: <handler>`` and ``replayed-from: <topic>/<partition>/<offset>``, as
a DLQ replay is (:mod:`handlers.runtime.dlq`): every other handler skips them, and the
named one handles them again, its idempotency deciding what happens twice (docs/cli.md).
Copies are written in transactions of :data:`BATCH`, in each partition's order, so a
channel's events keep their order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from handlers.runtime import dlq
from handlers.runtime.clients import transactional_producer
from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.scan import Progress, bounds, open_consumer, read_forward
from handlers.runtime.txn import TransactionalPublisher

BATCH = 500


@dataclass(frozen=True, slots=True)
class Copy:
    source: str
    record: KafkaRecord


def copies(
    client_config: Mapping[str, Any],
    events_topic: str,
    handler: str,
    *,
    since_ms: int,
    until_ms: int | None,
    cname: str | None,
    progress: Progress | None = None,
) -> Iterator[Copy]:
    """The replay copy of every event in the range (of ``cname``), oldest first."""
    key = None if cname is None else cname.encode()
    consumer = open_consumer(client_config)
    try:
        ranges = bounds(consumer, events_topic, key=key, since_ms=since_ms, until_ms=until_ms)
        for record in read_forward(consumer, events_topic, ranges, progress=progress):
            if key is not None and record.key != key:
                continue
            source = f"{events_topic}/{record.partition}/{record.offset}"
            kept = tuple(
                (k, v) for k, v in record.headers or ()
                if k not in (dlq.REPLAYED_FROM, dlq.REPLAY_FOR)
            )
            marks = ((dlq.REPLAYED_FROM, source.encode()), (dlq.REPLAY_FOR, handler.encode()))
            yield Copy(source, KafkaRecord(events_topic, record.key, record.value, kept + marks))
    finally:
        consumer.close()


def rerun(
    client_config: Mapping[str, Any],
    chosen: Iterator[Copy],
    *,
    transactional_id: str,
    dry_run: bool,
    emit: Callable[[Copy], None],
) -> int:
    """Write (or, dry run, only show) the copies; returns how many."""
    count = 0
    publisher = None
    batch: list[KafkaRecord] = []
    try:
        for copy in chosen:
            emit(copy)
            count += 1
            if dry_run:
                continue
            if publisher is None:
                publisher = TransactionalPublisher(
                    transactional_producer(
                        client_config, transactional_id, transaction_timeout_ms=60_000
                    ),
                    transactional_id,
                )
            batch.append(copy.record)
            if len(batch) >= BATCH:
                publisher.publish(batch)
                batch = []
        if batch and publisher is not None:
            publisher.publish(batch)
    finally:
        if publisher is not None:
            publisher.close()
    return count
