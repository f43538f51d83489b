"""The disk spool under real outages: the broker gone for minutes, and the webhook killed while
the spool still holds callbacks. Every callback answered 200 must reach the topic, and each
channel's callbacks must arrive in the order NCS sent them.

``AGORA_FAULTS_OUTAGE_S`` sets how long the broker stays down (default 120 s).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from support.figures import Figure
from support.kafka_broker import KafkaClusterFactory, consume_all

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow]

OUTAGE_S = float(os.environ.get("AGORA_FAULTS_OUTAGE_S", "120"))
CHANNELS = 8
EVENT_INTERVAL_S = 0.4  # per channel: 8 channels give ~20 callbacks a second


@dataclass
class ChannelSender:
    """Posts one channel's callbacks one after another, retrying like NCS until it gets 200."""

    url: str
    cname: str
    stop: threading.Event
    answered: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def run(self) -> None:
        with httpx.Client(timeout=15) as client:
            n = 0
            while not self.stop.is_set():
                notice_id = f"{self.cname}-{n:05d}"
                body = callback_body(cname=self.cname, notice_id=notice_id, sequence=n)
                while not self._deliver(client, body):
                    time.sleep(1)  # the webhook's Retry-After
                self.answered.append(notice_id)
                n += 1
                self.stop.wait(EVENT_INTERVAL_S)

    def _deliver(self, client: httpx.Client, body: bytes) -> bool:
        try:
            status = client.post(self.url, content=body, headers=signed(body)).status_code
        except httpx.HTTPError:
            status = 0  # connection refused or reset: NCS retries too
        self.statuses[status] += 1
        return status == 200


@dataclass
class Load:
    url: str
    senders: list[ChannelSender] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        for c in range(CHANNELS):
            sender = ChannelSender(self.url, f"spool-class-{c}", self.stop)
            thread = threading.Thread(target=sender.run, daemon=True)
            self.senders.append(sender)
            self.threads.append(thread)
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def answered(self) -> dict[str, list[str]]:
        return {s.cname: list(s.answered) for s in self.senders}

    def statuses(self) -> dict[int, int]:
        total: dict[int, int] = defaultdict(int)
        for sender in self.senders:
            for status, count in sender.statuses.items():
                total[status] += count
        return dict(total)


def order_violations(on_topic: list[str], answered: dict[str, list[str]]) -> int:
    """Per channel, first appearances on the topic must follow the answered order."""
    first_seen: dict[str, int] = {}
    for position, notice_id in enumerate(on_topic):
        first_seen.setdefault(notice_id, position)
    violations = 0
    for notice_ids in answered.values():
        positions = [first_seen[n] for n in notice_ids if n in first_seen]
        violations += sum(1 for a, b in itertools.pairwise(positions) if b < a)
    return violations


def topic_notice_ids(bootstrap: str, topic: str, expected: int) -> list[str]:
    # Read to the topic's end: duplicates (allowed) would otherwise end the read early, with
    # records still unread that would then look lost.
    records = consume_all(bootstrap, topic, max(expected, end_offset(bootstrap, topic)), 120)
    # One partition: topic order is arrival order across every channel.
    return [dict(r.headers)["noticeId"].decode() for r in records]


