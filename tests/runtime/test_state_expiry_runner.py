"""State expiry run by the runner: expired entries leave memory and the topic, young ones
still deduplicate."""

from __future__ import annotations

import time
from typing import Any

from support.runtime_brokers import RuntimeTestBroker
from support.runtime_helpers import ScriptedAction, wait_until

from handlers.runtime.runner import RunnerExit

TTL_S = {"memory": 2.0, "kafka": 6.0}
"""Longer than the time a broker takes to handle the first records and show their state
(the test checks them before they expire)."""


def seed_state(broker: RuntimeTestBroker, topic: str,
               records: list[tuple[bytes, bytes | None]], age_s: float) -> None:
    """Write state records dated ``age_s`` ago (Kafka CreateTime)."""
    at_ms = int((time.time() - age_s) * 1000)
    for key, value in records:
        broker.produce_raw(topic, key, value, timestamp_ms=at_ms)


def last_values(broker: RuntimeTestBroker, topic: str) -> dict[bytes, bytes | None]:
    """The last value of each key of ``topic`` (None: tombstone)."""
    last: dict[bytes, bytes | None] = {}
    for record in broker.read(topic):
        last[record.key] = record.value
    return last


def test_expired_entries_leave_memory_and_the_topic_young_ones_still_deduplicate(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    seed_state(broker, names.state, [
        (b"scripted/old", b'{"n": 1}'),
        (b"scripted/gone", b'{"n": 2}'),
        (b"scripted/gone", None),
        (b"other/old", b'{"n": 3}'),  # another action's namespace: not this runner's to expire
    ], age_s=3600)
    first = broker.produce_events(names.events, ["S", "S"])
    ttl_s = TTL_S[broker.kind]
    config = broker.config(names, "scripted", state_ttl_s=ttl_s, state_expiry_every_s=0.3)
    action = ScriptedAction(state_key=True)
    with broker.running(action, config) as run:
        store: Any = run.runner._state
        wait_until(lambda: len(action.handled()) == 2, what="two records handled")
        # Written moments ago, well within the TTL: the second record sees the first.
        assert action.seen_state == [("S", None), ("S", {"last": first[0].notice_id})]
        # The old entry was tombstoned, and its tombstone and the seeded one forgotten:
        # only S is held (values leave memory only through a tombstone).
        wait_until(lambda: set(store.held()) == {"S"}, what="only S held")
        assert store.held()["S"] == {"last": first[1].notice_id}
        topic = last_values(broker, names.state)
        assert topic[b"scripted/old"] is None  # tombstoned on the topic
        assert topic[b"other/old"] == b'{"n": 3}'
        assert topic[b"scripted/S"] is not None

        # Once S is older than the TTL it goes too, from memory and from the topic.
        wait_until(lambda: store.held() == {}, timeout_s=ttl_s + 15, what="S expired")
        assert last_values(broker, names.state)[b"scripted/S"] is None
        later = broker.produce_events(names.events, ["S"])
        wait_until(lambda: len(action.handled()) == 3, what="the third record handled")
        assert action.seen_state[-1] == ("S", None)  # expired: nothing to deduplicate with
        assert run.stop() is RunnerExit.STOPPED

    # A restarted runner reads the tombstones back and forgets them.
    restarted = ScriptedAction(state_key=True)
    with broker.running(restarted, config) as run:
        store = run.runner._state
        wait_until(lambda: run.sample("agora_handler_up", action="scripted") == 1,
                   what="the runner started")
        wait_until(lambda: not {"old", "gone"} & set(store.held()),
                   what="tombstones forgotten after a restart")
        assert store.held().get("S") in ({"last": later[0].notice_id}, None)
        assert run.stop() is RunnerExit.STOPPED
