"""Reading the DLQ and replaying dead letters into their original topics.

Each handler has its own replay position: consumer group ``<prefix>.dlq-replay.<handler>``
on the DLQ topic. A dead letter of handler H at offset o is *pending* while o is at or
above that group's committed offset. A replay publishes the records (see
:func:`handlers.runtime.dlq.replay`) and advances the groups' offsets in one transaction,
so a record is replayed once even if the command is interrupted, and two replays running
at once fence each other (one transactional id). A dry run reads the same way and writes
nothing at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from handlers.runtime import dlq
from handlers.runtime.clients import transactional_producer, wait_for_topic
from handlers.runtime.offsets import Partition
from handlers.runtime.records import KafkaRecord, header_value
from handlers.runtime.state import CatchUpTimeout
from handlers.runtime.txn import TransactionalPublisher

REPLAY_BATCH = 500
"""Dead letters replayed per transaction."""


def replay_group(group_prefix: str, handler: str) -> str:
    return f"{group_prefix}.dlq-replay.{handler}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ record as read, with its provenance headers decoded."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def handler(self) -> str | None:
        return header_value(self.headers, dlq.DLQ_HANDLER)

    def summary(self, dlq_topic: str, pending: bool) -> dict[str, Any]:
        def h(name: str) -> str | None:
            return header_value(self.headers, name)

        return {
            "dlq": f"{dlq_topic}/{self.partition}/{self.offset}",
            "handler": self.handler,
            "topic": h(dlq.DLQ_TOPIC),
            "partition": h(dlq.DLQ_PARTITION),
            "offset": h(dlq.DLQ_OFFSET),
            "error": h(dlq.DLQ_ERROR),
            "attempts": h(dlq.DLQ_ATTEMPTS),
            "at": h(dlq.DLQ_AT),
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "noticeId": h("noticeId"),
            "eventType": h("eventType"),
            "pending": pending,
        }


@dataclass
class ReplayResult:
    """What a replay did (or, dry run, would do)."""

    replayed: list[DeadLetter] = field(default_factory=list)
    not_replayable: list[tuple[DeadLetter, str]] = field(default_factory=list)


class DlqReader:
    """Reads the whole DLQ topic (``read_committed``) and knows each handler's position."""

    def __init__(self, client_config: Mapping[str, Any], dlq_topic: str, group_prefix: str):
        self.client_config = dict(client_config)
        self.topic = dlq_topic
        self.group_prefix = group_prefix
        self._positions: dict[str, dict[int, int]] = {}

    def records(self, timeout_s: float = 30.0) -> Iterator[DeadLetter]:
        """Every record up to the end offsets as of the call, partition by partition."""
        consumer = KafkaConsumer(
            **self.client_config, group_id=None, enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="earliest",
        )
        try:
            partitions = sorted(wait_for_topic(consumer, self.topic, timeout_s))
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            deadline = time.monotonic() + timeout_s
            buffered: dict[int, list[DeadLetter]] = {p: [] for p in partitions}
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise CatchUpTimeout(f"could not read {self.topic!r} in {timeout_s}s")
                for tp, batch in consumer.poll(timeout_ms=200).items():
                    buffered[tp.partition].extend(
                        DeadLetter(r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                        for r in batch
                        if r.offset < end[tp]
                    )
        finally:
            consumer.close()
        for partition in partitions:
            yield from buffered[partition]

    def position(self, handler: str, partition: int) -> int:
        """The handler's committed replay offset on ``partition`` (0 if none)."""
        if handler not in self._positions:
            consumer = KafkaConsumer(
                **self.client_config, group_id=replay_group(self.group_prefix, handler),
                enable_auto_commit=False,
            )
            try:
                partitions = wait_for_topic(consumer, self.topic, 10.0)
                self._positions[handler] = {
                    p: consumer.committed(TopicPartition(self.topic, p)) or 0 for p in partitions
                }
            finally:
                consumer.close()
        return self._positions[handler].get(partition, 0)

    def pending(self, record: DeadLetter) -> bool:
        handler = record.handler
        return handler is not None and record.offset >= self.position(handler, record.partition)


def list_dead_letters(
    reader: DlqReader, *, handler: str | None, limit: int | None, emit: Callable[[str], None]
) -> int:
    """Emit one JSON line per dead letter (optionally of one handler); returns the count."""
    count = 0
    for record in reader.records():
        if handler is not None and record.handler != handler:
            continue
        if limit is not None and count >= limit:
            break
        emit(json.dumps(record.summary(reader.topic, reader.pending(record)), sort_keys=True))
        count += 1
    return count


def replay_dead_letters(
    reader: DlqReader,
    *,
    handler: str | None,
    limit: int | None,
    dry_run: bool,
    emit: Callable[[str], None],
    transactional_id: str,
) -> ReplayResult:
    """Replay pending dead letters (of ``handler``, or of every handler), at most ``limit``.

    Dry run: reads and emits what it would do; produces nothing and commits nothing.
    """
    result = ReplayResult()
    chosen: list[tuple[DeadLetter, KafkaRecord]] = []
    for record in reader.records():
        if limit is not None and len(chosen) >= limit:
            break
        owner = record.handler
        if handler is not None and owner != handler:
            continue
        if owner is not None and not reader.pending(record):
            continue
        try:
            replay = dlq.replay(
                dlq_topic=reader.topic, partition=record.partition, offset=record.offset,
                key=record.key, value=record.value, headers=record.headers,
            )
        except dlq.NotReplayable as exc:
            result.not_replayable.append((record, str(exc)))
            emit(f"cannot replay {reader.topic}/{record.partition}/{record.offset}: {exc}")
            continue
        chosen.append((record, replay))
        verb = "would replay" if dry_run else "replaying"
        key = "-" if record.key is None else record.key.decode("utf-8", "replace")
        emit(
            f"{verb} {reader.topic}/{record.partition}/{record.offset} -> {replay.topic} "
            f"handler={owner} key={key} noticeId={header_value(record.headers, 'noticeId')}"
        )
    if dry_run or not chosen:
        result.replayed = [record for record, _ in chosen]
        return result
    publisher = TransactionalPublisher(
        transactional_producer(
            reader.client_config, transactional_id, transaction_timeout_ms=60_000
        ),
        transactional_id,
    )
    try:
        for start in range(0, len(chosen), REPLAY_BATCH):
            batch = chosen[start : start + REPLAY_BATCH]
            publisher.publish([replay for _, replay in batch], _advance(reader, batch))
            result.replayed.extend(record for record, _ in batch)
    finally:
        publisher.close()
    return result


def _advance(
    reader: DlqReader, batch: list[tuple[DeadLetter, KafkaRecord]]
) -> list[tuple[Any, dict[Partition, int]]]:
    """Per replay group (bare group id): the offsets to commit after ``batch``."""
    groups: dict[str, dict[Partition, int]] = {}
    for record, _ in batch:
        # Replayable records always name their handler (dlq.replay checks it).
        group = replay_group(reader.group_prefix, record.handler or "")
        offsets = groups.setdefault(group, {})
        tp = (reader.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return list(groups.items())
