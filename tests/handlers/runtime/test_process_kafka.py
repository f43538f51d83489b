"""``agora-events handlers`` as a real process: SIGTERM drains and commits; SIGKILL then a
restart loses nothing and publishes every output exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.paths import ROOT, TESTS
from support.runtime_helpers import (
    committed_offsets,
    consume_all_uncommitted,
    produce_events,
    read_to_end,
    wait_until,
)

from handlers.testing.fresh_topics import topics_env, unique_topics
from webhook.shared.kafka_settings import TopicNames

pytestmark = pytest.mark.kafka

CLI = Path(sys.executable).with_name("agora-events")
PLUGIN = "slow=support.runtime_helpers:slow_echo_factory"
COUNT = 300
# Two keys: records of different keys run concurrently, so the stream takes COUNT / 2
# times the action's 20 ms; a stop after 30 outputs lands mid-stream.


def start(bootstrap: str, names: TopicNames, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **topics_env(names),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGORA_HANDLERS_GROUP_PREFIX": prefix,
        "AGORA_HANDLERS_METRICS_PORT": "0",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
    }
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [
                str(CLI), "handlers", "--plugin", PLUGIN, "--instance-id", "one",
                # The killed member's partitions wait this long before the restart gets them.
                "--session-timeout-ms", "6000", "slow",
            ],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )


def notices(records: list[Any]) -> list[str]:
    return [json.loads(r.value)["noticeId"] for r in records]


def assert_key_order(handled: list[str], sent: list[Any]) -> None:
    """Each key's records appear in the order they were sent."""
    key_of = {e.notice_id: e.cname for e in sent}
    for key in {e.cname for e in sent}:
        mine = [n for n in handled if key_of[n] == key]
        assert mine == [e.notice_id for e in sent if e.cname == key][: len(mine)], key


def test_sigterm_commits_exactly_after_the_last_handled_record(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = unique_topics(kafka_bootstrap)
    prefix = f"rt-{uuid.uuid4().hex[:8]}"
    sent = produce_events(kafka_bootstrap, names.events, [f"c{i % 2}" for i in range(COUNT)])
    log = tmp_path / "handlers.log"
    process = start(kafka_bootstrap, names, prefix, log)
    try:
        wait_until(lambda: len(read_to_end(kafka_bootstrap, names.files)) >= 30,
                   what="30 outputs")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        process.kill()
    handled = notices(read_to_end(kafka_bootstrap, names.files))
    assert 30 <= len(handled) < COUNT, "the stop should land mid-stream"
    assert len(set(handled)) == len(handled), "each record is handled once"
    assert_key_order(handled, sent)
    # Keys run concurrently, so a record may finish above one that did not: the commit
    # stops right after the contiguous handled prefix; records above it are redone.
    done = set(handled)
    prefix_len = next(i for i, e in enumerate(sent) if e.notice_id not in done)
    assert committed_offsets(kafka_bootstrap, f"{prefix}.slow", names.events) == {
        0: prefix_len
    }
    assert "SIGTERM received" in log.read_text()


def test_sigkill_then_restart_loses_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    names = unique_topics(kafka_bootstrap)
    prefix = f"rt-{uuid.uuid4().hex[:8]}"
    sent = produce_events(kafka_bootstrap, names.events, [f"c{i % 2}" for i in range(COUNT)])
    log = tmp_path / "handlers.log"
    first = start(kafka_bootstrap, names, prefix, log)
    try:
        wait_until(lambda: len(read_to_end(kafka_bootstrap, names.files)) >= 30,
                   what="30 outputs")
        first.kill()
        first.wait(timeout=10)
    finally:
        first.kill()
    before = notices(read_to_end(kafka_bootstrap, names.files))
    assert len(before) < COUNT
    at_kill = committed_offsets(kafka_bootstrap, f"{prefix}.slow", names.events).get(0) or 0
    second = start(kafka_bootstrap, names, prefix, log)
    try:
        wait_until(
            lambda: committed_offsets(kafka_bootstrap, f"{prefix}.slow", names.events)
            == {0: COUNT},
            timeout_s=60, what="every record committed after the restart",
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, log.read_text()
    finally:
        second.kill()
    committed = notices(read_to_end(kafka_bootstrap, names.files))
    # Every record's output is visible to read_committed readers, each key's in order.
    assert set(committed) == {e.notice_id for e in sent}
    assert_key_order(list(dict.fromkeys(committed)), sent)
    # A record published twice finished above the commit point when the process died
    # (keys run concurrently): nothing at or below the committed offset is redone.
    index = {e.notice_id: i for i, e in enumerate(sent)}
    twice = [n for n, seen in Counter(committed).items() if seen > 1]
    assert all(index[n] >= at_kill for n in twice), (at_kill, sorted(index[n] for n in twice))
    # Anything else in the log belongs to a transaction the restart aborted.
    everything = Counter(notices(consume_all_uncommitted(kafka_bootstrap, names.files, COUNT)))
    assert set(everything) == set(committed)


def test_agora_events_handlers_echo_stops_cleanly_on_sigterm(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = unique_topics(kafka_bootstrap, partitions=2)
    prefix = f"rt-{uuid.uuid4().hex[:8]}"
    sent = produce_events(kafka_bootstrap, names.events, [f"c{i}" for i in range(20)])
    env = {
        **os.environ,
        **topics_env(names),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "AGORA_HANDLERS_GROUP_PREFIX": prefix,
        "AGORA_HANDLERS_METRICS_PORT": "0",
        "AGORA_HANDLERS_HEALTH_FILE": str(tmp_path / "alive"),
    }
    log = tmp_path / "echo.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(CLI), "handlers", "echo"], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        wait_until(lambda: len(read_to_end(kafka_bootstrap, names.actions)) == len(sent),
                   what="an outcome per event")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        process.kill()
    expected: dict[int, int | None] = {0: None, 1: None}
    for event in sent:
        expected[event.partition] = max(expected[event.partition] or 0, event.offset + 1)
    assert committed_offsets(kafka_bootstrap, f"{prefix}.echo", names.events) == expected
    assert (tmp_path / "alive").exists()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"handler started", "handlers stopped"} <= {line["message"] for line in lines}
    assert all(line["level"] in ("INFO", "WARNING") for line in lines)
