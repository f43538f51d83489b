"""The Kafka rules the runtime relies on, checked on both brokers through the same client
factory calls: so the in-memory broker keeps to what real Kafka does."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata
from support.runtime_brokers import RuntimeTestBroker
from support.runtime_helpers import wait_until

TXN_TIMEOUT_MS = 60_000


def test_read_committed_stops_at_an_open_transaction_and_skips_an_aborted_one(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    tp = TopicPartition(names.files, 0)
    producer = broker.clients.transactional_producer(
        f"{names.files}.writer", transaction_timeout_ms=TXN_TIMEOUT_MS)
    reader = broker.clients.topic_consumer()
    try:
        producer.begin_transaction()
        producer.send(names.files, key=b"k", value=b"open").get(timeout=10)
        # The open transaction holds the last stable offset at its first record...
        assert reader.end_offsets([tp]) == {tp: 0}
        # ...while read_uncommitted readers see the record already.
        assert [r.value for r in broker.read(names.files, "read_uncommitted")] == [b"open"]
        producer.abort_transaction()
        producer.begin_transaction()
        producer.send(names.files, key=b"k", value=b"kept").get(timeout=10)
        producer.commit_transaction()
        # Each transaction's end is a control record: two records, two markers (Kafka
        # writes the markers just after the commit returns).
        wait_until(lambda: reader.end_offsets([tp]) == {tp: 4}, what="the commit marker")
        assert [(r.offset, r.value) for r in broker.read(names.files)] == [(2, b"kept")]
    finally:
        reader.close()
        producer.close(timeout=5)


def test_a_new_producer_with_the_same_id_aborts_and_fences_the_old_one(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    txn_id = f"{names.files}.writer"
    old = broker.clients.transactional_producer(txn_id, transaction_timeout_ms=TXN_TIMEOUT_MS)
    old.begin_transaction()
    old.send(names.files, key=b"k", value=b"orphan").get(timeout=10)
    new = broker.clients.transactional_producer(txn_id, transaction_timeout_ms=TXN_TIMEOUT_MS)
    try:
        assert broker.read(names.files) == []  # aborted, not waited for
        with pytest.raises((kafka_errors.ProducerFencedError,
                            kafka_errors.InvalidProducerEpochError)):
            old.send(names.files, key=b"k", value=b"late").get(timeout=10)
        new.begin_transaction()
        new.send(names.files, key=b"k", value=b"new").get(timeout=10)
        new.commit_transaction()
        wait_until(lambda: [r.value for r in broker.read(names.files)] == [b"new"],
                   what="only the new producer's record visible")
    finally:
        old.close(timeout=1)
        new.close(timeout=5)


def test_offsets_sent_with_a_transaction_are_committed_only_with_it(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    events = TopicPartition(names.events, 0)
    group = f"{names.events}.group"
    producer = broker.clients.transactional_producer(
        f"{names.files}.writer", transaction_timeout_ms=TXN_TIMEOUT_MS)
    try:
        for offset, commit in ((5, False), (7, True)):
            producer.begin_transaction()
            producer.send(names.files, key=b"k", value=str(offset).encode()).get(timeout=10)
            producer.send_offsets_to_transaction(
                {events: OffsetAndMetadata(offset, "", -1)}, group)
            if commit:
                producer.commit_transaction()
            else:
                producer.abort_transaction()
                assert broker.committed(group, names.events) == {0: None}
        wait_until(lambda: broker.committed(group, names.events) == {0: 7},
                   what="the offset committed with the transaction")
    finally:
        producer.close(timeout=5)

