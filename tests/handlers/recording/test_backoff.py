"""The retry ladder under the runtime's real retry policy (``handlers.cli.runner_config``
with the default settings): the delays between attempts, when a new resourceId is
acquired, and how a restart that never gets through ends (dead letter, then a replay
resumes it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from support.restart_env import (
    MemoryState,
    calls_after_setup,
    clock,
    commit,
    decide,
    failed_session,
    gave_up_counts,
    live_tasks,
    make_action,
)

from handlers.action_contract import Effects, TransientError
from handlers.cli import runner_config
from handlers.recording.commands import RestartCommand
from handlers.recording.restart import RestartAction
from handlers.runtime.retry import RetryPolicy
from handlers.settings import HandlerSettings
from handlers.testing.agora_faults import Fault, bad_gateway, rate_limited, upstream_timeout_62
from handlers.testing.agora_recordings import BACKUP_UID
from handlers.testing.fake_agora import FakeAgora


@dataclass
class Run:
    """How the runtime handled one record: ``effects`` when ``run`` succeeded, else
    dead-lettered after ``len(delays) + 1`` attempts."""

    effects: Effects | None = None
    delays: list[float] = field(default_factory=list)


def default_policy() -> RetryPolicy:
    return runner_config(HandlerSettings(), "restart", "test").retry


def handle(action: RestartAction, command: RestartCommand, fake: FakeAgora,
           policy: RetryPolicy) -> Run:
    """What the runner does with one record (``_handle``): run, and on a transient
    failure park it for ``policy.next_retry`` (jitter at its midpoint) or dead-letter it."""
    result = Run()
    first = fake.clock.monotonic()
    while True:
        try:
            result.effects = action.run(command)
            return result
        except TransientError as exc:
            now = fake.clock.monotonic()
            due = policy.next_retry(len(result.delays) + 1, first, now, exc.retry_after_s,
                                    rand=0.5)
            if due is None:
                return result
            result.delays.append(round(due - now, 3))
            clock(fake).advance(due - now)


def test_the_defaults_are_what_the_restart_documentation_says() -> None:
    policy = default_policy()
    assert (policy.max_attempts, policy.budget_s) == (6, 120.0)
    assert [policy.backoff(n, 0.5) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_start_failures_back_off_3_6_9_then_a_new_resource_with_the_runtime_backoff(
    fake_agora: FakeAgora,
) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    fake_agora.fail_next("start", *[upstream_timeout_62()] * 5)
    run = handle(action, decide(action, record, state), fake_agora, default_policy())
    print(f"\nretry delays of five failed starts (s): {run.delays}")
    # 3/6/9 s are floors on the same resourceId; on the new one the runtime's exponential
    # back-off (8, 16 s at the midpoint of its jitter) is longer than 3/6.
    assert run.delays == [3.0, 6.0, 9.0, 8.0, 16.0]
    assert run.effects is not None
    starts = calls_after_setup(fake_agora, "start")
    assert len(calls_after_setup(fake_agora, "acquire")) == 2
    rids = [c.path.split("/resourceid/")[1].split("/")[0] for c in starts]
    assert len(set(rids[:3])) == 1
    assert len(set(rids[3:])) == 1
    assert rids[0] != rids[3]
    assert [o["outcome"] for o in commit(run.effects, state, sessions)] == ["restarted"]
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


def test_a_retry_after_longer_than_the_backoff_is_waited_for(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    action = make_action(fake_agora, sessions)
    fake_agora.fail_next("start", rate_limited(retry_after="20"))
    run = handle(action, decide(action, record, MemoryState()), fake_agora, default_policy())
    assert run.delays == [20.0]
    assert run.effects is not None


@pytest.mark.parametrize("fault", [upstream_timeout_62(), bad_gateway()], ids=["62", "502"])
def test_a_start_that_never_gets_through_is_dead_lettered_and_a_replay_resumes_it(
    fake_agora: FakeAgora, fault: Fault,
) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    fake_agora.fail_next("start", *[fault] * 6)
    run = handle(action, decide(action, record, state), fake_agora, default_policy())
    # max_attempts (6) ends it after 42 s, well inside the 120 s budget.
    assert run.effects is None
    assert run.delays == [3.0, 6.0, 9.0, 8.0, 16.0]
    assert sum(run.delays) < default_policy().budget_s
    assert live_tasks(fake_agora, BACKUP_UID) == []
    assert gave_up_counts(action) == {}  # not a give-up: the record is in the DLQ
    note = sessions.only("class-1")
    assert note is not None
    assert note.status == "restarting"
    assert note.pending is not None
    assert note.pending.uid == BACKUP_UID
    assert len(note.pending.previous_resource_ids) == 1

    # `agora-events dlq replay` once Agora is back: a new process resumes the noted attempt.
    replay = make_action(fake_agora, sessions)
    run = handle(replay, decide(replay, note, state), fake_agora, default_policy())
    assert run.effects is not None
    assert run.delays == []
    assert [o["outcome"] for o in commit(run.effects, state, sessions)] == ["restarted"]
    assert len(calls_after_setup(fake_agora, "acquire")) == 2  # no third resourceId
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1
