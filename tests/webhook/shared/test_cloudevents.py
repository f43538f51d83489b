"""``agora.ncs.events`` records are CloudEvents in Kafka binary content mode: the CloudEvents
SDK for Python reads a record the real webhook published to a real broker, and the value it
hands over is the callback's bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from support.kafka_broker import consume_all

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.event_records import cloudevent_headers, event_record
from webhook.shared.events import parse_notification
from webhook.shared.samples import encode, sample


def as_cloudevent(key: bytes | None, value: bytes, headers: Any) -> Any:
    return from_binary_event(KafkaMessage(headers=dict(headers), key=key, value=value))


def test_the_webhook_record_reads_as_a_cloudevent() -> None:
    body = encode(sample(11, noticeId="n-42", notifyMs=1_718_090_190_545, exitStatus=1))
    record = event_record("agora.ncs.events", body, parse_notification(body), 1, "V2")
    event = as_cloudevent(record.key, record.value, record.headers)
    assert event.get_id() == "n-42"
    assert event.get_type() == "io.agora.ncs.3.11"
    assert event.get_source() == "/agora/ncs"
    assert event.get_specversion() == "1.0"
    assert event.get_time().isoformat() == "2024-06-11T07:16:30.545000+00:00"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == json.loads(body)
    assert event.get_extension("partitionkey") == "class-101"
    assert record.value == body  # binary mode: the value is the data, untouched


def test_a_notify_time_that_is_no_date_leaves_ce_time_out() -> None:
    body = encode(sample(40, notifyMs=10**18))
    names = [name for name, _ in cloudevent_headers(parse_notification(body), "V2")]
    assert "ce_time" not in names
    assert {"ce_id", "ce_type", "ce_source", "ce_specversion", "content-type"} <= set(names)


@pytest.mark.parametrize(
    ("notify_ms", "ce_time"),
    [
        (0, b"1970-01-01T00:00:00.000Z"),
        (-1, b"1969-12-31T23:59:59.999Z"),
        (-62_135_596_800_000, b"0001-01-01T00:00:00.000Z"),
        # A float division would round these to .998 and .825.
        (253_402_300_799_999, b"9999-12-31T23:59:59.999Z"),
        (151_025_877_515_826, b"6755-10-27T16:38:35.826Z"),
        (-62_135_596_800_001, None),
        (253_402_300_800_000, None),
    ],
)
def test_ce_time_is_exact_to_the_millisecond_within_the_years_1_to_9999(
    notify_ms: int, ce_time: bytes | None
) -> None:
    headers = dict(cloudevent_headers(parse_notification(encode(sample(40, notifyMs=notify_ms))),
                                      "V2"))
    assert headers.get("ce_time") == ce_time


@pytest.mark.kafka
def test_a_consumer_reads_published_callbacks_as_cloudevents(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events, quarantine])
    bodies = [encode(sample(code)) for code in (1, 11, 31)]
    env = {"AGORA_TOPIC_EVENTS": events, "AGORA_TOPIC_QUARANTINE": quarantine}
    with run_webhook(kafka_bootstrap, tmp_path, env=env, workers=1, threads=2) as server, \
            httpx.Client(timeout=10) as http:
        for body in bodies:
            assert http.post(server.ncs_url, content=body, headers=signed(body)).status_code == 200
    records = consume_all(kafka_bootstrap, events, expected=len(bodies))
    assert sorted(r.value for r in records) == sorted(bodies)  # byte for byte
    for record in records:
        sent = json.loads(record.value)
        event = as_cloudevent(record.key, record.value, record.headers)
        assert event.get_id() == sent["noticeId"]
        assert event.get_type() == f"io.agora.ncs.3.{sent['eventType']}"
        assert event.get_source() == "/agora/ncs"
        assert int(event.get_time().timestamp() * 1000) == sent["notifyMs"]
        assert event.get_data() == sent
        headers = {k: v.decode() for k, v in record.headers}
        # The existing headers are still there next to the CloudEvents ones.
        assert headers["noticeId"] == sent["noticeId"]
        assert headers["eventType"] == str(sent["eventType"])
        assert headers["verified-by"] == "Agora-Signature-V2"
