"""Duplicates and reordering never give two restarts: any order of a dead task's failure
signals (NCS retries, the redundant channel, recorder_leave, fatal errors to confirm,
failover, benign leaves), with the process crashing before some commits, ends with
exactly one new task when a failure was reported and none otherwise."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.restart_env import MemoryState, clock, commit, make_action, received

from handlers.action_contract import ActionFailed, Effects, Received, TransientError
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import MemorySessions
from handlers.testing.agora_recordings import BACKUP_UID, start_session
from handlers.testing.fake_agora import FakeAgora
from webhook.shared.clock import FakeClock

# (eventType, details, noticeId suffix, whether it reports a failure)
EVENTS: dict[str, tuple[int, dict[str, Any], str, bool]] = {
    "exit": (11, {"msgName": "session_exit", "exitStatus": 1}, "exit", True),
    "exit-ncs-retry": (11, {"msgName": "session_exit", "exitStatus": 1}, "exit", True),
    "exit-redundant": (11, {"msgName": "session_exit", "exitStatus": 1}, "exit-copy", True),
    "leave-init-failed": (41, {"msgName": "recorder_leave", "leaveCode": 0}, "leave0", True),
    "leave-client": (41, {"msgName": "recorder_leave", "leaveCode": 16}, "leave16", True),
    "fatal-error": (1, {"msgName": "cloud_recording_error", "module": 0, "errorLevel": 5,
                        "errorCode": 52}, "error", True),
    "failover": (12, {"msgName": "session_failover", "newUid": 77}, "failover", False),
    "leave-no-users": (41, {"msgName": "recorder_leave", "leaveCode": 4}, "leave4", False),
}
_channels = itertools.count()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAgora]:
    with FakeAgora(clock=FakeClock()) as server:
        yield server


class StagedState:
    """The state a handler sees: committed entries under the ones staged in the open
    transaction (the runtime shows staged state to later ``decide`` calls)."""

    def __init__(self, committed: MemoryState) -> None:
        self.committed = committed
        self.staged: dict[str, Any] = {}

    def get(self, key: str) -> Mapping[str, Any] | None:
        if key in self.staged:
            value: Mapping[str, Any] | None = self.staged[key]
            return value
        return self.committed.get(key)


@dataclass
class Channel:
    """One channel whose registered task died, and the handler process acting on it:
    handled records are staged in an open transaction until ``flush`` commits them (the
    registry shows its outputs only then); ``crash`` loses the open transaction and a
    new process handles its records again."""

    fake: FakeAgora
    cname: str
    sid: str
    sessions: MemorySessions
    action: RestartAction
    state: MemoryState = field(default_factory=MemoryState)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    staged: list[Effects] = field(default_factory=list)
    uncommitted: list[Received] = field(default_factory=list)
    view: StagedState = field(init=False)

    def __post_init__(self) -> None:
        self.view = StagedState(self.state)

    def event(self, name: str) -> Received:
        event_type, details, notice, _ = EVENTS[name]
        return received(event_type, self.cname, self.sid, details,
                        notice_id=f"{self.cname}-{notice}", at_ms=self.fake.clock.now_ms())

    def handle(self, event: Received) -> None:
        """Decide once, run until it is not transient (its key is parked meanwhile, so
        nothing else of the channel runs), stage the effects."""
        self.uncommitted.append(event)
        command = self.action.decide(event, self.view)
        if command is None:
            return
        for _ in range(20):
            try:
                effects = self.action.run(command)
            except TransientError as exc:
                clock(self.fake).advance(exc.retry_after_s or 1.0)
                continue
            except ActionFailed as exc:
                effects = exc.effects
            self.staged.append(effects)
            self.view.staged.update(effects.state)
            return
        raise AssertionError(f"{event.notification.event_type} never finished")

    def flush(self) -> None:
        for effects in self.staged:
            self.outcomes += commit(effects, self.state, self.sessions)
        self.staged.clear()
        self.view.staged.clear()
        self.uncommitted.clear()

    def crash(self) -> None:
        again = list(self.uncommitted)
        self.staged.clear()
        self.view.staged.clear()
        self.uncommitted.clear()
        self.action = make_action(self.fake, self.sessions)  # empty memory
        for event in again:
            self.handle(event)

    def new_tasks(self) -> list[str]:
        return [s.sid for s in self.fake.running()
                if s.cname == self.cname and s.uid == BACKUP_UID]


def dead_channel(fake: FakeAgora) -> Channel:
    cname = f"class-nd{next(_channels)}"
    record = start_session(fake, cname)
    assert record.sid is not None
    fake.end_session(record.sid)
    fake.join(cname, "1001")  # it died while people were in the channel
    sessions = MemorySessions(record)
    return Channel(fake, cname, record.sid, sessions, make_action(fake, sessions))


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(sorted(EVENTS)),
                                st.sampled_from(["stage", "flush", "crash"])),
                      min_size=1, max_size=6))
def test_any_order_of_signals_gives_at_most_one_restart(
    fake: FakeAgora, steps: list[tuple[str, str]],
) -> None:
    channel = dead_channel(fake)
    for name, then in steps:
        channel.handle(channel.event(name))
        if then == "flush":
            channel.flush()
        elif then == "crash":
            channel.crash()
    channel.flush()

    reported = any(EVENTS[name][3] for name, _ in steps)
    restarted = [o for o in channel.outcomes if o["outcome"] == "restarted"]
    assert len(restarted) == (1 if reported else 0), channel.outcomes
    assert [o for o in channel.outcomes if o["alert"]] == []
    assert len(channel.new_tasks()) == len(restarted)
    if restarted:
        stored = channel.sessions.only(channel.cname)
        assert stored is not None
        assert (stored.sid, stored.status) == (restarted[0]["new_sid"], "running")


def test_a_committed_failure_is_never_acted_on_again(fake: FakeAgora) -> None:
    # The worst order spelled out: the failure is handled and the process dies before
    # the commit (the task was started), then every signal of the old task arrives
    # twice, in one transaction and across commits.
    channel = dead_channel(fake)
    channel.handle(channel.event("exit"))
    channel.crash()
    assert len(channel.new_tasks()) == 1
    for name in sorted(EVENTS):
        channel.handle(channel.event(name))
    channel.flush()
    for name in sorted(EVENTS):
        channel.handle(channel.event(name))
        channel.flush()
    assert [o["outcome"] for o in channel.outcomes] == ["restarted"]
    assert channel.outcomes[0]["new_sid"] == channel.new_tasks()[0]