def end_offset(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return sum(consumer.end_offsets([TopicPartition(topic, 0)]).values())
    finally:
        consumer.close()


def spool_metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    return 0.0


def wait_for_empty_spool(url: str, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        ready = httpx.get(f"{url}/readyz", timeout=5).json()
        if ready["status"] == "ready" and ready["spool"]["pendingBytes"] == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"the spool did not drain within {timeout_s:g} s: {ready}")


def spool_env(topic: str, spool_dir: Path) -> dict[str, str]:
    return {
        "AGORA_TOPIC_EVENTS": topic,
        "AGORA_WEBHOOK_SPOOL_DIR": str(spool_dir),
        "AGORA_WEBHOOK_PUBLISH_TIMEOUT_S": "2",
    }


def test_broker_down_for_minutes_loses_nothing_and_keeps_channel_order(
    kafka_cluster: KafkaClusterFactory, tmp_path: Path, figure: Figure
) -> None:
    cluster = kafka_cluster(nodes=1)
    topic = unique_topic("spool-outage")
    create_topics(cluster.bootstrap, [topic], partitions=1)
    env = spool_env(topic, tmp_path / "spool")
    with run_webhook(cluster.bootstrap, tmp_path, env=env, workers=2, threads=8) as webhook:
        load = Load(webhook.ncs_url)
        load.start()
        time.sleep(5)
        cluster.stop_node(1, kill=True)
        outage_started = time.monotonic()
        time.sleep(OUTAGE_S)
        peak_pending = spool_metric(webhook.url, "agora_webhook_spool_pending_bytes")
        cluster.start_node(1)
        outage_s = time.monotonic() - outage_started
        time.sleep(5)
        load.finish()
        drain_s = wait_for_empty_spool(webhook.url, timeout_s=120)
        spooled = spool_metric(webhook.url, 'agora_webhook_requests_total{outcome="spooled"}')

    answered = load.answered()
    expected = sum(len(ids) for ids in answered.values())
    on_topic = topic_notice_ids(cluster.bootstrap, topic, expected)
    lost = {n for ids in answered.values() for n in ids} - set(on_topic)
    violations = order_violations(on_topic, answered)
    statuses = load.statuses()
    figure(
        "broker down with the spool on",
        outage_s=round(outage_s),
        answered_200=expected,
        spooled=int(spooled),
        peak_spool_bytes=int(peak_pending),
        on_topic=len(on_topic),
        duplicates=len(on_topic) - len(set(on_topic)),
        lost=len(lost),
        order_violations=violations,
        non_200_answers=sum(c for s, c in statuses.items() if s != 200),
        drain_after_load_s=round(drain_s, 1),
    )
    assert expected > OUTAGE_S * 10  # the load really ran through the outage
    assert spooled > 0
    assert not lost
    assert violations == 0
    # With the spool on, NCS is never asked to retry during the outage.
    assert set(statuses) == {200}


def test_a_killed_webhook_drains_its_spool_after_restart(
    kafka_cluster: KafkaClusterFactory, tmp_path: Path, figure: Figure
) -> None:
    cluster = kafka_cluster(nodes=1)
    topic = unique_topic("spool-crash")
    create_topics(cluster.bootstrap, [topic], partitions=1)
    env = spool_env(topic, tmp_path / "spool")
    cluster.stop_node(1, kill=True)
    sent = [f"crash-{n:03d}" for n in range(60)]
    with run_webhook(cluster.bootstrap, tmp_path, env=env, workers=2, threads=4) as webhook:
        with httpx.Client(timeout=15) as client:
            for n, notice_id in enumerate(sent):
                body = callback_body(cname="crash-class", notice_id=notice_id, sequence=n)
                assert (
                    client.post(webhook.ncs_url, content=body, headers=signed(body)).status_code
                    == 200
                )
        pending = httpx.get(f"{webhook.url}/readyz", timeout=5).json()["spool"]["pendingBytes"]
        os.killpg(webhook.process.pid, signal.SIGKILL)
        webhook.process.wait(10)
    cluster.start_node(1)
    started = time.monotonic()
    with run_webhook(cluster.bootstrap, tmp_path, env=env, workers=2, threads=4) as restarted:
        drain_s = wait_for_empty_spool(restarted.url, timeout_s=60)
        drained = spool_metric(restarted.url, "agora_webhook_spool_drained_total")
    on_topic = topic_notice_ids(cluster.bootstrap, topic, len(sent))
    figure(
        "webhook SIGKILLed with callbacks still spooled",
        answered_200=len(sent),
        pending_bytes_at_kill=pending,
        drained_after_restart=int(drained),
        on_topic=len(on_topic),
        lost=len(set(sent) - set(on_topic)),
        drain_s=round(time.monotonic() - started, 1),
        readiness_wait_s=round(drain_s, 1),
    )
    assert pending > 0
    assert on_topic == sent  # every one, once, in order
