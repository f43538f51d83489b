"""Concurrent actions: keys overtake a slow one, one key stays in
order, commits stop at the contiguous finished prefix, many records share a transaction,
partitions pause at the in-flight limit, and a revoked partition's running work is redone
by its new owner."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from support.runtime_brokers import KAFKA_ONLY, RuntimeTestBroker
from support.runtime_helpers import Cmd, RunningRunner, json_values, wait_until

from handlers.action_contract import Effects, Output, Received, StateView
from handlers.echo import EchoAction
from handlers.runtime.runner import RunnerExit


@dataclass
class Gated:
    """``run`` of a cname in ``held`` waits for ``release``; every run is logged with the
    number of runs going on at the time, overall and for its cname."""

    name: str = "gated"
    held: frozenset[str] = frozenset()
    output_topic: str | None = None
    release: threading.Event = field(default_factory=threading.Event)
    started: list[str] = field(default_factory=list)
    finished: list[tuple[str, str]] = field(default_factory=list)
    peak: int = 0
    peak_per_key: int = 0
    _running: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, event: Received, state: StateView) -> Cmd:
        return Cmd(cname=event.key or "", notice_id=event.notification.notice_id)

    def run(self, command: Cmd) -> Effects:
        with self._lock:
            self._running[command.cname] += 1
            self.started.append(command.notice_id)
            self.peak = max(self.peak, sum(self._running.values()))
            self.peak_per_key = max(self.peak_per_key, self._running[command.cname])
        try:
            if command.cname in self.held:
                assert self.release.wait(30), "never released"
            else:
                time.sleep(0.01)  # stands for a remote call
        finally:
            with self._lock:
                self._running[command.cname] -= 1
                self.finished.append((command.cname, command.notice_id))
        outputs = ()
        if self.output_topic:
            outputs = (Output.json(self.output_topic, command.cname,
                                   {"noticeId": command.notice_id}),)
        return Effects(outputs=outputs)

    def done(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.finished)


def test_other_keys_overtake_a_slow_one_which_keeps_its_order(broker: RuntimeTestBroker) -> None:
    names = broker.topics(partitions=1)
    action = Gated(held=frozenset({"slow"}))
    cnames = ["slow", *[f"k{i % 8}" for i in range(40)], "slow", "slow"]
    sent = broker.produce_events(names.events, cnames)
    config = broker.config(names, action.name, concurrency=8)
    with broker.running(action, config) as run:
        fast = [e.notice_id for e in sent if e.cname != "slow"]
        wait_until(lambda: {n for _, n in action.done()} >= set(fast),
                   what="every fast key handled while the slow one hangs")
        # Nothing of the slow key ran past its first record, and the commit waits for it.
        slow = [e.notice_id for e in sent if e.cname == "slow"]
        assert [n for n in action.started if n in slow] == slow[:1]
        time.sleep(0.3)
        assert broker.committed(config.group_id, names.events) in (
            {0: None}, {0: sent[0].offset})
        action.release.set()
        wait_until(lambda: len(action.done()) == len(sent), what="the slow key done")
        wait_until(lambda: broker.committed(config.group_id, names.events)
                   == {0: len(sent)}, what="everything committed")
        assert run.stop() is RunnerExit.STOPPED
        transactions = run.sample("agora_handler_transactions_total", action=action.name,
                                  result="committed")
    assert [n for c, n in action.done() if c == "slow"] == slow
    for key in {f"k{i}" for i in range(8)}:
        mine = [n for c, n in action.done() if c == key]
        assert mine == [e.notice_id for e in sent if e.cname == key]
    assert action.peak_per_key == 1, "one key never runs twice at once"
    assert 1 < action.peak <= 8, "keys ran concurrently, within the limit"
    # Many records per transaction, not one transaction per record.
    assert transactions < len(sent) / 2
    outcomes = json_values(broker.read(names.actions))
    assert sorted(o["noticeId"] for o in outcomes) == sorted(e.notice_id for e in sent)


def test_partitions_pause_when_the_in_flight_limit_leaves_records_waiting(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics(partitions=1)
    action = Gated(held=frozenset({f"c{i}" for i in range(4)}))
    sent = broker.produce_events(names.events, [f"c{i % 4}" for i in range(600)])
    config = broker.config(names, action.name, concurrency=4, max_backlog=50,
                         max_poll_records=20)
    with broker.running(action, config) as run:
        wait_until(lambda: run.sample("agora_handler_paused_partitions",
                                      action=action.name) == 1, what="the partition paused")
        time.sleep(0.5)
        held = len(run.runner._scheduler)  # records in memory stay bounded
        assert 50 < held <= 50 + config.max_poll_records
        assert run.sample("agora_handler_consumed_total", action=action.name) == held
        action.release.set()
        wait_until(lambda: len(action.done()) == len(sent), timeout_s=60, what="all handled")
        wait_until(lambda: run.sample("agora_handler_paused_partitions",
                                      action=action.name) == 0, what="resumed")
        run.stop()


def assigned(run: RunningRunner) -> set[int]:
    partitions = run.runner._partitions
    return set() if partitions is None else {p for _, p in partitions.assigned()}


@KAFKA_ONLY  # two members of one group
def test_a_revoked_partitions_running_work_is_redone_by_its_new_owner(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics(partitions=2)
    # Enough keys that both partitions hold a held (hanging) key and free ones.
    cnames = [f"c{i}" for i in range(16)]
    sent = broker.produce_events(names.events, cnames)
    held = frozenset(e.cname for e in sent if e.cname in {"c0", "c1", "c2", "c3", "c4"})
    parts = {e.partition for e in sent if e.cname in held}
    assert parts == {0, 1}, "both partitions need a hanging key; pick other cnames"
    first = Gated(held=held, output_topic=names.files)
    second = Gated(output_topic=names.files)
    config = broker.config(names, first.name, concurrency=16)
    with broker.running(first, config) as one:
        wait_until(lambda: len(first.done()) == len(sent) - len(held),
                   what="the free keys handled, the held ones hanging")
        two_config = broker.config(names, first.name, concurrency=16,
                                 group_id=config.group_id,
                                 transactional_id=config.transactional_id + "-2")
        with broker.running(second, two_config) as two:
            wait_until(lambda: len(assigned(two)) == 1 and len(assigned(one)) == 1,
                       what="one partition each")
            (moved,) = assigned(two)
            redone = {e.notice_id for e in sent if e.partition == moved and e.cname in held}
            # The new owner runs again what was running (uncommitted) on the old one.
            wait_until(lambda: redone <= {n for _, n in second.done()},
                       what="held records of the moved partition redone")
            first.release.set()
            wait_until(lambda: broker.committed(config.group_id,
                                                 names.events)
                       == {p: sum(e.partition == p for e in sent) for p in (0, 1)},
                       what="both partitions committed to their end")
            two.stop()
        one.stop()
    published = json_values(broker.read(names.files))
    notices = Counter(v["noticeId"] for v in published)
    assert set(notices) == {e.notice_id for e in sent}
    # The old owner's late result for the moved partition was discarded, not published.
    assert all(notices[n] == 1 for n in redone)


@dataclass
class CommitsNow:
    """Every ``run`` says ``commit_now``; it records the group's committed offset as seen
    when each record of key ``A`` starts."""

    broker: RuntimeTestBroker
    group: str
    topic: str
    name: str = "commits-now"
    seen: list[tuple[int, int | None]] = field(default_factory=list)

    def decide(self, event: Received, state: StateView) -> tuple[str, int]:
        return event.key or "", event.offset

    def run(self, command: tuple[str, int]) -> Effects:
        cname, offset = command
        if cname == "A":
            self.seen.append((offset, self.broker.committed(self.group, self.topic)[0]))
        return Effects(commit_now=True)


def test_a_commit_now_record_is_committed_before_its_keys_next_record_runs(
    broker: RuntimeTestBroker,
) -> None:
    names = broker.topics(partitions=1)
    sent = broker.produce_events(names.events, ["A", "B", "A", "B", "A"])
    config = broker.config(names, "commits-now")
    action = CommitsNow(broker, config.group_id, names.events)
    with broker.running(action, config) as run:
        wait_until(lambda: len(action.seen) == 3, what="A's three records run")
        wait_until(lambda: broker.committed(config.group_id, names.events)
                   == {0: len(sent)}, what="all committed")
        run.stop()
    a_offsets = [e.offset for e in sent if e.cname == "A"]
    assert [offset for offset, _ in action.seen] == a_offsets
    # When A's second and third records started, the one before was committed already.
    for (_, committed), previous in zip(action.seen[1:], a_offsets, strict=False):
        assert committed is not None
        assert committed > previous


def test_every_partition_is_read_to_its_end_after_pauses_and_resumes(
    broker: RuntimeTestBroker,
) -> None:
    """kafka-python 3.0.12 parks data fetched for a partition paused meanwhile and, without
    :func:`handlers.runtime.flow.restore_parked_fetches`, never fetches it again."""
    names = broker.topics(partitions=3)
    sent = broker.produce_events(names.events, [f"c{i % 30}" for i in range(3000)])
    config = broker.config(names, "echo", max_backlog=100, max_poll_records=200)
    with broker.running(EchoAction(), config) as run:
        wait_until(lambda: run.sample("agora_handler_consumed_total", action="echo")
                   == len(sent), timeout_s=60, what="every record read")
        wait_until(lambda: broker.committed(config.group_id, names.events)
                   == {p: sum(e.partition == p for e in sent) for p in (0, 1, 2)},
                   what="every partition committed to its end")
        assert run.stop() is RunnerExit.STOPPED
