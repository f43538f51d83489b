"""``decide``: which events become restart commands, with which uid, and when not."""

from __future__ import annotations

import pytest
from support.restart_env import MemoryState, exit_event, make_action, received

from handlers.action_contract import InvalidEvent, TransientError
from handlers.config import RecordingRules, RestartRules
from handlers.recording.commands import (
    EndedCommand,
    FailoverCommand,
    GiveUpCommand,
    RestartCommand,
    channel_key,
    failover_key,
    failure_key,
)
from handlers.recording.session_registry import MemorySessions, PendingRestart, task_key
from handlers.testing.agora_recordings import BACKUP_UID, UID, registered
from handlers.testing.fake_agora import FakeAgora

T0 = 1_700_000_000_000


def test_a_failure_of_the_registered_task_restarts_it_with_the_backup_uid(
    fake_agora: FakeAgora,
) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")))
    command = action.decide(exit_event(sid="sid-1", notice_id="n-1"), MemoryState())
    assert isinstance(command, RestartCommand)
    assert (command.failure.cname, command.failure.sid) == ("class-1", "sid-1")
    assert command.failure.notice_id == "n-1"
    assert command.next_uid == BACKUP_UID
    assert not command.confirm


def test_the_uid_alternates_back_after_a_restart(fake_agora: FakeAgora) -> None:
    record = registered(sid="sid-2", uid=BACKUP_UID, backup_uid=UID)
    action = make_action(fake_agora, MemorySessions(record))
    command = action.decide(exit_event(sid="sid-2", uid=BACKUP_UID), MemoryState())
    assert isinstance(command, RestartCommand)
    assert command.next_uid == UID


def test_the_uid_of_the_failed_bot_is_never_reused(fake_agora: FakeAgora) -> None:
    # Bookkeeping drifted: the event says the bot had the backup uid.
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")))
    command = action.decide(exit_event(sid="sid-1", uid=BACKUP_UID), MemoryState())
    assert isinstance(command, RestartCommand)
    assert command.next_uid == UID


