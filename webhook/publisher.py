"""Publishing records with a bounded wait for the broker's acknowledgement.

The producer is created lazily, on first use, inside the process that uses it: gunicorn
forks workers from a master, and a kafka-python producer (its sender thread and sockets)
does not survive a fork.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from webhook.records import Record
from webhook.settings import KafkaSettings

log = logging.getLogger(__name__)


class PublishUnavailable(Exception):
    """The broker did not acknowledge in time, or cannot be reached."""


class Publisher(Protocol):
    def publish(self, record: Record, timeout_s: float) -> None:
        """Return once the broker acknowledged *record*; raise PublishUnavailable otherwise."""
        ...

    def publish_many(self, records: Sequence[Record], timeout_s: float) -> int:
        """Send *records* in order; return how many, from the first, the broker acknowledged."""
        ...

    def ready(self) -> bool:
        """Whether publishing is expected to work right now."""
        ...

    def close(self) -> None: ...


def producer_config(kafka: KafkaSettings, timeout_s: float) -> dict[str, Any]:
    """Durable producer settings: acks from every in-sync replica, one request in flight per
    broker (a retried batch cannot be overtaken, so a key's records keep their order), and
    a short linger so concurrent requests share batches without adding noticeable latency.

    The producer's own deadlines end inside the caller's budget: ``send`` blocks for
    metadata at most 15 % of it, and a queued record is acknowledged or expired within
    75 %. So when the caller stops waiting, the record's fate is known; one reported as
    not acknowledged (and then spooled, or retried by NCS) is not delivered later as well.

    Not idempotent: kafka-python's idempotent producer loses its producer id for good once
    a batch it already sent expires (a broker outage longer than the delivery timeout) and
    then never publishes again. The price is a rare duplicate when an acknowledgement is
    lost on the wire; consumers deduplicate by ``noticeId`` anyway (NCS sends duplicates).
    """
    budget_ms = int(timeout_s * 1000)
    linger_ms = 2
    delivery_ms = max(int(budget_ms * 0.75), linger_ms + 200)
    return {
        **kafka.client_config(),
        "acks": "all",
        "enable_idempotence": False,
        "max_in_flight_requests_per_connection": 1,
        "linger_ms": linger_ms,
        "max_block_ms": max(int(budget_ms * 0.15), 100),
        "delivery_timeout_ms": delivery_ms,
        "request_timeout_ms": delivery_ms - linger_ms,
        "bootstrap_timeout_ms": budget_ms,
        "client_id": "agora-events-webhook",
    }


class RecordRefused(Exception):
    """The broker refused a record for good (too large, invalid topic): retrying cannot
    help. ``acknowledged`` records before it were published, and ``acknowledged_after``
    records right after it (sent in the same batch)."""

    def __init__(self, acknowledged: int, reason: str, acknowledged_after: int = 0) -> None:
        self.acknowledged = acknowledged
        self.reason = reason
        self.acknowledged_after = acknowledged_after
        super().__init__(reason)


# Errors about the record itself, not the broker's state: the same record fails forever.
PERMANENT_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError)


def _acknowledged(futures: Sequence[Any], deadline: float) -> int:
    """How many leading *futures* complete successfully before the deadline."""
    count = 0
    for future in futures:
        try:
            future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except KafkaError:
            break
        count += 1
    return count


class KafkaPublisher:
    """Thread-safe publisher over one lazily created KafkaProducer per process."""

    def __init__(
        self,
        kafka: KafkaSettings,
        timeout_s: float,
        producer_factory: Callable[..., Any] = KafkaProducer,
    ) -> None:
        self._config = producer_config(kafka, timeout_s)
        self._factory = producer_factory
        self._producer: Any = None
        self._lock = threading.Lock()
        self._last_failure: float | None = None

    def _get_producer(self) -> Any:
        producer = self._producer
        if producer is not None:
            return producer
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = self._factory(**self._config)
                except KafkaError as exc:
                    raise PublishUnavailable(f"cannot reach Kafka: {exc}") from None
            return self._producer

    def publish(self, record: Record, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        try:
            producer = self._get_producer()
            future = producer.send(
                record.topic, value=record.value, key=record.key, headers=list(record.headers)
            )
            future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except KafkaError as exc:
            self._last_failure = time.monotonic()
            raise PublishUnavailable(f"{type(exc).__name__}: {exc}") from None
        except PublishUnavailable:
            self._last_failure = time.monotonic()
            raise
        self._last_failure = None

    def publish_many(self, records: Sequence[Record], timeout_s: float) -> int:
        """Publish in order; return how many leading records the broker acknowledged.

        Raises :class:`RecordRefused` when record ``acknowledged`` can never be published.
        """
        # One request in flight per broker keeps a key's records in order across retries,
        # so sending them all before waiting is safe and far faster than one by one.
        deadline = time.monotonic() + timeout_s
        acknowledged = 0
        futures = []
        refused: str | None = None
        try:
            producer = self._get_producer()
            for r in records:
                try:
                    futures.append(
                        producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers))
                    )
                except PERMANENT_ERRORS as exc:  # checked before sending (e.g. size)
                    refused = f"{type(exc).__name__}: {exc}"
                    break
            for future in futures:
                future.get(timeout=max(deadline - time.monotonic(), 0.001))
                acknowledged += 1
        except PERMANENT_ERRORS as exc:
            # Records sent after it may be on the topic already: count them, so they are
            # released instead of published a second time.
            after = _acknowledged(futures[acknowledged + 1 :], deadline)
            raise RecordRefused(acknowledged, f"{type(exc).__name__}: {exc}", after) from None
        except (KafkaError, PublishUnavailable):
            self._last_failure = time.monotonic()
            return acknowledged
        if refused is not None:
            raise RecordRefused(acknowledged, refused)
        self._last_failure = None
        return acknowledged

    def ready(self) -> bool:
        try:
            self._get_producer()
        except PublishUnavailable:
            return False
        return self._last_failure is None

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


class InMemoryPublisher:
    """A publisher for unit tests: keeps records in a list; can be told to fail."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.available = True
        self._lock = threading.Lock()

    def publish(self, record: Record, timeout_s: float) -> None:
        if not self.available:
            raise PublishUnavailable("broker unavailable (in-memory publisher switched off)")
        with self._lock:
            self.records.append(record)

    def publish_many(self, records: Sequence[Record], timeout_s: float) -> int:
        if not self.available:
            return 0
        with self._lock:
            self.records.extend(records)
        return len(records)

    def ready(self) -> bool:
        return self.available

    def close(self) -> None:
        return None
