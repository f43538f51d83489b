"""State expiry against a real broker: expired entries leave memory and the topic, young
ones still deduplicate."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka import KafkaProducer
from support.runtime_helpers import (
    ScriptedAction,
    fast_config,
    produce_events,
    read_to_end,
    running,
    unique_topics,
    wait_until,
)

from handlers.runtime.runner import RunnerExit

pytestmark = pytest.mark.kafka

TTL_S = 6.0


def seed_state(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]],
               age_s: float) -> None:
    """Write state records dated ``age_s`` ago (Kafka CreateTime)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        at_ms = int((time.time() - age_s) * 1000)
        for key, value in records:
            producer.send(topic, key=key, value=value, timestamp_ms=at_ms)
        producer.flush()
    finally:
        producer.close()


def last_values(bootstrap: str, topic: str) -> dict[bytes, bytes | None]:
    """The last value of each key of ``topic`` (None: tombstone)."""
    last: dict[bytes, bytes | None] = {}
    for record in read_to_end(bootstrap, topic):
        last[record.key] = record.value
    return last


def test_expired_entries_leave_memory_and_the_topic_young_ones_still_deduplicate(
    kafka_bootstrap: str,
) -> None:
    names = unique_topics(kafka_bootstrap)
    seed_state(kafka_bootstrap, names.state, [
        (b"scripted/old", b'{"n": 1}'),
        (b"scripted/gone", b'{"n": 2}'),
        (b"scripted/gone", None),
        (b"other/old", b'{"n": 3}'),  # another action's namespace: not this runner's to expire
    ], age_s=3600)
    first = produce_events(kafka_bootstrap, names.events, ["S", "S"])
    config = fast_config(kafka_bootstrap, names, "scripted",
                         state_ttl_s=TTL_S, state_expiry_every_s=0.3)
    action = ScriptedAction(state_key=True)
    with running(action, config) as run:
        store: Any = run.runner._state
        wait_until(lambda: len(action.handled()) == 2, what="two records handled")
        # Written moments ago, well within the TTL: the second record sees the first.
        assert action.seen_state == [("S", None), ("S", {"last": first[0].notice_id})]
        # The old entry was tombstoned, and its tombstone and the seeded one forgotten:
        # only S is held (values leave memory only through a tombstone).
        wait_until(lambda: set(store.held()) == {"S"}, what="only S held")
        assert store.held()["S"] == {"last": first[1].notice_id}
        topic = last_values(kafka_bootstrap, names.state)
        assert topic[b"scripted/old"] is None  # tombstoned on the topic
        assert topic[b"other/old"] == b'{"n": 3}'
        assert topic[b"scripted/S"] is not None

        # Once S is older than the TTL it goes too, from memory and from the topic.
        wait_until(lambda: store.held() == {}, timeout_s=TTL_S + 15, what="S expired")
        assert last_values(kafka_bootstrap, names.state)[b"scripted/S"] is None
        later = produce_events(kafka_bootstrap, names.events, ["S"])
        wait_until(lambda: len(action.handled()) == 3, what="the third record handled")
        assert action.seen_state[-1] == ("S", None)  # expired: nothing to deduplicate with
        assert run.stop() is RunnerExit.STOPPED

    # A restarted runner reads the tombstones back and forgets them.
    restarted = ScriptedAction(state_key=True)
    with running(restarted, config) as run:
        store = run.runner._state
        wait_until(lambda: run.sample("agora_handler_up", action="scripted") == 1,
                   what="the runner started")
        wait_until(lambda: not {"old", "gone"} & set(store.held()),
                   what="tombstones forgotten after a restart")
        assert store.held().get("S") in ({"last": later[0].notice_id}, None)
        assert run.stop() is RunnerExit.STOPPED
