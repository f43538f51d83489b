"""Tables over compacted topics, in memory and on a real broker."""

from __future__ import annotations

import json

import pytest
from support.runtime_brokers import RuntimeTestBroker
from support.runtime_helpers import wait_until

from handlers.runtime.state import Table, TopicMissing
from handlers.testing.memory_broker import MemoryBroker


def test_a_table_loads_to_the_end_then_follows_the_topic(broker: RuntimeTestBroker) -> None:
    names = broker.topics()
    broker.produce_raw(names.sessions, b"c1", json.dumps({"sid": "s1"}).encode())
    broker.produce_raw(names.sessions, b"c2", json.dumps({"sid": "s2"}).encode())
    broker.produce_raw(names.sessions, b"c1", json.dumps({"sid": "s3"}).encode())
    table = Table(names.sessions)
    table.start(broker.clients, timeout_s=30)
    try:
        assert dict(table.items()) == {"c1": {"sid": "s3"}, "c2": {"sid": "s2"}}
        broker.produce_raw(names.sessions, b"c2", None)  # tombstone
        broker.produce_raw(names.sessions, b"c3", b"not json")

        def caught_up() -> bool:
            table.refresh()
            return table.get("c2") is None

        wait_until(caught_up, what="the tombstone applied")
        assert dict(table.items()) == {"c1": {"sid": "s3"}}
    finally:
        table.close()


def test_a_table_waits_for_open_transactions_and_skips_aborted_ones(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    producer = broker.clients.transactional_producer(names.sessions, transaction_timeout_ms=60_000)
    producer.begin_transaction()
    producer.send(names.sessions, key=b"c1", value=b'{"sid": "aborted"}')
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(names.sessions, key=b"c1", value=b'{"sid": "committed"}')
    producer.commit_transaction()
    producer.close()
    table = Table(names.sessions)
    table.start(broker.clients, timeout_s=30)
    try:
        assert table.get("c1") == {"sid": "committed"}
    finally:
        table.close()


def test_a_missing_topic_is_named(broker: RuntimeTestBroker) -> None:
    table = Table("no-such-topic-for-tables")
    with pytest.raises(TopicMissing, match="'no-such-topic-for-tables' does not exist"):
        table.start(broker.clients, timeout_s=0.5)


def test_a_table_reads_a_compacted_log_whose_offsets_have_gaps() -> None:
    """After the log cleaner ran, a key's older values are gone and offsets skip: the
    table still ends at the last value of each key and reads on from the end."""
    memory = MemoryBroker()
    memory.create_topic("sessions")
    for key, value in [(b"c1", b'{"v": 1}'), (b"c2", b'{"v": 2}'), (b"c1", b'{"v": 3}'),
                       (b"c2", None)]:
        memory.produce("sessions", key, value)
    memory.compact("sessions")
    assert [r.offset for r in memory.records("sessions")] == [2, 3]
    table = Table("sessions")
    table.start(memory.clients(), timeout_s=5)
    try:
        assert dict(table.items()) == {"c1": {"v": 3}}
        memory.produce("sessions", b"c2", b'{"v": 4}')
        table.refresh()
        assert dict(table.items()) == {"c1": {"v": 3}, "c2": {"v": 4}}
    finally:
        table.close()
