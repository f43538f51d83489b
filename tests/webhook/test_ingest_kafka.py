"""End to end on a real broker under real gunicorn: what NCS sends is what lands on Kafka."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support.kafka_broker import KafkaClusterFactory, consume_all

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook

pytestmark = pytest.mark.kafka


def topic_env(events: str, quarantine: str) -> dict[str, str]:
    return {"AGORA_TOPIC_EVENTS": events, "AGORA_TOPIC_QUARANTINE": quarantine}


def test_n_signed_callbacks_give_exactly_n_records(kafka_bootstrap: str, tmp_path: Path) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events, quarantine], partitions=3)
    bodies = [
        callback_body(
            cname=f"class-{i % 7}", sequence=i, details={"msgName": "recorder_started", "status": 0}
        )
        for i in range(60)
    ]
    with (
        run_webhook(kafka_bootstrap, tmp_path, env=topic_env(events, quarantine)) as server,
        httpx.Client(timeout=10) as http,
        ThreadPoolExecutor(8) as pool,
    ):
        statuses = list(
            pool.map(
                lambda b: http.post(server.ncs_url, content=b, headers=signed(b)).status_code,
                bodies,
            )
        )
    assert statuses == [200] * len(bodies)

    records = consume_all(kafka_bootstrap, events, expected=len(bodies), timeout_s=30)
    assert len(records) == len(bodies)
    by_value = {r.value: r for r in records}
    assert set(by_value) == set(bodies), "every value is the original body, byte for byte"
    for body in bodies:
        record = by_value[body]
        sent = json.loads(body)
        headers = {k: v.decode() for k, v in record.headers}
        assert record.key == sent["payload"]["cname"].encode()
        assert headers["noticeId"] == sent["noticeId"]
        assert headers["eventType"] == "40"
        assert headers["productId"] == "3"
        assert headers["sid"] == sent["payload"]["sid"]
        assert headers["schema-version"] == "1"
        assert abs(int(headers["received-at"]) - time.time() * 1000) < 120_000
    # One channel's records share a partition, so its order is kept.
    partitions = {r.key: set() for r in records}
    for r in records:
        partitions[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions.values())
    assert consume_all(kafka_bootstrap, quarantine, expected=1, timeout_s=2) == []


def test_bad_signatures_publish_nothing_and_invalid_bodies_are_quarantined(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events, quarantine])
    good = callback_body(cname="marker")
    garbage = b'{"noticeId": "truncated'
    with (
        run_webhook(kafka_bootstrap, tmp_path, env=topic_env(events, quarantine)) as server,
        httpx.Client(timeout=10) as http,
    ):
        for i in range(20):
            forged = callback_body(cname=f"forged-{i}")
            assert (
                http.post(
                    server.ncs_url, content=forged, headers=signed(forged, "guess")
                ).status_code
                == 401
            )
            assert http.post(server.ncs_url, content=forged).status_code == 401
        assert (
            http.post(server.ncs_url, content=garbage, headers=signed(garbage)).status_code == 200
        )
        assert http.post(server.ncs_url, content=good, headers=signed(good)).status_code == 200

    records = consume_all(kafka_bootstrap, events, expected=2, timeout_s=10)
    assert [r.value for r in records] == [good]
    [quarantined] = consume_all(kafka_bootstrap, quarantine, expected=1, timeout_s=10)
    assert quarantined.value == garbage


@pytest.mark.slow
def test_broker_outage_gives_503_within_budget_and_loses_no_acknowledged_callback(
    tmp_path: Path, kafka_cluster: KafkaClusterFactory
) -> None:
    with kafka_cluster(nodes=1) as cluster:
        events, quarantine = unique_topic("events"), unique_topic("quarantine")
        create_topics(cluster.bootstrap, [events, quarantine])
        env = {**topic_env(events, quarantine), "AGORA_WEBHOOK_PUBLISH_TIMEOUT_S": "2"}
        acknowledged: list[bytes] = []
        with (
            run_webhook(cluster.bootstrap, tmp_path, env=env) as server,
            httpx.Client(timeout=15) as http,
        ):

            def post(i: int) -> tuple[int, float]:
                body = callback_body(cname=f"c{i % 5}", sequence=i)
                started = time.monotonic()
                status = http.post(server.ncs_url, content=body, headers=signed(body)).status_code
                if status == 200:
                    acknowledged.append(body)
                return status, time.monotonic() - started

            before = [post(i) for i in range(20)]
            assert {s for s, _ in before} == {200}
            cluster.stop_node(1)
            during = [post(100 + i) for i in range(5)]
            assert {s for s, _ in during} == {503}
            assert max(t for _, t in during) < 2 + 1.5, "503 comes within the publish budget"
            cluster.start_node(1)
            deadline = time.monotonic() + 60
            after: list[int] = []
            while time.monotonic() < deadline and (not after or after[-1] != 200):
                after.append(post(200 + len(after))[0])
            assert after[-1] == 200
            after += [post(300 + i)[0] for i in range(10)]
            assert after[-10:] == [200] * 10

        records = consume_all(cluster.bootstrap, events, expected=len(acknowledged), timeout_s=30)
        on_topic = {r.value for r in records}
        missing = [b for b in acknowledged if b not in on_topic]
        print(f"\nacknowledged={len(acknowledged)} on_topic={len(on_topic)} missing={len(missing)}")
        assert missing == []
