"""The notify action under the real runner and broker (events topic input): each file
published once, one alert per incident across duplicates and a sink's 500, a resolve on
recovery, and the state written under the handler's namespace."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from support.kafka_broker import consume_all
from support.rules_files import pagerduty_sink, webhook_sink
from support.runtime_helpers import fast_config, read_to_end, running, wait_until

from handlers.config import parse_rules
from handlers.notify.action import NotifyAction
from handlers.runtime.runner import RunnerExit
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fresh_topics import unique_topics
from webhook.shared.clock import SystemClock
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification

pytestmark = pytest.mark.kafka

CNAME = "class-kafka"
SID = "5f0c1e2d3b4a59687766554433221100"
T0 = 1_700_000_000_000
PD_KEY = "PDR0UT1NGKEY0123456789abcdefABCD"
RULES = webhook_sink("raw-signing-secret") + pagerduty_sink() + """
[[alerts.rules]]
name = "fatal-error"
events = [1]
where = { errorLevel = 5 }
sinks = ["ops", "pd"]
"""


def body(event_type: int, details: dict[str, Any], sendts: int, notice_id: str) -> bytes:
    return json.dumps({
        "noticeId": notice_id, "productId": 3, "eventType": event_type, "notifyMs": sendts,
        "payload": {"cname": CNAME, "uid": "900001", "sid": SID, "sequence": 0,
                    "sendts": sendts, "serviceType": 1, "details": details},
    }, separators=(",", ":")).encode()


def produce(bootstrap: str, topic: str, bodies: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for raw in bodies:
            record = event_record(topic, raw, parse_notification(raw), int(time.time() * 1000),
                                  "v2")
            producer.send(topic, key=record.key, value=record.value, headers=list(record.headers))
        producer.flush(timeout=10)
    finally:
        producer.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def test_notify_under_the_runner(
    kafka_bootstrap: str, fake_sinks: FakeSinks, client: httpx.Client
) -> None:
    names = unique_topics(kafka_bootstrap)
    env = {"OPS_URL": fake_sinks.webhook_url("ops", "raw-signing-secret"),
           "PD_URL": fake_sinks.pagerduty_url("pd"), "PD_KEY": PD_KEY}
    action = NotifyAction(alerts=parse_rules(RULES, env).alerts, topics=names, client=client,
                          clock=SystemClock())
    fake_sinks.script("pd", 500)  # the runtime retries; ops must not get a second trigger

    mp4, m3u8 = f"{SID}_{CNAME}_0.mp4", f"{SID}_{CNAME}.m3u8"
    upload = body(31, {"msgName": "uploaded", "status": 0,
                       "fileList": [{"fileName": mp4}, {"fileName": m3u8}]}, T0 - 5000, "u1")
    fatal = {"msgName": "cloud_recording_error", "module": 2, "errorLevel": 5, "errorCode": 52}
    bodies = [
        upload,
        upload,  # NCS retry: the same bytes
        body(31, {"msgName": "uploaded", "status": 0, "fileList": [{"fileName": m3u8}]},
             T0 - 5000, "u1-redundant"),
        body(1, fatal, T0, "f1"),
        body(1, fatal, T0, "f1-redundant"),
        body(40, {"msgName": "recorder_started", "status": 0}, T0 + 60_000, "s1"),
    ]
    produce(kafka_bootstrap, names.events, bodies)

    config = fast_config(kafka_bootstrap, names, action.name)
    with running(action, config) as run:
        def handled() -> float:
            return sum(run.sample("agora_handler_outcomes_total", action="notify", outcome=o)
                       for o in ("ok", "ignored", "failed", "dead_lettered"))

        wait_until(lambda: handled() == len(bodies), what="every event handled")
        assert run.stop() is RunnerExit.STOPPED
    action.close()

    assert run.sample("agora_handler_outcomes_total", action="notify", outcome="ok") == 3
    pages = fake_sinks.deliveries("pd")
    assert [a.json["event_action"] for a in pages] == ["trigger", "resolve"]
    assert all(p.problems == () for p in fake_sinks.attempts("pd"))  # Events v2 bodies
    assert {p.json["routing_key"] for p in pages} == {PD_KEY}
    assert pages[1].json["dedup_key"] == pages[0].json["dedup_key"]
    assert len(fake_sinks.attempts("pd")) == 3
    hooks = fake_sinks.deliveries("ops")
    assert [h.json["type"] for h in hooks] == ["agora.alert.triggered", "agora.alert.resolved"]
    assert all(h.problems == () for h in hooks)  # signature and timestamp verified
    assert all(h.headers["webhook-signature"].startswith("v1,") for h in hooks)

    files = read_to_end(kafka_bootstrap, names.files)
    assert sorted(json.loads(r.value)["fileName"] for r in files) == sorted([mp4, m3u8])
    assert {r.key for r in files} == {CNAME.encode()}

    state = {r.key.decode(): r.value for r in consume_all(kafka_bootstrap, names.state, 4)}
    alerts = json.loads(state[f"notify/alerts/{CNAME}"])
    assert alerts["recovered_ts"] == T0 + 60_000
    assert alerts["incidents"] == {}
    assert sum(k.startswith("notify/file/") for k in state) == 2
