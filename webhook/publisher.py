"""Publishing records with a bounded wait for the broker's acknowledgement.

The producer is created lazily, on first use, inside the process that uses it: gunicorn
forks workers from a master, and a kafka-python producer (its sender thread and sockets)
does not survive a fork. It is built by a background thread, retrying while the broker is
unreachable: a request or a readiness probe only waits (within its own budget) for the
build to finish, and never holds a lock across it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import (
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from webhook.settings import RECORD_ROOM_BYTES
from webhook.shared.event_records import Record
from webhook.shared.kafka_settings import KafkaSettings
from webhook.shared.refusals import RetryLater

log = logging.getLogger(__name__)


class PublishUnavailable(RetryLater):
    """The broker did not acknowledge in time, or cannot be reached."""

    error, log_message = "broker_unavailable", "publish failed, asking NCS to retry"
    public_detail = "the event log did not acknowledge in time"


class PublishRejected(Exception):
    """The record can never be published (too large for the producer or the topic, or
    invalid): retrying cannot help. In a ``publish_many`` batch, ``index`` is its position
    (every record before it was acknowledged) and ``then_acknowledged`` how many records
    right after it the broker acknowledged too (they need not be sent again)."""

    def __init__(
        self, reason: str, index: int = 0, then_acknowledged: int = 0, too_large: bool = True
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index
        self.then_acknowledged = then_acknowledged
        self.too_large = too_large


# Errors that say "this record", not "the broker right now".
_PERMANENT = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError)


def _rejected(exc: Exception, index: int = 0) -> PublishRejected | None:
    if isinstance(exc, _PERMANENT):
        too_large = not isinstance(exc, InvalidRecordError)
        return PublishRejected(f"{type(exc).__name__}: {exc}", index, too_large=too_large)
    return None


def _count_acknowledged(futures: Sequence[Any], deadline: float) -> int:
    """How many of *futures*, from the first, the broker acknowledged."""
    count = 0
    for future in futures:
        if isinstance(future, Exception):
            break
        try:
            future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except KafkaError:
            break
        count += 1
    return count


class Publisher(Protocol):
    def publish(self, record: Record, timeout_s: float) -> None:
        """Return once the broker acknowledged *record*; raise PublishRejected when it can
        never be published, PublishUnavailable otherwise."""
        ...

    def publish_many(self, records: Sequence[Record], timeout_s: float) -> int:
        """Send *records* in order; return how many, from the first, the broker acknowledged.
        Raise PublishRejected when the first record not acknowledged can never be."""
        ...

    def ready(self) -> bool:
        """Whether publishing is expected to work right now."""
        ...

    def close(self) -> None: ...


def producer_config(
    kafka: KafkaSettings, timeout_s: float, max_body_bytes: int = 1024 * 1024
) -> dict[str, Any]:
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

    ``max_request_size`` follows the body limit, with room for the key and headers, so a
    body the webhook accepted is never refused by the producer itself. Batches of up to
    256 KiB let the spool drainer's 500-record batches go out in a few produce requests
    instead of dozens of sequential 16 KiB ones (one request in flight): fewer round trips,
    so fewer batches expire in flight after a long outage (each such expiry can duplicate).
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
        "batch_size": 256 * 1024,
        "max_block_ms": max(int(budget_ms * 0.15), 100),
        "delivery_timeout_ms": delivery_ms,
        "request_timeout_ms": delivery_ms - linger_ms,
        "bootstrap_timeout_ms": budget_ms,
        "client_id": "agora-events-webhook",
        "max_request_size": max_body_bytes + RECORD_ROOM_BYTES,
    }


class KafkaPublisher:
    """Thread-safe publisher over one lazily created KafkaProducer per process."""

    def __init__(
        self,
        kafka: KafkaSettings,
        timeout_s: float,
        producer_factory: Callable[..., Any] = KafkaProducer,
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self._config = producer_config(kafka, timeout_s, max_body_bytes)
        self._factory = producer_factory
        self._producer: Any = None
        self._built = threading.Event()
        self._closed = threading.Event()
        self._start_lock = threading.Lock()  # held only to start the builder, never for I/O
        self._builder: threading.Thread | None = None
        self._build_error = "still connecting"
        self._last_failure: float | None = None

    def _ensure_builder(self) -> None:
        if self._builder is not None:
            return
        with self._start_lock:
            if self._builder is None:
                self._builder = threading.Thread(
                    target=self._build, name="kafka-producer-builder", daemon=True
                )
                self._builder.start()

    def _build(self) -> None:
        backoff = 0.5
        while not self._closed.is_set():
            try:
                self._producer = self._factory(**self._config)
            except KafkaError as exc:
                self._build_error = f"{type(exc).__name__}: {exc}"
                log.warning("cannot reach Kafka yet", extra={"error": self._build_error})
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._built.set()
            return

    def _get_producer(self, deadline: float) -> Any:
        self._ensure_builder()
        if not self._built.wait(max(deadline - time.monotonic(), 0)):
            raise PublishUnavailable(f"cannot reach Kafka: {self._build_error}")
        return self._producer

    def publish(self, record: Record, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        try:
            producer = self._get_producer(deadline)
            future = producer.send(
                record.topic, value=record.value, key=record.key, headers=list(record.headers)
            )
            future.get(timeout=max(deadline - time.monotonic(), 0.001))
        except KafkaError as exc:
            if (rejected := _rejected(exc)) is not None:
                raise rejected from None
            self._last_failure = time.monotonic()
            raise PublishUnavailable(f"{type(exc).__name__}: {exc}") from None
        except PublishUnavailable:
            self._last_failure = time.monotonic()
            raise
        self._last_failure = None

    def publish_many(self, records: Sequence[Record], timeout_s: float) -> int:
        # One request in flight per broker keeps a key's records in order across retries,
        # so sending them all before waiting is safe and far faster than one by one.
        deadline = time.monotonic() + timeout_s
        acknowledged = 0
        futures: list[Any] = []
        try:
            producer = self._get_producer(deadline)
            for r in records:
                try:
                    futures.append(
                        producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers))
                    )
                except KafkaError as exc:
                    if _rejected(exc) is None:
                        raise
                    futures.append(exc)  # refused before sending: stop here
                    break
            for future in futures:
                if isinstance(future, Exception):
                    raise future
                future.get(timeout=max(deadline - time.monotonic(), 0.001))
                acknowledged += 1
        except KafkaError as exc:
            if (rejected := _rejected(exc, acknowledged)) is not None:
                rejected.then_acknowledged = _count_acknowledged(
                    futures[acknowledged + 1 :], deadline
                )
                raise rejected from None
            self._last_failure = time.monotonic()
            return acknowledged
        except PublishUnavailable:
            self._last_failure = time.monotonic()
            return acknowledged
        self._last_failure = None
        return acknowledged

    def ready(self) -> bool:
        """Never waits: the build runs in the background, started here if need be."""
        self._ensure_builder()
        return self._built.is_set() and self._last_failure is None

    def close(self) -> None:
        self._closed.set()
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
            self._built.clear()


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
