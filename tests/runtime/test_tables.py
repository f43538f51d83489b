"""Tables over real compacted topics."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer
from support.runtime_helpers import produce_raw, unique_topics, wait_until

from handlers.runtime.state import Table, TopicMissing

pytestmark = pytest.mark.kafka


def test_a_table_loads_to_the_end_then_follows_the_topic(kafka_bootstrap: str) -> None:
    names = unique_topics(kafka_bootstrap)
    produce_raw(kafka_bootstrap, names.sessions, b"c1", json.dumps({"sid": "s1"}).encode())
    produce_raw(kafka_bootstrap, names.sessions, b"c2", json.dumps({"sid": "s2"}).encode())
    produce_raw(kafka_bootstrap, names.sessions, b"c1", json.dumps({"sid": "s3"}).encode())
    table = Table(names.sessions)
    table.start({"bootstrap_servers": kafka_bootstrap}, timeout_s=30)
    try:
        assert dict(table.items()) == {"c1": {"sid": "s3"}, "c2": {"sid": "s2"}}
        produce_raw(kafka_bootstrap, names.sessions, b"c2", None)  # tombstone
        produce_raw(kafka_bootstrap, names.sessions, b"c3", b"not json")

        def caught_up() -> bool:
            table.refresh()
            return table.get("c2") is None

        wait_until(caught_up, what="the tombstone applied")
        assert dict(table.items()) == {"c1": {"sid": "s3"}}
    finally:
        table.close()


def test_a_table_waits_for_open_transactions_and_skips_aborted_ones(
    kafka_bootstrap: str,
) -> None:
    names = unique_topics(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=names.sessions)
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(names.sessions, key=b"c1", value=b'{"sid": "aborted"}')
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(names.sessions, key=b"c1", value=b'{"sid": "committed"}')
    producer.commit_transaction()
    producer.close()
    table = Table(names.sessions)
    table.start({"bootstrap_servers": kafka_bootstrap}, timeout_s=30)
    try:
        assert table.get("c1") == {"sid": "committed"}
    finally:
        table.close()


def test_a_missing_topic_is_named(kafka_bootstrap: str) -> None:
    table = Table("no-such-topic-for-tables")
    with pytest.raises(TopicMissing, match="'no-such-topic-for-tables' does not exist"):
        table.start({"bootstrap_servers": kafka_bootstrap}, timeout_s=2)
