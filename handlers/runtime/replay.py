"""Reading the DLQ, and replaying or discarding dead letters.

**Positions.** Each handler has its own replay position per DLQ partition: consumer group
``<prefix>.dlq-replay.<handler>``. Its committed offset ``W`` says every letter of that
handler below ``W`` is settled; the commit's metadata lists letters at or above ``W``
settled out of order (by a filtered replay or discard: ``settled:12,15-17``). A letter is
*pending* while its offset is at or above ``W`` and not listed. A replay publishes the
copies (:func:`handlers.runtime.dlq.replay`) and commits the new positions in one
transaction, so a letter is replayed once even if the command is interrupted, and two
replays at once fence each other (one transactional id). A discard commits positions
only. A dry run reads the same way and writes nothing at all.

**Reading.** ``list`` reads newest first, a chunk at a time from the end of each partition
and merged by time, so the first lines come at once whatever the topic's size; ``replay``
and ``discard`` read oldest first (a channel's letters are replayed in order). Filters
narrow the read itself where they can: ``--cname`` to the partition the key hashes to,
``--since``/``--until`` through the broker's time index, a letter id to one offset.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from handlers.runtime import dlq
from handlers.runtime.clients import transactional_producer, wait_for_topic
from handlers.runtime.kafka_record import KafkaRecord, header_value
from handlers.runtime.scan import Bounds, bounds, open_consumer, read_backward, read_forward
from handlers.runtime.txn import TransactionalPublisher

REPLAY_BATCH = 500
"""Dead letters replayed per transaction."""

MAX_METADATA_CHARS = 3000
"""Below the broker's default ``offset.metadata.max.bytes`` (4096)."""

