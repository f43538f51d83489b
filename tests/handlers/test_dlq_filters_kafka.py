"""``agora-events dlq list|replay|discard`` filters on the real broker: newest first, each
filter, a filtered replay leaving the other letters pending, a discard by letter id, and
a letter naming a topic no handler consumes refused (never written there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from support.runtime_helpers import header, read_to_end

from handlers.runtime import dlq
from handlers.testing.fresh_topics import create_topics, topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.events import EVENT_TYPES
from webhook.shared.kafka_settings import TopicNames

pytestmark = pytest.mark.kafka

CLI = Path(sys.executable).with_name("agora-events")
HOUR_MS = 3600 * 1000


@dataclass(frozen=True)
class Letter:
    name: str
    cname: str
    handler: str
    event: int
    error: str
    hours: int  # after t0
    source: str = "events"


LETTERS = [
    Letter("L0", "c-a", "restart", 11, "RecordingApiError: 503 from start", 0),
    Letter("L1", "c-b", "notify", 1, "SinkError: 500 from ops", 1),
    Letter("L2", "c-a", "notify", 31, "TransientError: timeout", 2),
    Letter("L3", "c-c", "whiteboard", 11, "WhiteboardError: 401", 3),
    Letter("L4", "c-b", "restart", 11, "RecordingApiError: 433 resource expired", 4),
    # A forged letter whose provenance names the registry topic.
    Letter("L5", "c-d", "restart", 11, "RecordingApiError: 503", 5, source="sessions"),
]


class Dlq:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.names = unique_topics(bootstrap)
        tag = uuid.uuid4().hex[:8]
        self.names = self.names.model_copy(update={"dlq": f"rt-{tag}.dlq3"})
        create_topics(bootstrap, [self.names.dlq], partitions=3)
        self.prefix = f"rt-{tag}"
        self.t0 = int(time.time() * 1000) - 10 * HOUR_MS
        self.ids: dict[str, str] = {}
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        try:
            for letter in LETTERS:
                body = callback_body(
                    event_type=letter.event, cname=letter.cname, notice_id=letter.name,
                    details={"msgName": EVENT_TYPES[letter.event].msg_name})
                record = dlq.dead_letter(
                    dlq_topic=self.names.dlq, source_topic=getattr(self.names, letter.source),
                    partition=0, offset=0, key=letter.cname.encode(), value=body,
                    headers=[("noticeId", letter.name.encode()),
                             ("eventType", str(letter.event).encode())],
                    handler=letter.handler, error=letter.error, attempts=3,
                    at_ms=self.at(letter.hours),
                )
                meta = producer.send(record.topic, key=record.key, value=record.value,
                                     headers=list(record.headers),
                                     timestamp_ms=self.at(letter.hours)).get(timeout=10)
                self.ids[letter.name] = f"{self.names.dlq}/{meta.partition}/{meta.offset}"
        finally:
            producer.close()

    def at(self, hours: float) -> int:
        return self.t0 + int(hours * HOUR_MS)

    def iso(self, hours: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at(hours) / 1000))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **topics_env(self.names), "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
               "AGORA_HANDLERS_GROUP_PREFIX": self.prefix}
        result = subprocess.run([str(CLI), "dlq", *args], env=env, capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        return result

    def listed(self, *args: str) -> list[str]:
        out = self.cli("list", "--json", *args).stdout
        return [json.loads(line)["noticeId"] for line in out.splitlines()]


@pytest.fixture(scope="module")
def letters(kafka_bootstrap: str) -> Dlq:
    return Dlq(kafka_bootstrap)


def test_list_is_newest_first_across_partitions(letters: Dlq) -> None:
    assert len({i.rsplit("/", 2)[1] for i in letters.ids.values()}) > 1  # spread out
    assert letters.listed() == ["L5", "L4", "L3", "L2", "L1", "L0"]
    assert letters.listed("--limit", "2") == ["L5", "L4"]


@pytest.mark.parametrize(("args", "expected"), [
    (("--cname", "c-a"), ["L2", "L0"]),
    (("--event", "11"), ["L5", "L4", "L3", "L0"]),
    (("--event", "uploaded"), ["L2"]),
    (("--handler", "notify"), ["L2", "L1"]),
    (("--error", "recordingapierror: 4"), ["L4"]),
    (("--cname", "c-b", "--handler", "restart"), ["L4"]),
])
def test_each_filter(letters: Dlq, args: tuple[str, ...], expected: list[str]) -> None:
    assert letters.listed(*args) == expected


def test_time_filters_use_the_time_index(letters: Dlq) -> None:
    assert letters.listed("--since", letters.iso(1.5), "--until", letters.iso(3.5)) == [
        "L3", "L2"]
    assert letters.listed("--since", letters.iso(4.5)) == ["L5"]


def test_the_table_shows_one_line_per_letter(letters: Dlq) -> None:
    result = letters.cli("list", "--cname", "c-c")
    (line,) = result.stdout.splitlines()
    assert letters.ids["L3"] in line
    for part in ("pending", "whiteboard", "event=11", "cname=c-c", "WhiteboardError: 401"):
        assert part in line
    assert "1 dead letter(s)" in result.stderr


def test_filtered_replay_discard_by_id_and_the_topics_a_replay_may_write(
    kafka_bootstrap: str,
) -> None:
    own = Dlq(kafka_bootstrap)  # positions change: not the shared letters
    names: TopicNames = own.names

    dry = own.cli("replay", "--cname", "c-b", "--dry-run").stdout
    assert f"would replay {own.ids['L1']} -> {names.events} handler=notify key=c-b" in dry
    assert f"would replay {own.ids['L4']} -> {names.events} handler=restart key=c-b" in dry
    assert "dry run: 2 dead letter(s) would be replayed; nothing was written" in dry
    assert read_to_end(kafka_bootstrap, names.events) == []

    out = own.cli("replay", "--cname", "c-b").stdout
    assert "replayed 2 dead letter(s)" in out
    assert own.listed("--pending") == ["L5", "L3", "L2", "L0"]

    out = own.cli("discard", "--id", own.ids["L2"]).stdout
    assert f"discarding {own.ids['L2']} handler=notify key=c-a" in out
    assert own.listed("--pending") == ["L5", "L3", "L0"]

    result = own.cli("replay")
    assert "replayed 2 dead letter(s)" in result.stdout
    assert (f"cannot replay {own.ids['L5']}: header dlq-topic names {names.sessions!r}, "
            "which no handler consumes") in result.stdout
    assert "1 dead letter(s) cannot be replayed" in result.stderr
    assert own.listed("--pending") == ["L5"]

    copies = read_to_end(kafka_bootstrap, names.events)
    assert sorted((header(r, "noticeId"), header(r, dlq.REPLAY_FOR)) for r in copies) == [
        ("L0", "restart"), ("L1", "notify"), ("L3", "whiteboard"), ("L4", "restart")]
    assert {header(r, dlq.REPLAYED_FROM) for r in copies} == {
        own.ids[n] for n in ("L0", "L1", "L3", "L4")}
    assert end_offsets(kafka_bootstrap, names.sessions) == 0  # the forged letter wrote nothing

    # Nothing is pending any more but the refused letter: a second replay does nothing.
    assert "replayed 0 dead letter(s)" in own.cli("replay").stdout
    assert len(read_to_end(kafka_bootstrap, names.events)) == 4


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()
