"""The runner against each broker: commits, ordering under retries, DLQ, state, guard."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from support.runtime_brokers import MemoryTestBroker, RuntimeTestBroker
from support.runtime_helpers import ScriptedAction, json_values, wait_until

from handlers.action_contract import Effects, Output, StateView
from handlers.echo import EchoAction
from handlers.runtime import dlq
from handlers.runtime.guard import GuardPolicy
from handlers.runtime.runner import RunnerExit


def test_every_record_is_handled_and_committed_after_the_last(broker: RuntimeTestBroker) -> None:
    names = broker.topics(partitions=3)
    sent = broker.produce_events(names.events, [f"class-{i % 7}" for i in range(40)])
    config = broker.config(names, "echo")
    with broker.running(EchoAction(), config) as run:
        wait_until(
            lambda: run.sample("agora_handler_outcomes_total", action="echo", outcome="ok") == 40,
            what="40 ok outcomes",
        )
        assert run.stop() is RunnerExit.STOPPED
    last: dict[int, int] = {}
    for event in sent:
        last[event.partition] = max(last.get(event.partition, -1), event.offset)
    committed = broker.committed(config.group_id, names.events)
    assert committed == {p: last.get(p, -1) + 1 if p in last else None for p in committed}
    outcomes = json_values(broker.read(names.actions))
    assert sorted(o["noticeId"] for o in outcomes) == sorted(e.notice_id for e in sent)
    assert {o["outcome"] for o in outcomes} == {"ok"}
    assert {o["action"] for o in outcomes} == {"echo"}


def test_a_parked_key_does_not_block_other_keys_and_keeps_its_order(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics(partitions=1)
    action = ScriptedAction(script={"A": ["transient", "transient", "ok"]})
    cnames = ["A", "B", "B", "A", "B", "B", "A", "B"]
    sent = broker.produce_events(names.events, cnames)
    config = broker.config(names, action.name, base_delay_s=0.5)
    with broker.running(action, config) as run:
        wait_until(
            lambda: len(set(action.handled())) == len(sent), what="every record handled"
        )
        assert run.stop() is RunnerExit.STOPPED
    handled = action.handled()
    a_notices = [e.notice_id for e in sent if e.cname == "A"]
    b_notices = [e.notice_id for e in sent if e.cname == "B"]
    order = [notice for _, notice in handled]
    # B flowed while A's first record was parked...
    assert max(order.index(n) for n in b_notices) < order.index(a_notices[0])
    # ...and A's records were handled in their order, each after its two retries.
    assert [n for n in order if n in a_notices] == a_notices
    assert [c for c, n, r in action.calls if n == a_notices[1]] == ["A", "A", "A"]
    assert broker.committed(config.group_id, names.events) == {0: len(sent)}
    outcomes = json_values(broker.read(names.actions))
    assert sum(o["outcome"] == "retrying" for o in outcomes) == 6
    assert sum(o["outcome"] == "ok" for o in outcomes) == len(sent)


def test_an_exhausted_budget_ends_in_the_dlq_with_provenance(broker: RuntimeTestBroker) -> None:
    names = broker.topics(partitions=2)
    action = ScriptedAction(script={"X": ["transient"], "Z": ["boom"]})
    sent = broker.produce_events(names.events, ["X", "Y", "Z"])
    config = broker.config(names, action.name, max_attempts=3)
    with broker.running(action, config) as run:
        wait_until(
            lambda: run.sample(
                "agora_handler_dead_letters_total", action=action.name, reason="exhausted"
            ) == 2,
            what="two dead letters",
        )
        wait_until(lambda: len(action.handled()) == 1, what="Y handled")
        assert run.stop() is RunnerExit.STOPPED
    dead = {r.key: r for r in broker.read(names.dlq)}
    assert set(dead) == {b"X", b"Z"}
    for event in sent:
        if event.cname == "Y":
            continue
        record = dead[event.cname.encode()]
        headers = dict(record.headers)
        assert record.value == event.body
        assert headers[dlq.DLQ_TOPIC] == names.events.encode()
        assert headers[dlq.DLQ_PARTITION] == str(event.partition).encode()
        assert headers[dlq.DLQ_OFFSET] == str(event.offset).encode()
        assert headers[dlq.DLQ_HANDLER] == action.name.encode()
        assert headers[dlq.DLQ_ATTEMPTS] == b"3"
        assert int(headers[dlq.DLQ_AT]) > 1_600_000_000_000
        assert headers["noticeId"] == event.notice_id.encode()
        assert headers["schema-version"] == b"1"
    assert dict(dead[b"X"].headers)[dlq.DLQ_ERROR] == b"TransientError: remote said 503"
    assert dict(dead[b"Z"].headers)[dlq.DLQ_ERROR] == b"RuntimeError: a bug"
    committed = broker.committed(config.group_id, names.events)
    expected: dict[int, int | None] = {0: None, 1: None}
    for event in sent:
        expected[event.partition] = max(expected[event.partition] or 0, event.offset + 1)
    assert committed == expected
    outcomes = json_values(broker.read(names.actions))
    dead_outcomes = [o for o in outcomes if o["outcome"] == "dead_lettered"]
    assert sorted(o["cname"] for o in dead_outcomes) == ["X", "Z"]
    assert all(o["attempts"] == 3 for o in dead_outcomes)


def test_invalid_records_go_to_the_dlq_at_once(broker: RuntimeTestBroker) -> None:
    names = broker.topics()
    action = ScriptedAction(script={"inv": ["invalid"]})
    broker.produce_raw(names.events, b"junk", b"{not json", [("noticeId", b"n-1")])
    sent = broker.produce_events(names.events, ["inv", "ok"])
    config = broker.config(names, action.name)
    with broker.running(action, config) as run:
        wait_until(
            lambda: run.sample(
                "agora_handler_dead_letters_total", action=action.name, reason="invalid"
            ) == 2,
            what="two invalid dead letters",
        )
        wait_until(lambda: len(action.handled()) == 1, what="the good record handled")
        assert run.stop() is RunnerExit.STOPPED
    dead = {r.key: r for r in broker.read(names.dlq)}
    junk = dict(dead[b"junk"].headers)
    assert dead[b"junk"].value == b"{not json"
    assert junk[dlq.DLQ_ATTEMPTS] == b"0"
    assert junk[dlq.DLQ_OFFSET] == b"0"
    assert junk[dlq.DLQ_ERROR].startswith(b"InvalidEvent: EventError: invalid notification")
    assert junk["noticeId"] == b"n-1"
    inv = dict(dead[b"inv"].headers)
    assert inv[dlq.DLQ_ATTEMPTS] == b"1"
    assert inv[dlq.DLQ_ERROR] == b"InvalidEvent: details.status is missing"
    assert dead[b"inv"].value == sent[0].body
    # run was called once for the invalid record: no retry
    assert [behaviour for cname, _, behaviour in action.calls if cname == "inv"] == ["invalid"]
    assert broker.committed(config.group_id, names.events) == {0: 3}


def test_action_failed_publishes_its_effects_and_commits(broker: RuntimeTestBroker) -> None:
    names = broker.topics()
    action = ScriptedAction(script={"F": ["failed"]}, output_topic=names.files)
    sent = broker.produce_events(names.events, ["F"])
    config = broker.config(names, action.name)
    with broker.running(action, config) as run:
        wait_until(lambda: len(action.handled()) == 1, what="F handled")
        assert run.stop() is RunnerExit.STOPPED
    outputs = json_values(broker.read(names.files))
    assert outputs == [{"noticeId": sent[0].notice_id}]
    (outcome,) = json_values(broker.read(names.actions))
    assert outcome["outcome"] == "failed"
    assert outcome["error"] == "ActionFailed: remote said 404"
    assert outcome["eventType"] == 40
    assert outcome["sid"] == "38f8e3cfdc474cd56fc1ceba380d7e1a"
    assert broker.committed(config.group_id, names.events) == {0: 1}


def test_state_is_visible_to_the_next_record_and_survives_a_restart(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    first = broker.produce_events(names.events, ["S", "S"])
    config = broker.config(names, "scripted")
    action = ScriptedAction(state_key=True)
    with broker.running(action, config) as run:
        wait_until(lambda: len(action.handled()) == 2, what="two records handled")
        run.stop()
    assert action.seen_state == [("S", None), ("S", {"last": first[0].notice_id})]
    later = broker.produce_events(names.events, ["S"])
    restarted = ScriptedAction(state_key=True)
    with broker.running(restarted, config) as run:
        wait_until(lambda: len(restarted.handled()) == 1, what="the new record handled")
        run.stop()
    assert restarted.seen_state == [("S", {"last": first[1].notice_id})]
    assert [n for _, n in restarted.handled()] == [later[0].notice_id]
    state = broker.read(names.state)[-1]
    assert state.key == b"scripted/S"
    assert json.loads(state.value) == {"last": later[0].notice_id}


def test_the_guard_stops_instead_of_dead_lettering_everything(broker: RuntimeTestBroker) -> None:
    names = broker.topics()
    cnames = [f"k{i}" for i in range(6)]
    action = ScriptedAction(script={c: ["invalid"] for c in cnames})
    broker.produce_events(names.events, cnames)
    guard = GuardPolicy(max_consecutive=3, min_distinct_keys=2, min_window_events=1000)
    config = broker.config(names, action.name, guard=guard)
    with broker.running(action, config) as run:
        run.thread.join(30)
        assert not run.thread.is_alive()
        assert run.runner.exit is RunnerExit.GUARD_TRIPPED
    assert len(broker.read(names.dlq)) == 2
    # The record that tripped the guard is not committed: a fixed deploy handles it.
    assert broker.committed(config.group_id, names.events) == {0: 2}


def test_replays_for_another_handler_are_skipped(broker: RuntimeTestBroker) -> None:
    names = broker.topics()
    sent = broker.produce_events(names.events, ["R"])
    broker.produce_raw(names.events, b"R", sent[0].body,
        [(dlq.REPLAY_FOR, b"someone-else"), (dlq.REPLAYED_FROM, b"x.dlq/0/0")],
    )
    action = ScriptedAction()
    config = broker.config(names, action.name)
    with broker.running(action, config) as run:
        wait_until(
            lambda: broker.committed(config.group_id, names.events) == {0: 2},
            what="both records committed",
        )
        run.stop()
        assert run.sample("agora_handler_skipped_total", action=action.name) == 1
    assert len(action.calls) == 1


def test_an_orphan_transaction_is_aborted_and_never_visible(broker: RuntimeTestBroker) -> None:
    """A crashed instance left a transaction open; its successor (same transactional id)
    aborts it, and read_committed readers never see its records."""
    names = broker.topics()
    config = broker.config(names, "echo")
    orphan = broker.clients.transactional_producer(
        config.transactional_id, transaction_timeout_ms=60_000
    )
    orphan.begin_transaction()
    orphan.send(names.actions, key=b"ghost", value=b"{}").get(timeout=10)
    sent = broker.produce_events(names.events, ["a", "b"])
    with broker.running(EchoAction(), config) as run:
        wait_until(
            lambda: run.sample("agora_handler_outcomes_total", action="echo", outcome="ok") == 2,
            what="two ok outcomes",
        )
        run.stop()
    committed = broker.read(names.actions)
    assert sorted(json.loads(r.value)["noticeId"] for r in committed) == sorted(
        e.notice_id for e in sent
    )
    everything = broker.read(names.actions, "read_uncommitted")
    assert b"ghost" in [r.key for r in everything]
    orphan.close(timeout=1)


def test_a_large_backlog_behind_a_parked_key_pauses_the_partition(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    action = ScriptedAction(script={"A": ["transient", "ok"]})
    sent = broker.produce_events(names.events, ["A"] * 8)
    config = broker.config(names, action.name, base_delay_s=0.3, max_backlog=4)
    with broker.running(action, config) as run:
        wait_until(
            lambda: run.sample("agora_handler_paused_partitions", action=action.name) == 1,
            what="the partition paused",
        )
        wait_until(lambda: len(set(action.handled())) == len(sent), what="all handled")
        wait_until(
            lambda: run.sample("agora_handler_paused_partitions", action=action.name) == 0,
            what="the partition resumed",
        )
        run.stop()
    assert [n for _, n in action.handled()] == [e.notice_id for e in sent]


class ReadsFiles:
    """Consumes the files topic too; writes one record there per event, marked as its own."""

    name = "reader"
    extra_inputs = ("files",)

    def __init__(self, files_topic: str) -> None:
        self.files_topic = files_topic
        self.seen: list[tuple[str, str, bytes]] = []

    def decide(self, event: Any, state: StateView) -> Any:
        self.seen.append((event.topic, type(event).__name__, event.raw))
        return event.topic

    def run(self, command: str) -> Effects:
        if command == self.files_topic:
            return Effects()
        mine = Output(self.files_topic, "k", b"mine", {"action": self.name})
        return Effects(outputs=(mine,))


def test_extra_inputs_reach_decide_undecoded_and_own_records_are_skipped(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics()
    (event,) = broker.produce_events(names.events, ["c"])
    broker.produce_raw(names.files, b"k", b'{"from": "elsewhere"}')
    action = ReadsFiles(names.files)
    config = broker.config(names, action.name)
    with broker.running(action, config) as run:
        wait_until(
            lambda: run.sample("agora_handler_skipped_total", action="reader") == 1,
            what="the action's own record skipped",
        )
        wait_until(lambda: len(action.seen) == 2, what="both inputs decided")
        run.stop()
    assert sorted(action.seen) == sorted([
        (names.events, "Received", event.body),
        (names.files, "RawRecord", b'{"from": "elsewhere"}'),
    ])
    assert broker.committed(config.group_id, names.files) == {0: 2}


def test_an_aborted_transaction_is_redone_from_the_committed_offsets() -> None:
    """In memory only: a commit that fails (injected) is aborted, the runner rewinds to the
    committed offsets and handles those records again; readers see each output once."""
    broker = MemoryTestBroker()
    names = broker.topics()
    action = ScriptedAction(output_topic=names.files)
    broker.memory.fail_commits(1)
    sent = broker.produce_events(names.events, ["a", "b", "c"])
    config = broker.config(names, action.name)
    with broker.running(action, config) as run:
        wait_until(lambda: broker.committed(config.group_id, names.events) == {0: len(sent)},
                   what="everything committed after the abort")
        assert run.stop() is RunnerExit.STOPPED
        aborted = run.sample("agora_handler_transactions_total", action=action.name,
                             result="aborted")
    assert aborted == 1
    redone = [n for _, n, _ in action.calls]
    assert len(redone) > len(sent), "the aborted records were handled again"
    assert sorted(v["noticeId"] for v in json_values(broker.read(names.files))) == sorted(
        e.notice_id for e in sent)
    # The aborted copies are still in the log, for read_uncommitted readers only.
    assert len(broker.read(names.files, "read_uncommitted")) == len(redone)


@dataclass
class ExitsOnly(ScriptedAction):
    """Declares that it acts on ``session_exit`` (11) alone."""

    event_types: frozenset[int] = frozenset({11})


@pytest.mark.parametrize("publish_ignored", [False, True])
def test_callbacks_of_undeclared_types_are_finished_unread(
    broker: RuntimeTestBroker, publish_ignored: bool
) -> None:
    names = broker.topics()
    sent = [*broker.produce_events(names.events, ["K", "K"], event_type=40),
            *broker.produce_events(names.events, ["K"], event_type=11),
            *broker.produce_events(names.events, ["K"], event_type=40)]
    action = ExitsOnly()
    config = broker.config(names, action.name, publish_ignored=publish_ignored)
    with broker.running(action, config) as run:
        wait_until(lambda: broker.committed(config.group_id, names.events) == {0: 4},
                   what="all four records committed")
        ignored = run.sample("agora_handler_outcomes_total", action=action.name,
                             outcome="ignored") or 0
        run.stop()
    exit_notice = sent[2].notice_id
    if publish_ignored:
        # Ignored outcomes are published in their key's order: every record is decided.
        assert [notice for _, notice in action.handled()] == [e.notice_id for e in sent]
        assert ignored == 0
    else:
        assert action.handled() == [("K", exit_notice)]
        assert ignored == 3
        outcomes = json_values(broker.read(names.actions))
        assert [(o["noticeId"], o["outcome"]) for o in outcomes] == [(exit_notice, "ok")]
