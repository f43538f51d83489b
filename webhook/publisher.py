"""Publishing records with a bounded wait for the broker's acknowledgement.

The producer is created lazily, on first use, inside the process that uses it: gunicorn
forks workers from a master, and a kafka-python producer (its sender thread and sockets)
does not survive a fork.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from webhook.records import Record
from webhook.settings import KafkaSettings

log = logging.getLogger(__name__)


class PublishUnavailable(Exception):
    """The broker did not acknowledge in time, or cannot be reached."""


class Publisher(Protocol):
    def publish(self, record: Record, timeout_s: float) -> None:
        """Return once the broker acknowledged *record*; raise PublishUnavailable otherwise."""
        ...

    def ready(self) -> bool:
        """Whether publishing is expected to work right now."""
        ...

    def close(self) -> None: ...


def producer_config(kafka: KafkaSettings, timeout_s: float) -> dict[str, Any]:
    """Durable producer settings: acks from every in-sync replica, idempotent (no
    duplicates from internal retries), and a short linger so concurrent requests share
    batches without adding noticeable latency."""
    budget_ms = int(timeout_s * 1000)
    return {
        **kafka.client_config(),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        # send() blocks for metadata or buffer space; never longer than the request budget.
        "max_block_ms": budget_ms,
        "bootstrap_timeout_ms": budget_ms,
        "request_timeout_ms": max(budget_ms, 3000),
        "client_id": "agora-events-webhook",
    }


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

    def ready(self) -> bool:
        return self.available

    def close(self) -> None:
        return None
