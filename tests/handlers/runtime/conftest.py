"""The ``broker`` fixture: each runtime test that takes it runs twice, against the
in-memory broker and against real Kafka (``kafka`` mark; ``-m "not kafka"`` runs the
in-memory half alone). A test that needs real Kafka only (several group members,
subprocesses) narrows it with ``support.runtime_brokers.KAFKA_ONLY``.
"""

from __future__ import annotations

import pytest
from support.runtime_brokers import KafkaTestBroker, MemoryTestBroker, RuntimeTestBroker


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def broker(request: pytest.FixtureRequest) -> RuntimeTestBroker:
    if request.param == "memory":
        return MemoryTestBroker()
    return KafkaTestBroker(request.getfixturevalue("kafka_bootstrap"))