def test_a_handled_failure_is_not_restarted_again(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")))
    state = MemoryState()
    state.entries[failure_key("class-1", "sid-1")] = {"status": "restarted"}
    for notice in ("n-1", "n-2"):  # a duplicate and a redundant notice
        assert action.decide(exit_event(sid="sid-1", notice_id=notice), state) is None
    leave = received(41, sid="sid-1", details={"leaveCode": 0})
    assert action.decide(leave, state) is None


def test_a_normal_exit_only_marks_the_record_ended(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")))
    command = action.decide(received(11, sid="sid-1", details={"exitStatus": 0}), MemoryState())
    assert command == EndedCommand(  # tests/handlers/recording/test_normal_end.py
        "class-1", "sid-1", task_key("class-1", "classes"))


def test_our_own_stop_leads_to_nothing(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1", status="stopping")))
    assert action.decide(exit_event(sid="sid-1"), MemoryState()) is None


def test_an_old_sid_leads_to_nothing(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-2")))
    assert action.decide(exit_event(sid="sid-1"), MemoryState()) is None


def test_a_failover_is_remembered_once(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")))
    state = MemoryState()
    event = received(12, sid="sid-1", details={"newUid": 4242}, at_ms=T0)
    command = action.decide(event, state)
    assert command == FailoverCommand("class-1", "sid-1", T0, event.notification.notice_id,
                                      "4242")
    state.apply(action.run(command))
    assert state.get(failover_key("class-1", "sid-1")) == {
        "at_ms": T0, "noticeId": event.notification.notice_id, "newUid": "4242"}
    assert action.decide(event, state) is None


def test_the_failover_grace_runs_from_the_later_of_failover_and_event(
    fake_agora: FakeAgora,
) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")),
                         rules=RestartRules(failover_grace_s=90))
    state = MemoryState()
    leave = received(41, sid="sid-1", details={"leaveCode": 16}, at_ms=T0)
    command = action.decide(leave, state)
    assert isinstance(command, RestartCommand)
    assert command.confirm
    assert command.grace_until_ms == T0 + 90_000
    state.entries[failover_key("class-1", "sid-1")] = {"at_ms": T0 + 30_000}
    command = action.decide(leave, state)
    assert isinstance(command, RestartCommand)
    assert command.grace_until_ms == T0 + 120_000


def test_over_the_cap_the_restart_gives_up(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-9")),
                         rules=RestartRules(max_restarts=2, window_s=600))
    state = MemoryState()
    state.entries[channel_key("class-1", "classes")] = {"restarts_ms": [T0 - 700_000, T0 - 300_000,
                                                             T0 - 10_000]}
    command = action.decide(exit_event(sid="sid-9", at_ms=T0), state)
    assert isinstance(command, GiveUpCommand)
    assert command.recent_restarts_ms == (T0 - 300_000, T0 - 10_000)
    # One restart inside the window: still allowed.
    state.entries[channel_key("class-1", "classes")] = {"restarts_ms": [T0 - 700_000, T0 - 10_000]}
    command = action.decide(exit_event(sid="sid-9", at_ms=T0), state)
    assert isinstance(command, RestartCommand)
    assert command.recent_restarts_ms == (T0 - 10_000,)


def test_a_resumed_restart_is_not_stopped_by_the_cap(fake_agora: FakeAgora) -> None:
    pending = PendingRestart(failed_sid="sid-1", uid=BACKUP_UID, resource_id="r",
                             acquired_at_ms=T0)
    record = registered(sid="sid-1", status="restarting", pending=pending.model_dump())
    action = make_action(fake_agora, MemorySessions(record), rules=RestartRules(max_restarts=0))
    assert isinstance(action.decide(exit_event(sid="sid-1", at_ms=T0), MemoryState()),
                      RestartCommand)


def test_without_a_record_the_matching_profile_is_used(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions())
    command = action.decide(exit_event(cname="class-7", sid="sid-7", uid=BACKUP_UID),
                            MemoryState())
    assert isinstance(command, RestartCommand)
    assert command.session.profile == "classes"
    assert command.session.resource_id is None
    assert command.next_uid == UID  # the failed bot had the backup uid


def test_without_record_or_profile_nothing_happens(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(), profiles=RecordingRules())
    assert action.decide(exit_event(cname="other-1"), MemoryState()) is None


def test_a_malformed_record_falls_back_to_the_profile(fake_agora: FakeAgora) -> None:
    sessions = MemorySessions()
    sessions.put_raw("class-1", {"sid": "sid-1", "whiteboard": {"room_uuid": "r"}})
    command = make_action(fake_agora, sessions).decide(exit_event(sid="sid-1"), MemoryState())
    assert isinstance(command, RestartCommand)
    assert command.session.profile == "classes"


def test_an_unconfirmable_signal_without_resource_id_waits_for_the_exit(
    fake_agora: FakeAgora,
) -> None:
    """Without a resourceId the task cannot be queried: it counts as vanished, so the
    action waits for its exit and then asks the channel (rows S5-S8), never restarts."""
    action = make_action(fake_agora, MemorySessions())
    event = received(1, sid="sid-1", details={"module": 0, "errorLevel": 5, "errorCode": 52},
                     at_ms=fake_agora.clock.now_ms())
    command = action.decide(event, MemoryState())
    assert isinstance(command, RestartCommand)
    assert command.confirm
    with pytest.raises(TransientError, match="S5"):
        action.run(command)
    assert fake_agora.calls_to("acquire") == []


def test_malformed_details_are_invalid_events(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")))
    with pytest.raises(InvalidEvent, match="exitStatus"):
        action.decide(received(11, sid="sid-1", details={}), MemoryState())


def test_synthetic_failures_are_marked(fake_agora: FakeAgora) -> None:
    action = make_action(fake_agora, MemorySessions(registered(sid="sid-1")))
    command = action.decide(exit_event(sid="sid-1", extra={"synthetic": True}), MemoryState())
    assert isinstance(command, RestartCommand)
    assert command.failure.synthetic
