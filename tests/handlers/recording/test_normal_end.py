"""A recording that ends normally is marked ``ended`` in the registry, so the reconciler
never takes the 404 Agora answers for every finished task for a silent death; finished
records are pruned once they are older than the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.restart_env import (
    MemoryState,
    Published,
    clock,
    commit,
    exit_event,
    make_action,
    received,
    reconciler,
)

from handlers.config import ReconcilerRules
from handlers.recording.commands import EndedCommand
from handlers.recording.reconciler import prunable
from handlers.recording.session_registry import MemorySessions, SessionRecord, task_key, utc_from_ms
from handlers.recording.signals import Signal, classify
from handlers.testing.agora_recordings import registered, start_session
from handlers.testing.fake_agora import FakeAgora

T0 = 1_700_000_000_000
DAY_S = 86_400


def test_exit_status_0_is_benign_and_says_the_task_ended() -> None:
    verdict = classify(exit_event(sid="sid-1", status=0).notification, registered(sid="sid-1"))
    assert (verdict.signal, verdict.ended) == (Signal.BENIGN, True)
    failure = classify(exit_event(sid="sid-1", status=1).notification, registered(sid="sid-1"))
    assert (failure.signal, failure.ended) == (Signal.FAILURE, False)


def test_anything_after_the_end_of_the_registered_task_is_benign() -> None:
    record = registered(sid="sid-1", status="ended")
    for event in (exit_event(sid="sid-1", status=1),
                  received(41, sid="sid-1", details={"msgName": "recorder_leave",
                                                     "leaveCode": 0})):
        verdict = classify(event.notification, record)
        assert verdict.signal is Signal.BENIGN, verdict
        assert not verdict.ended


def test_a_normal_exit_marks_the_running_record_ended(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    sessions = MemorySessions(record)
    action = make_action(fake_agora, sessions)
    command = action.decide(exit_event(sid=str(record.sid), status=0), MemoryState())
    assert command == EndedCommand("class-1", str(record.sid), record.key)

    clock(fake_agora).advance(5)
    effects = action.run(command)
    assert commit(effects, MemoryState(), sessions) == []  # no outcome: nothing was done
    ended = sessions.only("class-1")
    assert ended is not None
    assert (ended.status, ended.sid, ended.pending) == ("ended", record.sid, None)
    assert ended.updated_at == utc_from_ms(fake_agora.clock.now_ms())
    assert ended.client_request == record.client_request  # the rest is kept

    # NCS repeats the notice: the record already says ended, nothing more to write.
    assert action.decide(exit_event(sid=str(record.sid), status=0), MemoryState()) is None


@pytest.mark.parametrize("status", ["stopping", "stopped", "restarting", "gave_up", "failed"])
def test_a_normal_exit_changes_no_record_that_is_not_running(
    fake_agora: FakeAgora, status: str,
) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1", status=status)))
    assert action.decide(exit_event(sid="sid-1", status=0), MemoryState()) is None


def test_a_normal_exit_of_an_unregistered_or_older_task_writes_nothing(
    fake_agora: FakeAgora,
) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-2")))
    assert action.decide(exit_event(sid="sid-1", status=0), MemoryState()) is None
    assert action.decide(exit_event(cname="other", sid="sid-9", status=0),
                         MemoryState()) is None


def test_a_record_rewritten_before_run_is_left_alone(fake_agora: FakeAgora) -> None:
    sessions = MemorySessions(registered(sid="sid-1"))
    action = make_action(fake_agora, sessions)
    command = action.decide(exit_event(sid="sid-1", status=0), MemoryState())
    assert isinstance(command, EndedCommand)
    sessions.put(registered(sid="sid-2"))  # restarted or started again meanwhile
    assert action.run(command).outputs == ()


def test_the_reconciler_does_not_restart_a_recording_that_ended_normally(
    fake_agora: FakeAgora,
) -> None:
    record = start_session(fake_agora)
    sessions = MemorySessions(record)
    action = make_action(fake_agora, sessions)
    command = action.decide(exit_event(sid=str(record.sid), status=0), MemoryState())
    assert isinstance(command, EndedCommand)
    commit(action.run(command), MemoryState(), sessions)
    fake_agora.end_session(str(record.sid))  # query answers 404 from now on

    published = Published()
    checker = reconciler(fake_agora, sessions, published)
    for _ in range(3):
        assert checker.tick() == []
        clock(fake_agora).advance(120)
    assert published.records == []
    assert fake_agora.calls_to("query") == []


def test_without_the_mark_the_same_end_would_have_been_restarted(
    fake_agora: FakeAgora,
) -> None:
    """The counterpart of the test above: a record left ``running`` whose task vanished
    while people are in the channel is reported."""
    record = start_session(fake_agora)
    fake_agora.end_session(str(record.sid))
    fake_agora.join("class-1", "1001")
    published = Published()
    checker = reconciler(fake_agora, MemorySessions(record), published)
    checker.tick()
    clock(fake_agora).advance(120)
    checker.tick()
    assert len(published.records) == 1


def aged(status: str, cname: str, days: float, now_ms: int = T0) -> SessionRecord:
    record = registered(cname, sid=f"sid-{cname}", status=status)
    return record.model_copy(update={
        "updated_at": utc_from_ms(now_ms) - timedelta(days=days)})


def test_prunable_records_are_finished_and_older_than_the_cutoff() -> None:
    records = [aged(status, f"{status}-{days}", days)
               for status in ("starting", "running", "restarting", "stopping",
                              "stopped", "ended", "failed", "gave_up")
               for days in (6.9, 7.1)]
    cutoff = T0 - 7 * DAY_S * 1000
    assert sorted(r.cname for r in prunable(records, cutoff)) == [
        "ended-7.1", "failed-7.1", "gave_up-7.1", "stopped-7.1"]


def test_the_reconciler_prunes_finished_sessions_past_the_retention(
    fake_agora: FakeAgora,
) -> None:
    now = fake_agora.clock.now_ms()
    running = start_session(fake_agora, "live")
    sessions = MemorySessions(running, aged("ended", "old", 8, now), aged("ended", "young", 1, now),
                              aged("gave_up", "given-up", 30, now))
    removed: list[str] = []

    def remove(cname: str) -> None:
        removed.append(cname)
        sessions.put_raw(cname, None)

    retain_s = ReconcilerRules().retain_finished_s
    assert retain_s == 7 * DAY_S
    checker = reconciler(fake_agora, sessions, Published(), remove=remove,
                         retain_finished_s=retain_s)
    reports = checker.tick()
    assert [r.cname for r in reports] == ["live"]  # still checked
    assert sorted(removed) == sorted(checker.pruned) == [
        task_key("given-up", "classes"), task_key("old", "classes")]
    assert sorted(dict(sessions.items())) == [task_key("live", "classes"),
                                             task_key("young", "classes")]

    checker.tick()
    assert checker.pruned == []  # nothing left to prune, nothing removed twice


def test_a_retention_of_zero_keeps_finished_sessions(fake_agora: FakeAgora) -> None:
    removed: list[str] = []
    sessions = MemorySessions(aged("ended", "old", 400))
    reconciler(fake_agora, sessions, Published(), remove=removed.append,
               retain_finished_s=0).tick()
    assert removed == []
