"""``agora-events replay --handler H --since T --until T [--cname C]`` on the real broker:
the events of the range (and channel) are copied for H alone; H handles them again, the
other handlers skip them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer
from support.runtime_helpers import (
    ScriptedAction,
    fast_config,
    header,
    read_to_end,
    running,
    wait_until,
)

from handlers.runtime import dlq
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification

pytestmark = pytest.mark.kafka

CLI = Path(sys.executable).with_name("agora-events")
HOUR_MS = 3600 * 1000


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def test_replay_by_time_range_reruns_one_handler(kafka_bootstrap: str) -> None:
    names = unique_topics(kafka_bootstrap, partitions=2)
    t0 = int(time.time() * 1000) - 10 * HOUR_MS
    tag = uuid.uuid4().hex[:6]
    # (notice id, cname, hours after t0)
    plan = [("e0", "x", 0), ("e1", "x", 1), ("e2", "y", 2), ("e3", "x", 3), ("e4", "y", 4)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        for notice, cname, hours in plan:
            raw = callback_body(event_type=40, cname=f"{cname}-{tag}", notice_id=notice,
                                details={"msgName": "recorder_started"})
            record = event_record(names.events, raw, parse_notification(raw), t0, "v2")
            producer.send(names.events, key=record.key, value=record.value,
                          headers=list(record.headers), timestamp_ms=t0 + hours * HOUR_MS)
        producer.flush(timeout=10)
    finally:
        producer.close()
    env = {**os.environ, **topics_env(names), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "AGORA_HANDLERS_GROUP_PREFIX": f"rt-{tag}"}

    def cli(*args: str) -> str:
        result = subprocess.run([str(CLI), "replay", *args], env=env, capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    window = ("--since", iso(t0 + HOUR_MS // 2), "--until", iso(t0 + 7 * HOUR_MS // 2))
    dry = cli("--handler", "scripted", *window, "--dry-run", "--cname", f"x-{tag}")
    assert dry.splitlines()[-1] == (
        "dry run: 2 event(s) would be replayed for scripted; nothing was written")
    assert len(read_to_end(kafka_bootstrap, names.events)) == 5

    out = cli("--handler", "scripted", *window)
    assert out.splitlines()[-1] == "replayed 3 event(s) for scripted"
    records = read_to_end(kafka_bootstrap, names.events)
    copies = [r for r in records if header(r, dlq.REPLAY_FOR) is not None]
    assert sorted(header(r, "noticeId") for r in copies) == ["e1", "e2", "e3"]
    assert {header(r, dlq.REPLAY_FOR) for r in copies} == {"scripted"}
    for copy in copies:  # same key, value and partition as the original
        (original,) = [r for r in records if r.offset == int(
            header(copy, dlq.REPLAYED_FROM).rsplit("/", 1)[1])
            and r.partition == copy.partition]
        assert (copy.key, copy.value) == (original.key, original.value)

    scripted, other = ScriptedAction(name="scripted"), ScriptedAction(name="other")
    with running(scripted, fast_config(kafka_bootstrap, names, "scripted")), \
            running(other, fast_config(kafka_bootstrap, names, "other")) as other_run:
        wait_until(lambda: len(scripted.handled()) == 8, what="originals and copies handled")
        wait_until(lambda: len(other.handled()) == 5
                   and other_run.sample("agora_handler_skipped_total", action="other") == 3,
                   what="the other handler skipped the copies")
    assert sorted(n for _, n in scripted.handled()) == [
        "e0", "e1", "e1", "e2", "e2", "e3", "e3", "e4"]
    assert sorted(n for _, n in other.handled()) == ["e0", "e1", "e2", "e3", "e4"]
