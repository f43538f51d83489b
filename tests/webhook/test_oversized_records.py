"""A record the topic can never take: a permanent answer, a pointer on the quarantine topic,
and nothing stuck (not the direct path, not the spool)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from support.kafka_broker import consume_all

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.drainer import SpoolDrainer
from webhook.publisher import KafkaPublisher, PublishRejected, producer_config
from webhook.settings import RECORD_ROOM_BYTES
from webhook.shared.event_records import Record
from webhook.shared.kafka_settings import KafkaSettings
from webhook.spool import Spool

TOPIC_LIMIT = 20_000  # the test topic's max.message.bytes


def big_body(cname: str = "class-big") -> bytes:
    return callback_body(cname=cname, details={"msgName": "recorder_started", "pad": "x" * 40_000})


def test_the_producer_limit_follows_the_body_limit() -> None:
    for limit in (64 * 1024, 1024 * 1024, 4 * 1024 * 1024):
        config = producer_config(KafkaSettings(), 5.0, max_body_bytes=limit)
        assert config["max_request_size"] == limit + RECORD_ROOM_BYTES


@pytest.mark.kafka
def test_a_callback_the_topic_cannot_take_is_answered_413_and_quarantined_as_a_pointer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events], configs={"max.message.bytes": str(TOPIC_LIMIT)})
    create_topics(kafka_bootstrap, [quarantine])
    env = {"AGORA_TOPIC_EVENTS": events, "AGORA_TOPIC_QUARANTINE": quarantine}
    big, small = big_body(), callback_body(cname="class-big")
    with run_webhook(kafka_bootstrap, tmp_path, env=env) as server:
        refused = httpx.post(server.ncs_url, content=big, headers=signed(big), timeout=15)
        started = time.monotonic()
        after = httpx.post(server.ncs_url, content=small, headers=signed(small), timeout=15)
        after_s = time.monotonic() - started
    assert refused.status_code == 413
    assert refused.json()["error"] == "record_too_large"
    assert after.status_code == 200
    assert after_s < 2.0, "the refused record does not hold up the next one"
    assert [r.value for r in consume_all(kafka_bootstrap, events, expected=1)] == [small]
    [pointer] = consume_all(kafka_bootstrap, quarantine, expected=1)
    described = json.loads(pointer.value)
    assert described["topic"] == events
    assert described["sizeBytes"] == len(big)
    assert described["sha256"] == hashlib.sha256(big).hexdigest()
    assert described["headers"]["noticeId"] == json.loads(big)["noticeId"]
    assert "MessageSizeTooLarge" in dict(pointer.headers)["quarantine-reason"].decode()


@pytest.mark.kafka
@pytest.mark.parametrize("refused_by", ["broker", "producer"])
def test_the_spool_sets_an_unpublishable_record_aside_and_drains_the_rest_in_order(
    kafka_bootstrap: str, tmp_path: Path, refused_by: str
) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events], configs={"max.message.bytes": str(TOPIC_LIMIT)})
    create_topics(kafka_bootstrap, [quarantine])
    # "producer": a body limit so small the producer itself refuses the big record.
    body_limit = 1000 if refused_by == "producer" else 1024 * 1024
    publisher = KafkaPublisher(
        KafkaSettings(bootstrap_servers=kafka_bootstrap), 5.0, max_body_bytes=body_limit
    )
    values = [b"first", big_body(), b"third", b"fourth"]
    with Spool(tmp_path / "spool", 64 * 1024 * 1024) as spool:
        for value in values:
            spool.append(Record(events, b"class-big", value, (("noticeId", b"n"),)), 1)
        drainer = SpoolDrainer(spool, publisher, 5.0, (events, quarantine), quarantine)
        for _ in range(10):
            if not spool.has_pending():
                break
            drainer.drain_once()
        assert not spool.has_pending(), "the spool is not blocked by the record"
    publisher.close()
    on_topic = consume_all(kafka_bootstrap, events, expected=3)
    assert [r.value for r in on_topic] == [b"first", b"third", b"fourth"]
    [pointer] = consume_all(kafka_bootstrap, quarantine, expected=1)
    assert json.loads(pointer.value)["sha256"] == hashlib.sha256(values[1]).hexdigest()


@pytest.mark.kafka
def test_a_rejection_is_permanent_not_a_broker_outage(kafka_bootstrap: str) -> None:
    events = unique_topic("events")
    create_topics(kafka_bootstrap, [events], configs={"max.message.bytes": str(TOPIC_LIMIT)})
    publisher = KafkaPublisher(KafkaSettings(bootstrap_servers=kafka_bootstrap), 5.0)
    try:
        with pytest.raises(PublishRejected):
            publisher.publish(Record(events, None, big_body(), ()), 5.0)
        assert publisher.ready(), "one refused record does not make the broker look down"
    finally:
        publisher.close()