CONSUMED_TOPICS = ("events", "actions")
"""TopicNames fields the handlers consume (events; actions for notify's extra input):
the only topics a replay writes to."""


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
    timestamp: int = 0

    @property
    def handler(self) -> str | None:
        return header_value(self.headers, dlq.DLQ_HANDLER)

    @property
    def cname(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")

    @property
    def at_ms(self) -> int:
        at = header_value(self.headers, dlq.DLQ_AT)
        return int(at) if at and at.isdigit() else self.timestamp

    def letter_id(self, dlq_topic: str) -> str:
        return f"{dlq_topic}/{self.partition}/{self.offset}"

    def summary(self, dlq_topic: str, pending: bool) -> dict[str, Any]:
        def h(name: str) -> str | None:
            return header_value(self.headers, name)

        return {
            "dlq": self.letter_id(dlq_topic),
            "handler": self.handler,
            "topic": h(dlq.DLQ_TOPIC),
            "partition": h(dlq.DLQ_PARTITION),
            "offset": h(dlq.DLQ_OFFSET),
            "error": h(dlq.DLQ_ERROR),
            "attempts": h(dlq.DLQ_ATTEMPTS),
            "at": h(dlq.DLQ_AT),
            "key": self.cname,
            "noticeId": h("noticeId"),
            "eventType": h("eventType"),
            "pending": pending,
        }


def parse_letter_id(text: str, dlq_topic: str) -> tuple[int, int]:
    """``<dlq topic>/<partition>/<offset>`` (as ``dlq list`` prints it) -> (partition,
    offset); ValueError naming the expected form."""
    topic, _, rest = text.rpartition("/")
    topic, _, partition = topic.rpartition("/")
    if topic != dlq_topic or not partition.isdigit() or not rest.isdigit():
        raise ValueError(f"expected {dlq_topic}/PARTITION/OFFSET, as `dlq list` prints it")
    return int(partition), int(rest)


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which dead letters a command is about; every field set must match."""

    since_ms: int | None = None
    until_ms: int | None = None
    cname: str | None = None
    event: str | None = None
    handler: str | None = None
    error: str | None = None
    letter: tuple[int, int] | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.letter is not None and (letter.partition, letter.offset) != self.letter:
            return False
        if self.handler is not None and letter.handler != self.handler:
            return False
        if self.cname is not None and letter.cname != self.cname:
            return False
        if self.event is not None and self.event not in (
            header_value(letter.headers, "eventType"), _msg_name(letter)
        ):
            return False
        if self.error is not None and self.error.lower() not in (
            header_value(letter.headers, dlq.DLQ_ERROR) or ""
        ).lower():
            return False
        if self.since_ms is not None and letter.timestamp < self.since_ms:
            return False
        return self.until_ms is None or letter.timestamp < self.until_ms


def _msg_name(letter: DeadLetter) -> str | None:
    try:
        body = json.loads(letter.value or b"")
        payload = body.get("payload") or body.get("playload") or {}
        name = (payload.get("details") or {}).get("msgName")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


@dataclass(frozen=True, slots=True)
class Position:
    """A handler's replay position on one partition (see the module docstring)."""

    watermark: int = 0
    settled: frozenset[int] = frozenset()

    def pending(self, offset: int) -> bool:
        return offset >= self.watermark and offset not in self.settled

    def metadata(self) -> str:
        return encode_settled(self.settled)


def encode_settled(offsets: Collection[int]) -> str:
    """``settled:3,7-9``: ranges of offsets."""
    parts: list[str] = []
    run: list[int] = []
    for offset in sorted(offsets):
        if run and offset == run[-1] + 1:
            run.append(offset)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [offset]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return "settled:" + ",".join(parts) if parts else ""


def decode_settled(metadata: str | None) -> frozenset[int]:
    if not metadata or not metadata.startswith("settled:"):
        return frozenset()
    offsets: set[int] = set()
    for part in metadata.removeprefix("settled:").split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            offsets.update(range(int(low), int(high or low) + 1))
    return frozenset(offsets)


class TooScattered(RuntimeError):
    """More out-of-order settled letters than a commit's metadata can list."""


@dataclass
class _Coverage:
    """What a forward read examined on one partition: offsets ``[start, end)``."""

    start: int
    end: int
    seen: dict[str, list[int]] = field(default_factory=dict)  # handler -> its letters


class DlqReader:
    """Reads the DLQ topic (``read_committed``) and knows each handler's position."""

    def __init__(
        self, client_config: Mapping[str, Any], dlq_topic: str, group_prefix: str,
        allowed_topics: Collection[str] | None = None,
    ):
        self.client_config = dict(client_config)
        self.topic = dlq_topic
        self.group_prefix = group_prefix
        self.allowed_topics = allowed_topics
        self._positions: dict[str, dict[int, Position]] = {}

    def _ranges(self, consumer: KafkaConsumer, where: LetterFilter) -> list[Bounds]:
        key = None if where.cname is None else where.cname.encode()
        ranges = bounds(consumer, self.topic, key=key, since_ms=where.since_ms,
                        until_ms=where.until_ms)
        if where.letter is not None:
            partition, offset = where.letter
            ranges = [Bounds(partition, offset, offset + 1) for b in ranges
                      if b.partition == partition and offset < b.end]
        return ranges

    def newest_first(self, where: LetterFilter) -> Iterator[DeadLetter]:
        """Matching letters, newest first across partitions."""
        consumer = open_consumer(self.client_config)
        try:
            # One consumer serves every stream: each chunk is read whole (assign, seek,
            # poll) before its letters are handed out, so streams may interleave.
            streams = [
                (_letter(r) for r in read_backward(consumer, self.topic, b))
                for b in self._ranges(consumer, where)
            ]
            merged = heapq.merge(*streams, key=lambda d: (d.timestamp, d.offset), reverse=True)
            for letter in merged:
                if where.matches(letter):
                    yield letter
        finally:
            consumer.close()

    def oldest_first(
        self, where: LetterFilter, coverage: dict[int, _Coverage] | None = None
    ) -> Iterator[DeadLetter]:
        """Every letter in the filter's ranges in offset order per partition (the caller
        checks ``where.matches``); ``coverage`` records what was examined."""
        consumer = open_consumer(self.client_config)
        try:
            for b in self._ranges(consumer, where):
                cover = _Coverage(b.start, b.start)
                if coverage is not None:
                    coverage[b.partition] = cover
                for record in read_forward(consumer, self.topic, [b]):
                    letter = _letter(record)
                    yield letter
                    # Counted as examined only once the caller took it (a limit may stop
                    # the read at a yield).
                    cover.end = letter.offset + 1
                    if letter.handler is not None:
                        cover.seen.setdefault(letter.handler, []).append(letter.offset)
                cover.end = b.end
        finally:
            consumer.close()

    def position(self, handler: str, partition: int) -> Position:
        """The handler's committed replay position on ``partition``."""
        if handler not in self._positions:
            consumer = KafkaConsumer(
                **self.client_config, group_id=replay_group(self.group_prefix, handler),
                enable_auto_commit=False,
            )
            try:
                partitions = wait_for_topic(consumer, self.topic, 5.0)
                positions = {}
                for p in partitions:
                    committed = consumer.committed(TopicPartition(self.topic, p), metadata=True)
                    positions[p] = Position() if committed is None else Position(
                        committed.offset, decode_settled(committed.metadata))
                self._positions[handler] = positions
            finally:
                consumer.close()
        return self._positions[handler].get(partition, Position())

    def pending(self, letter: DeadLetter) -> bool:
        handler = letter.handler
        return handler is not None and self.position(handler, letter.partition).pending(
            letter.offset)


def list_dead_letters(
    reader: DlqReader, *, handler: str | None = None, limit: int | None,
    emit: Callable[[dict[str, Any]], None], where: LetterFilter | None = None,
    pending_only: bool = False,
) -> int:
    """Emit each matching dead letter's summary, newest first, as it is found; returns
    the count."""
    where = where or LetterFilter(handler=handler)
    count = 0
    for letter in reader.newest_first(where):
        if limit is not None and count >= limit:
            break
        pending = reader.pending(letter)
        if pending_only and not pending:
            continue
        emit(letter.summary(reader.topic, pending))
        count += 1
    return count


@dataclass
class ReplayResult:
    """What a replay or discard did (or, dry run, would do)."""

    replayed: list[DeadLetter] = field(default_factory=list)
    not_replayable: list[tuple[DeadLetter, str]] = field(default_factory=list)


def replay_dead_letters(
    reader: DlqReader,
    *,
    handler: str | None = None,
    limit: int | None,
    dry_run: bool,
    emit: Callable[[str], None],
    transactional_id: str,
    where: LetterFilter | None = None,
    discard: bool = False,
) -> ReplayResult:
    """Replay (or ``discard``: settle without copying) the pending letters matching
    ``where`` (or of ``handler``), oldest first, at most ``limit``.

    Dry run: reads and emits what it would do; produces nothing and commits nothing.
    """
    where = where or LetterFilter(handler=handler)
    result = ReplayResult()
    chosen: list[tuple[DeadLetter, KafkaRecord | None]] = []
    coverage: dict[int, _Coverage] = {}
    verb = ("would discard" if dry_run else "discarding") if discard else (
        "would replay" if dry_run else "replaying")
    for letter in reader.oldest_first(where, coverage):
        if limit is not None and len(chosen) >= limit:
            break  # the coverage ends after the last letter taken: the rest stay pending
        if not where.matches(letter) or (letter.handler is None and discard):
            continue
        if letter.handler is not None and not reader.pending(letter):
            continue
        copy: KafkaRecord | None = None
        if not discard:
            try:
                copy = dlq.replay(
                    dlq_topic=reader.topic, partition=letter.partition, offset=letter.offset,
                    key=letter.key, value=letter.value, headers=letter.headers,
                    allowed_topics=reader.allowed_topics,
                )
            except dlq.NotReplayable as exc:
                result.not_replayable.append((letter, str(exc)))
                emit(f"cannot replay {exc}")
                continue
        chosen.append((letter, copy))
        target = "" if copy is None else f" -> {copy.topic}"
        emit(
            f"{verb} {letter.letter_id(reader.topic)}{target} handler={letter.handler} "
            f"key={letter.cname or '-'} noticeId={header_value(letter.headers, 'noticeId')}"
        )
    result.replayed = [letter for letter, _ in chosen]
    if dry_run or not chosen:
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
            final = start + REPLAY_BATCH >= len(chosen)
            commits = _advance(reader, batch, coverage if final else None)
            publisher.publish([copy for _, copy in batch if copy is not None], commits)
    finally:
        publisher.close()
    return result


def advance(
    position: Position, settled_now: Sequence[int], cover: _Coverage | None,
    seen: Sequence[int],
) -> Position:
    """The position after settling ``settled_now`` (pure).

    The watermark moves only over a range the read examined from at or below it: to the
    first letter of the handler there that is still pending, else past the last one seen.
    Letters settled above it are listed."""
    settled = set(position.settled) | set(settled_now)
    watermark = position.watermark
    if cover is not None and cover.start <= watermark:
        still = [o for o in seen if o >= watermark and o not in settled]
        if still:
            watermark = min(still)
        else:
            mine = [o for o in [*seen, *settled_now] if o >= watermark]
            watermark = max([watermark, *(o + 1 for o in mine)])
    return Position(watermark, frozenset(o for o in settled if o >= watermark))


def _advance(
    reader: DlqReader,
    batch: list[tuple[DeadLetter, KafkaRecord | None]],
    coverage: Mapping[int, _Coverage] | None,
) -> list[tuple[Any, dict[Any, Any]]]:
    """Per replay group (bare group id): the positions to commit after ``batch``. The
    watermark moves only with the last batch (``coverage`` given)."""
    by_key: dict[tuple[str, int], list[int]] = {}
    for letter, _ in batch:
        # Letters chosen always name their handler (replay checks it, discard skips them).
        by_key.setdefault((letter.handler or "", letter.partition), []).append(letter.offset)
    commits: dict[str, dict[Any, Any]] = {}
    for (handler, partition), offsets in by_key.items():
        old = reader.position(handler, partition)
        cover = None if coverage is None else coverage.get(partition)
        seen = [] if cover is None else [o for o in cover.seen.get(handler, []) if o < cover.end]
        new = advance(old, offsets, cover, seen)
        metadata = new.metadata()
        if len(metadata) > MAX_METADATA_CHARS:
            raise TooScattered(
                f"too many dead letters of {handler!r} on partition {partition} settled out "
                "of order; replay or discard the older ones first (e.g. without --since)"
            )
        reader._positions.setdefault(handler, {})[partition] = new
        group = replay_group(reader.group_prefix, handler)
        commits.setdefault(group, {})[(reader.topic, partition)] = (new.watermark, metadata)
    return list(commits.items())


def _letter(record: Any) -> DeadLetter:
    return DeadLetter(record.partition, record.offset, record.key, record.value,
                      tuple(record.headers or ()), record.timestamp)
