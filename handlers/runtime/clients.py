"""kafka-python clients configured the way the runtime's guarantees need them, and the
runtime's default :class:`~handlers.runtime.client_protocols.ClientFactory`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from handlers.runtime.client_protocols import ClientFactory
from handlers.runtime.state import TopicMissing


class KafkaClientFactory:
    """Builds kafka-python clients from ``client_config``
    (:meth:`webhook.shared.kafka_settings.KafkaSettings.client_config`)."""

    def __init__(self, client_config: Mapping[str, Any]) -> None:
        self.client_config = dict(client_config)

    def group_consumer(
        self, group_id: str, *, client_id: str, max_poll_interval_ms: int,
        max_poll_records: int, session_timeout_ms: int = 45_000,
    ) -> KafkaConsumer:
        return group_consumer(
            self.client_config, group_id, client_id=client_id,
            max_poll_interval_ms=max_poll_interval_ms, max_poll_records=max_poll_records,
            session_timeout_ms=session_timeout_ms,
        )

    def topic_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            **self.client_config,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )

    def durable_producer(self, client_id: str) -> KafkaProducer:
        return durable_producer(self.client_config, client_id)

    def transactional_producer(
        self, transactional_id: str, *, transaction_timeout_ms: int
    ) -> KafkaProducer:
        return transactional_producer(
            self.client_config, transactional_id, transaction_timeout_ms=transaction_timeout_ms
        )


def client_factory(source: ClientFactory | Mapping[str, Any]) -> ClientFactory:
    """``source`` itself, or kafka-python clients when it is a client configuration."""
    if isinstance(source, Mapping):
        return KafkaClientFactory(source)
    return source


def group_consumer(
    client_config: Mapping[str, Any],
    group_id: str,
    *,
    client_id: str,
    max_poll_interval_ms: int,
    max_poll_records: int,
    session_timeout_ms: int = 45_000,
) -> KafkaConsumer:
    """A group member that never commits by itself and skips aborted transactions.

    ``session_timeout_ms`` bounds how long the partitions of a crashed member stay
    unassigned (a clean shutdown leaves the group at once)."""
    return KafkaConsumer(
        **client_config,
        client_id=client_id,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=max_poll_interval_ms,
        max_poll_records=max_poll_records,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=min(3000, session_timeout_ms // 3),
    )


def durable_producer(client_config: Mapping[str, Any], client_id: str) -> KafkaProducer:
    """A long-lived producer outside transactions: ``acks=all``, one request in flight per
    broker (retries keep the order of a key's records).

    Not idempotent on purpose: kafka-python's idempotent producer loses its producer id
    for good once a batch it already sent expires (a broker outage longer than the
    delivery timeout) and never sends again. Every writer using this one writes keyed,
    idempotent values, so the rare duplicate a lost acknowledgement causes is harmless.
    """
    return KafkaProducer(
        **client_config,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        max_in_flight_requests_per_connection=1,
        linger_ms=0,
    )


def transactional_producer(
    client_config: Mapping[str, Any], transactional_id: str, *, transaction_timeout_ms: int
) -> KafkaProducer:
    """An idempotent producer with a stable transactional id, transactions initialised.

    ``init_transactions`` aborts whatever a previous holder of the same id left open
    (a crashed instance) and fences it. ``retry_backoff_ms`` is short because the
    coordinator answers "concurrent transactions" for a few ms after each commit and the
    client retries after that backoff (100 ms by default: ~10 transactions/s at best).
    """
    producer = KafkaProducer(
        **client_config,
        client_id=transactional_id,
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        retry_backoff_ms=10,
        transaction_timeout_ms=transaction_timeout_ms,
    )
    try:
        producer.init_transactions()
    except BaseException:
        producer.close(timeout=5)
        raise
    return producer


def wait_for_topic(consumer: Any, topic: str, timeout_s: float) -> set[int]:
    """The partitions of ``topic``; raises :class:`TopicMissing` if it never shows up."""
    deadline = time.monotonic() + timeout_s
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        if time.monotonic() >= deadline:
            raise TopicMissing(f"topic {topic!r} does not exist")
        time.sleep(0.1)  # metadata is refreshed in the background; bounded by the deadline
