"""Publishing staged records and consumed offsets in one Kafka transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kafka import TopicPartition
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata

from handlers.runtime.client_protocols import TransactionalProducer
from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.offsets import Partition

# Errors after which a transactional producer can never be used again.
_FATAL: tuple[type[BaseException], ...] = (
    kafka_errors.ProducerFencedError,
    kafka_errors.InvalidProducerEpochError,
    kafka_errors.AuthorizationError,
    kafka_errors.UnsupportedForMessageFormatError,
    kafka_errors.UnsupportedVersionError,
)


class TransactionAborted(Exception):
    """The transaction was aborted: nothing of it is visible, its work must be redone."""


class ProducerUnusable(Exception):
    """The producer is fenced (another instance took its transactional id) or broken."""


class TransactionalPublisher:
    """Wraps a transactional producer whose transactions were initialised.

    Not thread-safe. After :class:`ProducerUnusable` only :meth:`close` may be called.
    """

    def __init__(self, producer: TransactionalProducer, transactional_id: str) -> None:
        self._producer = producer
        self._transactional_id = transactional_id

    def publish(
        self,
        records: Sequence[KafkaRecord],
        commits: Sequence[tuple[Any, Mapping[Partition, int | tuple[int, str]]]] = (),
    ) -> list[tuple[KafkaRecord, int, int]]:
        """Write ``records`` and commit offsets atomically. ``commits`` holds, per consumer
        group, its metadata (``KafkaConsumer.group_metadata()``, which lets the broker
        fence a consumer that lost its partitions; or the bare group id) and offsets.

        Returns each record with the partition and offset it was written at. Raises
        :class:`TransactionAborted` (retry from the committed offsets) or
        :class:`ProducerUnusable` (stop).
        """
        producer = self._producer
        sent: list[tuple[KafkaRecord, Any]] = []
        try:
            producer.begin_transaction()
            for record in records:
                future = producer.send(
                    record.topic, key=record.key, value=record.value, headers=list(record.headers)
                )
                sent.append((record, future))
            for group_metadata, offsets in commits:
                if offsets:
                    producer.send_offsets_to_transaction(
                        {
                            TopicPartition(topic, partition): _offset_and_metadata(offset)
                            for (topic, partition), offset in offsets.items()
                        },
                        group_metadata,
                    )
            producer.commit_transaction()
        except _FATAL as exc:
            raise ProducerUnusable(
                f"transactional id {self._transactional_id!r}: {type(exc).__name__} "
                "(another instance with the same id took over?)"
            ) from exc
        except kafka_errors.KafkaError as exc:
            self._abort(exc)
            raise TransactionAborted(f"{type(exc).__name__}: {exc}") from exc
        written = []
        for record, future in sent:
            metadata = future.get(timeout=1)  # resolved: the commit flushed every send
            written.append((record, metadata.partition, metadata.offset))
        return written

    def _abort(self, cause: BaseException) -> None:
        try:
            self._producer.abort_transaction()
        except Exception as exc:
            raise ProducerUnusable(
                f"transactional id {self._transactional_id!r}: cannot abort after "
                f"{type(cause).__name__}: {type(exc).__name__}"
            ) from exc

    def close(self, timeout_s: float = 5.0) -> None:
        self._producer.close(timeout=timeout_s)


def _offset_and_metadata(offset: int | tuple[int, str]) -> OffsetAndMetadata:
    """An offset to commit, optionally with its metadata string (DLQ replay positions)."""
    if isinstance(offset, tuple):
        return OffsetAndMetadata(offset[0], offset[1], -1)
    return OffsetAndMetadata(offset, "", -1)
