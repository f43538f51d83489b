"""``agora-events dlq list|replay`` against a real broker, as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from support.kafka_broker import consume_all
from support.runtime_helpers import (
    ScriptedAction,
    committed_offsets,
    fast_config,
    header,
    json_values,
    produce_events,
    produce_raw,
    read_to_end,
    running,
    wait_until,
)

from handlers.runtime import dlq
from handlers.runtime.replay import DlqReader, replay_dead_letters, replay_group
from handlers.testing.fresh_topics import topics_env, unique_topics
from webhook.shared.kafka_settings import TopicNames

pytestmark = pytest.mark.kafka

CLI = Path(sys.executable).with_name("agora-events")


def cli(bootstrap: str, names: TopicNames, prefix: str, *args: str) -> str:
    env = {
        **os.environ,
        **topics_env(names),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGORA_HANDLERS_GROUP_PREFIX": prefix,
    }
    result = subprocess.run(
        [str(CLI), "dlq", *args], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def end_offset(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def test_replay_dry_run_then_replay_once_for_the_right_handler(kafka_bootstrap: str) -> None:
    names = unique_topics(kafka_bootstrap)
    prefix = f"rt-{uuid.uuid4().hex[:8]}"
    (event,) = produce_events(kafka_bootstrap, names.events, ["X"])
    failing = ScriptedAction(name="scripted", script={"X": ["transient"]})
    other = ScriptedAction(name="other")
    fail_cfg = fast_config(kafka_bootstrap, names, "scripted", max_attempts=2)
    other_cfg = fast_config(kafka_bootstrap, names, "other")
    with running(failing, fail_cfg) as run, running(other, other_cfg):
        wait_until(lambda: len(other.handled()) == 1, what="other handled X")
        wait_until(
            lambda: run.sample(
                "agora_handler_dead_letters_total", action="scripted", reason="exhausted"
            ) == 1,
            what="X dead-lettered by scripted",
        )
    (listed,) = [json.loads(line) for line in cli(kafka_bootstrap, names, prefix, "list", "--json")
                 .splitlines()]
    assert listed["handler"] == "scripted"
    assert listed["pending"] is True
    assert listed["noticeId"] == event.notice_id

    # Dry run: says what it would do, writes nothing, commits nothing.
    before = end_offset(kafka_bootstrap, names.events)
    out = cli(kafka_bootstrap, names, prefix, "replay", "--dry-run")
    assert f"would replay {names.dlq}/0/0 -> {names.events} handler=scripted key=X" in out
    assert "1 dead letter(s) would be replayed; nothing was written" in out
    assert end_offset(kafka_bootstrap, names.events) == before
    group = replay_group(prefix, "scripted")
    assert committed_offsets(kafka_bootstrap, group, names.dlq) == {0: None}

    # Replay: one copy on the events topic, addressed to the handler that gave up.
    out = cli(kafka_bootstrap, names, prefix, "replay", "--handler", "scripted")
    assert "replayed 1 dead letter(s)" in out
    assert committed_offsets(kafka_bootstrap, group, names.dlq) == {0: 1}
    after_replay = end_offset(kafka_bootstrap, names.events)
    records = consume_all(kafka_bootstrap, names.events, 2)
    copy = records[-1]
    assert copy.value == event.body
    assert copy.key == b"X"
    assert header(copy, dlq.REPLAY_FOR) == "scripted"
    assert header(copy, dlq.REPLAYED_FROM) == f"{names.dlq}/0/0"
    assert header(copy, "noticeId") == event.notice_id
    assert header(copy, dlq.DLQ_ERROR) is None

    # The fixed handler handles the copy once; the other handler skips it.
    fixed = ScriptedAction(name="scripted")
    other_again = ScriptedAction(name="other")
    with running(fixed, fail_cfg), running(other_again, other_cfg) as other_run:
        wait_until(lambda: len(fixed.handled()) == 1, what="the copy handled")
        wait_until(
            lambda: committed_offsets(kafka_bootstrap, other_cfg.group_id, names.events)
            == {0: copy.offset + 1},
            what="the other handler moved past the copy",
        )
        assert other_run.sample("agora_handler_skipped_total", action="other") == 1
    assert other_again.calls == []
    assert [n for _, n in fixed.handled()] == [event.notice_id]
    outcomes = json_values(read_to_end(kafka_bootstrap, names.actions))
    replayed = [o for o in outcomes if o["replayed"]]
    assert [(o["action"], o["outcome"]) for o in replayed] == [("scripted", "ok")]

    # A second replay finds nothing pending.
    out = cli(kafka_bootstrap, names, prefix, "replay")
    assert "replayed 0 dead letter(s)" in out
    assert end_offset(kafka_bootstrap, names.events) == after_replay
    (listed,) = [json.loads(line) for line in cli(kafka_bootstrap, names, prefix, "list", "--json")
                 .splitlines()]
    assert listed["pending"] is False


def test_replay_positions_are_per_handler_and_limit_counts_records(
    kafka_bootstrap: str,
) -> None:
    names = unique_topics(kafka_bootstrap)
    prefix = f"rt-{uuid.uuid4().hex[:8]}"
    for offset, handler in enumerate(["a", "b", "a"]):
        record = dlq.dead_letter(
            dlq_topic=names.dlq, source_topic=names.events, partition=0, offset=offset,
            key=f"k{offset}".encode(), value=b"{}", headers=[("noticeId", b"n")],
            handler=handler, error="TransientError: 503", attempts=3, at_ms=1,
        )
        produce_raw(kafka_bootstrap, record.topic, record.key, record.value,
                    list(record.headers))
    reader = DlqReader({"bootstrap_servers": kafka_bootstrap}, names.dlq, prefix)
    lines: list[str] = []

    def replay(limit: int | None) -> list[tuple[str | None, int]]:
        result = replay_dead_letters(
            DlqReader(reader.client_config, names.dlq, prefix), handler=None, limit=limit,
            dry_run=False, emit=lines.append, transactional_id=f"{prefix}.dlq-replay",
        )
        return [(r.handler, r.offset) for r in result.replayed]

    assert replay(limit=2) == [("a", 0), ("b", 1)]
    assert committed_offsets(kafka_bootstrap, replay_group(prefix, "a"), names.dlq) == {0: 1}
    assert committed_offsets(kafka_bootstrap, replay_group(prefix, "b"), names.dlq) == {0: 2}
    assert replay(limit=None) == [("a", 2)]
    assert replay(limit=None) == []
    copies = consume_all(kafka_bootstrap, names.events, 3)
    assert [(r.key, header(r, dlq.REPLAY_FOR)) for r in copies] == [
        (b"k0", "a"), (b"k1", "b"), (b"k2", "a"),
    ]
    assert len(lines) == 3
