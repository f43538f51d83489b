"""Expiry of state entries and forgetting of tombstones: with explicit timestamps, then
run by the runner on each broker (expired entries leave memory and the topic, young ones
still deduplicate)."""

from __future__ import annotations

import time
from typing import Any

from support.runtime_brokers import RuntimeTestBroker
from support.runtime_helpers import ScriptedAction, wait_until

from handlers.action_contract import Received
from handlers.config import AlertRule, AlertRules, AlertSink
from handlers.notify.action import NotifyAction
from handlers.runtime.runner import RunnerExit
from handlers.runtime.state import CompactedView, StateStore, Table
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000


def test_only_values_older_than_the_cutoff_are_listed() -> None:
    view = CompactedView()
    view.apply("old", 0, 1, {"v": 1}, T0)
    view.apply("young", 0, 2, {"v": 2}, T0 + HOUR_MS)
    view.apply("dead", 0, 3, None, T0)  # a tombstone has nothing left to expire
    assert view.older_than(T0 + 1) == ["old"]
    assert sorted(view.older_than(T0 + HOUR_MS + 1)) == ["old", "young"]
    assert view.older_than(T0) == []  # strictly older


def test_a_rewrite_renews_the_age_of_an_entry() -> None:
    view = CompactedView()
    view.apply("k", 0, 1, {"v": 1}, T0)
    view.apply("k", 0, 2, {"v": 2}, T0 + HOUR_MS)
    assert view.older_than(T0 + HOUR_MS) == []
    assert not view.apply("k", 0, 1, {"v": 1}, T0)  # an older record read late changes nothing
    assert view.older_than(T0 + HOUR_MS) == []


def test_tombstones_are_forgotten_only_once_read_past() -> None:
    view = CompactedView()
    view.apply("a", 0, 5, None, T0)
    view.apply("b", 1, 5, None, T0)
    view.apply("live", 0, 1, {"v": 1}, T0)
    assert view.forget_tombstones({0: 5, 1: 5}) == 0  # offset 5 itself not read yet
    assert view.forget_tombstones({0: 6}) == 1  # partition 1 not read at all
    assert view.keys_held() == 2
    assert view.get("b") is None
    assert view.forget_tombstones({0: 100, 1: 6}) == 1
    assert view.keys_held() == 1  # values are never forgotten this way
    assert view.get("live") == {"v": 1}


def test_an_older_value_cannot_come_back_while_its_tombstone_is_held() -> None:
    view = CompactedView()
    view.apply("k", 0, 10, None, T0)
    assert not view.apply("k", 0, 4, {"v": "stale"}, T0)  # read late: ignored
    view.forget_tombstones({0: 11})
    # Past the tombstone only newer records can arrive; they apply as usual.
    assert view.apply("k", 0, 12, {"v": "new"}, T0)
    assert view.get("k") == {"v": "new"}


def test_a_table_dates_records_without_a_timestamp_now() -> None:
    table = Table("sessions")
    table.observe(b"dated", b"{}", 0, 1, T0)
    table.observe(b"undated", b"{}", 0, 2)
    assert table.older_than(T0 + 1) == ["dated"]
    assert table.forget_tombstones() == 0  # no reader: nothing known to be read past


def test_expire_stages_tombstones_for_old_entries_only() -> None:
    store = StateStore("state", "notify")
    store.observe(b"notify/old", b'{"n": 1}', 0, 1, T0)
    store.observe(b"notify/young", b'{"n": 2}', 0, 2, T0 + HOUR_MS)
    store.observe(b"restart/old", b'{"n": 3}', 0, 3, T0)  # another action's entry
    records = store.expire(T0 + HOUR_MS, ttl_ms=HOUR_MS // 2)
    assert [(r.topic, r.key, r.value) for r in records] == [("state", b"notify/old", None)]
    assert store.get("old") is None  # gone for the action at once
    assert store.get("young") == {"n": 2}
    assert store.live_keys() == 2  # still held until the tombstone commits
    store.observe(records[0].key, records[0].value, 0, 4, T0 + HOUR_MS)
    store.committed()
    assert store.live_keys() == 1
    assert store.keys_held() == 2  # the tombstone, until read past
    assert store.forget_tombstones({0: 5}) == 1
    assert store.keys_held() == 1
    assert store.get("old") is None


def test_an_aborted_expiry_keeps_the_entry_to_expire_again() -> None:
    store = StateStore("state", "notify")
    store.observe(b"notify/old", b'{"n": 1}', 0, 1, T0)
    assert len(store.expire(T0 + HOUR_MS, ttl_ms=1)) == 1
    store.abort()
    assert store.get("old") == {"n": 1}
    assert [r.key for r in store.expire(T0 + HOUR_MS, ttl_ms=1)] == [b"notify/old"]


def test_expire_leaves_staged_keys_alone_and_respects_the_limit() -> None:
    store = StateStore("state", "notify")
    for i in range(5):
        store.observe(f"notify/k{i}".encode(), b'{"n": 1}', 0, i, T0)
    store.stage({"k0": {"n": 2}})  # written by a record of this batch
    records = store.expire(T0 + HOUR_MS, ttl_ms=1, limit=3)
    assert [r.key for r in records] == [b"notify/k1", b"notify/k2", b"notify/k3"]
    assert store.get("k0") == {"n": 2}
    assert store.get("k4") == {"n": 1}  # over the limit: next time
    assert store.expire(T0 + HOUR_MS, ttl_ms=1)[0].key == b"notify/k4"


def _recorder_started() -> Received:
    body = callback_body(event_type=40, cname="class-7")
    notification = parse_notification(body)
    return Received(notification=notification, raw=body, topic=TopicNames().events,
                    partition=0, offset=1, headers={}, key="class-7")


def _notify(rules: list[AlertRule]) -> NotifyAction:
    sinks = [AlertSink(name="ops", kind="webhook", url="http://127.0.0.1:9/hook")]
    return NotifyAction(alerts=AlertRules(sinks=sinks, rules=rules), topics=TopicNames())


def test_notify_writes_no_alert_entry_per_channel_without_alert_rules() -> None:
    store = StateStore("state", "notify")
    without_rules = _notify([])
    assert without_rules.decide(_recorder_started(), store) is None
    without_rules.close()
    # With a rule, the recovery time is kept: it stops older failure notices read late.
    with_rules = _notify([AlertRule(name="exit", events=[41], sinks=["ops"])])
    command = with_rules.decide(_recorder_started(), store)
    with_rules.close()
    assert command is not None
    assert command.alert_state is not None
    assert command.alert_state["recovered_ts"] is not None


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
