"""One face for the two brokers the runtime suite runs against: the in-memory broker
(:mod:`handlers.testing.memory_broker`) and a real Kafka broker.

A test takes the ``broker`` fixture (tests/handlers/runtime/conftest.py) and speaks only
through it: create topics, write events, run a runner, read topics and committed
offsets back. The same test body then checks the runtime with and without a broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from handlers.runtime.client_protocols import ClientFactory
from handlers.runtime.clients import KafkaClientFactory
from handlers.runtime.runner import RunnerConfig
from handlers.runtime.state import Table
from handlers.testing.fresh_topics import unique_topics
from handlers.testing.memory_broker import MemoryBroker
from support.runtime_helpers import (
    RunningRunner,
    SentEvent,
    committed_offsets,
    event_records,
    fast_config,
    produce_events,
    produce_raw,
    read_to_end,
    running,
)
from webhook.shared.kafka_settings import TopicNames

Headers = list[tuple[str, bytes]]


class RuntimeTestBroker:
    """What the runtime tests do with a broker; subclasses say how."""

    kind: str
    clients: ClientFactory
    bootstrap: str

    def topics(self, partitions: int = 1) -> TopicNames:
        """A fresh set of every topic; ``partitions`` for the events topic."""
        raise NotImplementedError

    def produce_events(self, topic: str, cnames: Iterable[str], event_type: int = 40,
                       ) -> list[SentEvent]:
        raise NotImplementedError

    def produce_raw(self, topic: str, key: bytes | None, value: bytes | None,
                    headers: Headers | None = None, timestamp_ms: int | None = None,
                    ) -> tuple[int, int]:
        raise NotImplementedError

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        raise NotImplementedError

    def read(self, topic: str, isolation_level: str = "read_committed") -> list[Any]:
        """Every record of ``topic`` (up to its end as of the call), partition order."""
        raise NotImplementedError

    def config(self, names: TopicNames, action: str, **overrides: Any) -> RunnerConfig:
        """A runner configuration with short delays (:func:`fast_config`)."""
        return fast_config(self.bootstrap, names, action, **overrides)

    def running(self, action: Any, config: RunnerConfig, tables: Iterable[Table] = (),
                ) -> AbstractContextManager[RunningRunner]:
        """``action`` run by an :class:`ActionRunner` in a thread for the block."""
        return running(action, config, tables, clients=self.clients)


class KafkaTestBroker(RuntimeTestBroker):
    """The shared real broker; the runner builds its kafka-python clients itself."""

    kind = "kafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.clients = KafkaClientFactory({"bootstrap_servers": bootstrap})

    def topics(self, partitions: int = 1) -> TopicNames:
        return unique_topics(self.bootstrap, partitions)

    def produce_events(self, topic: str, cnames: Iterable[str], event_type: int = 40,
                       ) -> list[SentEvent]:
        return produce_events(self.bootstrap, topic, cnames, event_type)

    def produce_raw(self, topic: str, key: bytes | None, value: bytes | None,
                    headers: Headers | None = None, timestamp_ms: int | None = None,
                    ) -> tuple[int, int]:
        return produce_raw(self.bootstrap, topic, key, value, headers, timestamp_ms)

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        return committed_offsets(self.bootstrap, group, topic)

    def read(self, topic: str, isolation_level: str = "read_committed") -> list[Any]:
        return read_to_end(self.bootstrap, topic, isolation_level)

    def running(self, action: Any, config: RunnerConfig, tables: Iterable[Table] = (),
                ) -> AbstractContextManager[RunningRunner]:
        return running(action, config, tables)  # the default factory, as in production


class MemoryTestBroker(RuntimeTestBroker):
    """A fresh :class:`MemoryBroker` per test."""

    kind = "memory"
    bootstrap = "memory"  # never dialled: the runner gets the memory clients

    def __init__(self) -> None:
        self.memory = MemoryBroker()
        self.clients = self.memory.clients()

    def topics(self, partitions: int = 1) -> TopicNames:
        tag = uuid.uuid4().hex[:10]
        names = TopicNames(**{field: f"rt-{tag}.{field}" for field in TopicNames.model_fields})
        for field, topic in names.model_dump().items():
            self.memory.create_topic(topic, partitions if field == "events" else 1)
        return names

    def produce_events(self, topic: str, cnames: Iterable[str], event_type: int = 40,
                       ) -> list[SentEvent]:
        sent = []
        for cname, notice_id, body, record in event_records(topic, cnames, event_type):
            written = self.memory.produce(topic, record.key, record.value, record.headers)
            sent.append(SentEvent(cname, notice_id, body, written.partition, written.offset))
        return sent

    def produce_raw(self, topic: str, key: bytes | None, value: bytes | None,
                    headers: Headers | None = None, timestamp_ms: int | None = None,
                    ) -> tuple[int, int]:
        written = self.memory.produce(topic, key, value, headers or (), timestamp_ms=timestamp_ms)
        return written.partition, written.offset

    def committed(self, group: str, topic: str) -> dict[int, int | None]:
        return self.memory.committed_offsets(group, topic)

    def read(self, topic: str, isolation_level: str = "read_committed") -> list[Any]:
        return self.memory.records(topic, committed_only=isolation_level == "read_committed")



KAFKA_ONLY = pytest.mark.parametrize(
    "broker", [pytest.param("kafka", marks=pytest.mark.kafka)], indirect=True
)
"""Narrows the ``broker`` fixture to real Kafka: for what the in-memory broker does not
model (several members of one group)."""
