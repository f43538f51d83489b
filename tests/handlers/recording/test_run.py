"""``run`` against the fake Agora server: the happy path, the ladder's resourceId rules,
crashes between acquire and start, concurrent attempts, confirmation by query, and giving
up (the cap). Agora's error codes one by one: test_error_codes.py; the delays under the
runtime's retry policy: test_backoff.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import zlib

import pytest
from support.restart_env import (
    OPEN_CLIENTS,
    MemoryState,
    Published,
    calls_after_setup,
    clock,
    clock_ms,
    commit,
    decide,
    exit_event,
    failed_session,
    gave_up_counts,
    live_tasks,
    make_action,
    received,
)

from handlers.action_contract import ActionFailed, TransientError
from handlers.config import RestartRules
from handlers.recording.commands import GiveUpCommand, RestartCommand, channel_key, failure_key
from handlers.recording.reconciler import Reconciler
from handlers.recording.session_registry import MemorySessions, SessionRecord
from handlers.testing.agora_faults import (
    Fault,
    disconnect,
    response_timeout_65,
    upstream_timeout_62,
)
from handlers.testing.agora_recordings import BACKUP_UID, RESOLVED_REQUEST, UID, start_session
from handlers.testing.fake_agora import FakeAgora

CERTIFICATE = "5cfd2fd1755d40ecb72977518be15d3b"


class Crash(BaseException):
    """The process dies here."""


class CrashingSessions(MemorySessions):
    """Dies right after the in-flight restart was written (before start is sent)."""

    crash = True

    def save(self, record: SessionRecord) -> None:
        super().save(record)
        if self.crash and record.status == "restarting":
            raise Crash


class BrokenSessions(MemorySessions):
    broken = True

    def save(self, record: SessionRecord) -> None:
        if self.broken:
            raise OSError("broker unreachable")
        super().save(record)


def rtc_grant(token: str, certificate: str) -> tuple[str, str]:
    """Channel and uid of an AccessToken2 with one RTC service, after checking that
    ``certificate`` verifies its signature (Agora's published layout)."""
    assert token.startswith("007")
    raw = zlib.decompress(base64.b64decode(token[3:]))

    def string(data: bytes, at: int) -> tuple[bytes, int]:
        (size,) = struct.unpack_from("<H", data, at)
        return data[at + 2:at + 2 + size], at + 2 + size

    signature, at = string(raw, 0)
    info = raw[at:]
    _app_id, at = string(info, 0)
    issue_ts, _expire, salt, services = struct.unpack_from("<IIIH", info, at)
    assert services == 1
    service_type, privileges = struct.unpack_from("<HH", info, at + 14)
    assert service_type == 1
    channel, at = string(info, at + 18 + 6 * privileges)
    uid, _ = string(info, at)
    key = hmac.new(struct.pack("<I", issue_ts), certificate.encode(), hashlib.sha256).digest()
    key = hmac.new(struct.pack("<I", salt), key, hashlib.sha256).digest()
    assert hmac.compare_digest(signature, hmac.new(key, info, hashlib.sha256).digest())
    return channel.decode(), uid.decode()


def test_a_failed_recording_is_restarted_once_with_the_other_uid(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    outcomes = commit(action.run(decide(action, record, state, notice_id="n-1")), state, sessions)

    acquires, starts = calls_after_setup(fake_agora, "acquire"), calls_after_setup(fake_agora,
                                                                                   "start")
    assert [c.body["uid"] for c in acquires] == [BACKUP_UID]
    assert len(starts) == 1
    assert starts[0].body["uid"] == BACKUP_UID
    assert starts[0].body["clientRequest"] == RESOLVED_REQUEST
    assert "/mode/individual/start" in starts[0].path
    new_sid = live_tasks(fake_agora, BACKUP_UID)
    assert len(new_sid) == 1

    now = sessions.only("class-1")
    assert now is not None
    assert (now.sid, now.uid, now.backup_uid, now.status) == (new_sid[0], BACKUP_UID, UID,
                                                             "running")
    assert now.client_request == record.client_request  # references, never values
    assert [(r.old_sid, r.new_sid, r.notice_id) for r in now.restarts] == [
        (record.sid, new_sid[0], "n-1")]
    assert len(outcomes) == 1
    assert outcomes[0]["outcome"] == "restarted"
    assert outcomes[0]["alert"] is False
    assert outcomes[0]["new_sid"] == new_sid[0]
    assert state.entries[failure_key("class-1", str(record.sid))]["new_sid"] == new_sid[0]
    assert len(state.entries[channel_key("class-1", "classes")]["restarts_ms"]) == 1

    # Duplicates, redundant notices and the old task's late events change nothing.
    for notice in ("n-1", "n-2"):
        assert action.decide(exit_event(sid=str(record.sid), notice_id=notice), state) is None
    assert action.decide(received(41, sid=str(record.sid), details={"leaveCode": 0}),
                         state) is None
    assert len(fake_agora.calls_to("start")) == 2


def test_the_new_task_failing_is_restarted_back_to_the_first_uid(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    commit(action.run(decide(action, record, state)), state, sessions)
    second = sessions.only("class-1")
    assert second is not None
    fake_agora.end_session(str(second.sid))
    commit(action.run(decide(action, second, state, uid=BACKUP_UID)), state, sessions)
    third = sessions.only("class-1")
    assert third is not None
    assert third.uid == UID
    assert [r.uid for r in third.restarts] == [BACKUP_UID, UID]
    assert len(live_tasks(fake_agora, UID)) == 1


def test_a_fresh_token_is_sent_when_a_certificate_is_configured(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    action = make_action(fake_agora, sessions, certificate=CERTIFICATE)
    action.run(decide(action, record, MemoryState()))
    token = calls_after_setup(fake_agora, "start")[0].body["clientRequest"]["token"]
    assert rtc_grant(token, CERTIFICATE) == ("class-1", BACKUP_UID)
    stored = sessions.only("class-1")
    assert stored is not None
    assert "token" not in stored.client_request


def test_a_start_that_went_through_unanswered_is_found_not_repeated(
    fake_agora: FakeAgora,
) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.fail_next("start", response_timeout_65(apply=True))
    with pytest.raises(TransientError):
        action.run(command)
    commit(action.run(command), state, sessions)  # 201 + code 7 names the task
    running = live_tasks(fake_agora, BACKUP_UID)
    assert len(running) == 1
    stored = sessions.only("class-1")
    assert stored is not None
    assert stored.sid == running[0]


def test_after_three_failed_starts_a_new_resource_is_acquired(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    action = make_action(fake_agora, sessions)
    command = decide(action, record, MemoryState())
    fake_agora.fail_next("start", upstream_timeout_62(), upstream_timeout_62(),
                         upstream_timeout_62())
    delays = []
    for _ in range(3):
        with pytest.raises(TransientError) as caught:
            action.run(command)
        delays.append(caught.value.retry_after_s)
    assert delays == [3.0, 6.0, 9.0]
    action.run(command)
    assert len(calls_after_setup(fake_agora, "acquire")) == 2
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


def test_a_retry_after_four_minutes_acquires_again_and_finds_its_own_task(
    fake_agora: FakeAgora,
) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.fail_next("start", disconnect())  # not applied: nothing started
    with pytest.raises(TransientError):
        action.run(command)
    clock(fake_agora).advance(241)
    commit(action.run(command), state, sessions)
    assert len(calls_after_setup(fake_agora, "acquire")) == 2
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


def test_a_crash_between_acquire_and_start_resumes_with_the_same_uid_and_resource(
    fake_agora: FakeAgora,
) -> None:
    sessions = CrashingSessions()
    record, _ = failed_session(fake_agora, sessions)
    state = MemoryState()
    first = make_action(fake_agora, sessions)
    command = decide(first, record, state)
    with pytest.raises(Crash):
        first.run(command)
    assert len(calls_after_setup(fake_agora, "start")) == 0
    note = sessions.only("class-1")
    assert note is not None
    assert note.status == "restarting"
    assert note.pending is not None
    assert (note.pending.failed_sid, note.pending.uid) == (record.sid, BACKUP_UID)

    # The process restarts: nothing was committed, the event is handled again.
    sessions.crash = False
    second = make_action(fake_agora, sessions)
    commit(second.run(decide(second, note, state)), state, sessions)
    assert len(calls_after_setup(fake_agora, "acquire")) == 1
    starts = calls_after_setup(fake_agora, "start")
    assert len(starts) == 1
    assert note.pending.resource_id in starts[0].path
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


@pytest.mark.parametrize("later_s", [0, 300], ids=["resource-fresh", "resource-expired"])
def test_a_crash_after_start_never_starts_a_second_task(fake_agora: FakeAgora,
                                                        later_s: int) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    first = make_action(fake_agora, sessions)
    command = decide(first, record, state)
    # Start reached Agora, then the process died before committing anything.
    fake_agora.fail_next("start", Fault(disconnect=True, apply=True))
    with pytest.raises(TransientError):
        first.run(command)
    running = live_tasks(fake_agora, BACKUP_UID)
    assert len(running) == 1
    clock(fake_agora).advance(later_s)

    second = make_action(fake_agora, sessions)  # a new process: empty memory
    outcomes = commit(second.run(decide(second, record, state)), state, sessions)
    assert live_tasks(fake_agora, BACKUP_UID) == running
    stored = sessions.only("class-1")
    assert stored is not None
    assert (stored.sid, stored.status, stored.pending) == (running[0], "running", None)
    assert outcomes[0]["new_sid"] == running[0]
    if later_s:  # a new resourceId got 53, the earlier one answered 7
        assert [c.status for c in calls_after_setup(fake_agora, "start")][-2:] == [400, 201]


def test_53_for_a_task_that_cannot_be_identified_alerts_and_never_records_twice(
    fake_agora: FakeAgora,
) -> None:
    record, sessions = failed_session(fake_agora)
    foreign = start_session(fake_agora, uid=BACKUP_UID, backup_uid=UID)  # not in our notes
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    for _ in range(2):  # give a concurrent attempt time to show up in the registry
        with pytest.raises(TransientError) as caught:
            action.run(command)
        assert "53" in str(caught.value)
    with pytest.raises(ActionFailed) as failed:
        action.run(command)
    outcomes = commit(failed.value.effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("failed", True)]
    assert "not switching uids" in outcomes[0]["error"]
    assert live_tasks(fake_agora, BACKUP_UID) == [foreign.sid]
    assert live_tasks(fake_agora, UID) == []
    assert {c.body["uid"] for c in calls_after_setup(fake_agora, "start")[1:]} == {BACKUP_UID}
    assert gave_up_counts(action) == {"uid_conflict": 1.0}


def test_a_concurrent_attempt_noted_in_the_registry_is_found_not_doubled(
    fake_agora: FakeAgora,
) -> None:
    # A rebalance: the old owner (a) started the restart and noted it; its commit was
    # refused. The new owner (b) handles the same failure from the same state.
    record, sessions = failed_session(fake_agora)
    state_a, state_b = MemoryState(), MemoryState()
    a, b = make_action(fake_agora, sessions), make_action(fake_agora, sessions)
    command_b = decide(b, record, state_b)  # decided before a's note arrived
    a.run(decide(a, record, state_a))  # effects never committed
    (task,) = live_tasks(fake_agora, BACKUP_UID)
    commit(b.run(command_b), state_b, sessions)
    assert live_tasks(fake_agora, BACKUP_UID) == [task]
    stored = sessions.only("class-1")
    assert stored is not None
    assert (stored.sid, stored.status) == (task, "running")


def test_a_concurrent_attempt_started_after_ours_is_found_through_its_note(
    fake_agora: FakeAgora,
) -> None:
    record, sessions = failed_session(fake_agora)
    state_a, state_b = MemoryState(), MemoryState()
    a, b = make_action(fake_agora, sessions), make_action(fake_agora, sessions)
    command_a, command_b = decide(a, record, state_a), decide(b, record, state_b)
    # b acquires and notes first but its start is lost in the network (never applied) ...
    fake_agora.fail_next("start", disconnect())
    with pytest.raises(TransientError):
        b.run(command_b)
    # ... then a, resuming from b's note, starts the task on that same resourceId.
    a.run(command_a)
    (task,) = live_tasks(fake_agora, BACKUP_UID)
    commit(b.run(command_b), state_b, sessions)  # b's retry: 7 names a's task
    assert live_tasks(fake_agora, BACKUP_UID) == [task]
    stored = sessions.only("class-1")
    assert stored is not None
    assert stored.sid == task


def test_over_the_cap_only_an_alert_is_emitted(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions, rules=RestartRules(max_restarts=1))
    state.entries[channel_key("class-1", "classes")] = {"restarts_ms": [clock_ms(action) - 1000]}
    command = action.decide(exit_event(sid=str(record.sid), at_ms=clock_ms(action)), state)
    assert isinstance(command, GiveUpCommand)
    outcomes = commit(action.run(command), state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("gave_up", True)]
    stored = sessions.only("class-1")
    assert stored is not None
    assert stored.status == "gave_up"
    assert len(calls_after_setup(fake_agora, "acquire")) == 0
    assert action.decide(exit_event(sid=str(record.sid)), state) is None  # alerted once
    assert gave_up_counts(action) == {"max_restarts": 1.0}


def test_the_cap_counts_the_channels_restarts_across_tasks_within_the_window(
    fake_agora: FakeAgora,
) -> None:
    sessions = MemorySessions(start_session(fake_agora))
    state = MemoryState()
    action = make_action(fake_agora, sessions, rules=RestartRules(max_restarts=2, window_s=600))
    outcomes = []
    for _ in range(3):  # the original task, then each replacement, dies 100 s later
        current = sessions.only("class-1")
        assert current is not None
        fake_agora.end_session(str(current.sid))
        command = action.decide(exit_event(sid=str(current.sid), uid=current.uid,
                                           at_ms=clock_ms(action)), state)
        assert command is not None
        outcomes += commit(action.run(command), state, sessions)
        clock(fake_agora).advance(100)
    assert [o["outcome"] for o in outcomes] == ["restarted", "restarted", "gave_up"]
    assert fake_agora.running() == []
    assert gave_up_counts(action) == {"max_restarts": 1.0}

    # Started again by hand after the window: its failure is restarted again.
    clock(fake_agora).advance(600)
    manual = start_session(fake_agora)
    sessions.put(manual)
    fake_agora.end_session(str(manual.sid))
    command = action.decide(exit_event(sid=str(manual.sid), at_ms=clock_ms(action)), state)
    assert isinstance(command, RestartCommand)
    assert command.recent_restarts_ms == ()
    assert [o["outcome"] for o in commit(action.run(command), state, sessions)] == ["restarted"]
    assert len(fake_agora.running()) == 1


def test_a_live_task_needs_no_restart(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    sessions = MemorySessions(record)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = action.decide(received(41, sid=str(record.sid), details={"leaveCode": 16}), state)
    assert isinstance(command, RestartCommand)
    effects = action.run(command)
    outcomes = commit(effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("not_needed", False)]
    assert effects.state == {}  # a later session_exit is still handled
    assert len(calls_after_setup(fake_agora, "acquire")) == 0


def test_a_404_inside_the_failover_grace_is_checked_again_later(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions, rules=RestartRules(failover_grace_s=90))
    event = received(1, sid=str(record.sid), at_ms=clock_ms(action),
                     details={"module": 0, "errorLevel": 5, "errorCode": 52})
    command = action.decide(event, state)
    assert isinstance(command, RestartCommand)
    with pytest.raises(TransientError) as caught:
        action.run(command)
    assert caught.value.retry_after_s == 31.0
    clock(fake_agora).advance(60)
    with pytest.raises(TransientError) as caught:
        action.run(command)
    assert caught.value.retry_after_s == 31.0
    clock(fake_agora).advance(31)
    fake_agora.join("class-1", "1001")  # the wait is over and people are in the channel
    outcomes = commit(action.run(command), state, sessions)
    assert outcomes[0]["outcome"] == "restarted"
    assert len(fake_agora.calls_to("query")) == 4  # 3 on the old task, 1 confirming the new
    assert len(fake_agora.calls_to("channel_users")) == 1


def test_a_failover_that_completes_needs_no_restart(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    sessions = MemorySessions(record)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    sid = str(record.sid)
    fake_agora.failover(sid, window_s=40)
    note = action.decide(received(12, sid=sid, details={"newUid": 77}, at_ms=clock_ms(action)),
                         state)
    assert note is not None
    state.apply(action.run(note))
    command = action.decide(received(41, sid=sid, details={"leaveCode": 16},
                                     at_ms=clock_ms(action)), state)
    assert isinstance(command, RestartCommand)
    with pytest.raises(TransientError):
        action.run(command)
    clock(fake_agora).advance(41)
    outcomes = commit(action.run(command), state, sessions)
    assert outcomes[0]["outcome"] == "not_needed"
    assert len(calls_after_setup(fake_agora, "acquire")) == 0


def test_status_20_is_a_failure(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    sessions = MemorySessions(record)
    fake_agora.set_status(str(record.sid), 20)
    action = make_action(fake_agora, sessions)
    command = action.decide(received(41, sid=str(record.sid), details={"leaveCode": 16}),
                            MemoryState())
    assert isinstance(command, RestartCommand)
    action.run(command)
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


def test_a_missing_secret_fails_before_anything_is_sent(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    action = make_action(fake_agora, sessions, env={"S3_KEY": "AKIA-visible"})
    with pytest.raises(ActionFailed) as caught:
        action.run(decide(action, record, MemoryState()))
    assert "S3_SECRET is not set" in str(caught.value)
    assert "AKIA" not in str(caught.value)
    assert len(calls_after_setup(fake_agora, "acquire")) == 0
    assert gave_up_counts(action) == {"invalid_request": 1.0}


def test_an_invalid_request_fails_before_anything_is_sent(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    bad = record.model_copy(update={"client_request": {
        **record.client_request,
        "storageConfig": {**record.client_request["storageConfig"],
                          "fileNamePrefix": ["not-allowed"]}}})
    sessions.put(bad)
    action = make_action(fake_agora, sessions)
    with pytest.raises(ActionFailed) as caught:
        action.run(decide(action, bad, MemoryState()))
    assert "clientRequest.storageConfig.fileNamePrefix[0]" in str(caught.value)
    assert "storage-secret-value" not in str(caught.value)
    assert len(calls_after_setup(fake_agora, "acquire")) == 0
    assert gave_up_counts(action) == {"invalid_request": 1.0}


def test_nothing_is_started_while_the_restart_cannot_be_recorded(fake_agora: FakeAgora) -> None:
    sessions = BrokenSessions()
    record, _ = failed_session(fake_agora, sessions)
    action = make_action(fake_agora, sessions)
    command = decide(action, record, MemoryState())
    for _ in range(2):
        with pytest.raises(TransientError, match="not starting"):
            action.run(command)
    assert len(calls_after_setup(fake_agora, "start")) == 0
    sessions.broken = False
    action.run(command)
    assert len(calls_after_setup(fake_agora, "acquire")) == 1  # the noted resourceId is used
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


def test_a_restart_superseded_by_a_newer_task_is_dropped(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    newer = start_session(fake_agora, uid=BACKUP_UID, backup_uid=UID)  # started by hand
    sessions.put(newer)
    outcomes = commit(action.run(command), state, sessions)
    assert outcomes[0]["outcome"] == "not_needed"
    assert state.entries[failure_key("class-1", str(record.sid))]["status"] == "superseded"
    assert len(calls_after_setup(fake_agora, "acquire")) == 1  # only the newer task's


def test_without_a_record_the_profile_restarts_and_registers_the_channel(
    fake_agora: FakeAgora,
) -> None:
    sessions = MemorySessions()
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = action.decide(exit_event(cname="class-9", sid="sid-unknown"), state)
    assert isinstance(command, RestartCommand)
    commit(action.run(command), state, sessions)
    stored = sessions.only("class-9")
    assert stored is not None
    assert (stored.profile, stored.uid, stored.status) == ("classes", BACKUP_UID, "running")
    assert stored.client_request["storageConfig"]["secretKey"] == "${S3_SECRET}"


def test_a_restart_keeps_the_whiteboard_link_and_foreign_fields(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    linked = SessionRecord.model_validate({
        **record.model_dump(by_alias=True), "tenant": "acme",
        "whiteboard": {"room_uuid": "a7e04e2b0cf911ecb3b8d5ea7d1eca69", "on_events": [11, 41]}})
    sessions = MemorySessions(linked)
    fake_agora.end_session(str(record.sid))
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    commit(action.run(decide(action, linked, state)), state, sessions)
    value = sessions.get(linked.key)
    assert value is not None
    assert value["tenant"] == "acme"
    assert value["whiteboard"]["on_events"] == [11, 41]
    assert value["sid"] != record.sid


def test_outcomes_read_as_alerts_and_recoveries_downstream(fake_agora: FakeAgora) -> None:
    from handlers.notify.action_signals import parse_action_record

    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions, rules=RestartRules(max_restarts=1))
    restarted = action.run(decide(action, record, state))
    (outcome,) = [o for o in restarted.outputs if o.topic == "t.actions"]
    parsed = parse_action_record(outcome.value)
    assert parsed is not None
    assert parsed.is_recovery
    assert not parsed.alert
    commit(restarted, state, sessions)

    second = sessions.only("class-1")
    assert second is not None
    gave_up = action.decide(exit_event(sid=str(second.sid), uid=BACKUP_UID,
                                       at_ms=clock_ms(action)), state)
    assert isinstance(gave_up, GiveUpCommand)
    (outcome,) = [o for o in action.run(gave_up).outputs if o.topic == "t.actions"]
    parsed = parse_action_record(outcome.value)
    assert parsed is not None
    assert parsed.alert
    assert "restart gave up" in parsed.names()
    assert dict(outcome.headers)["outcome"] == "gave_up"


def test_the_registry_says_running_only_once_query_shows_the_new_task_running(
    fake_agora: FakeAgora,
) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.initial_status = 2  # the new task starts slowly
    with pytest.raises(TransientError) as caught:
        action.run(command)
    assert caught.value.retry_after_s == 5.0
    (new_task,) = [s for s in fake_agora.running() if s.uid == BACKUP_UID]
    stored = sessions.only("class-1")
    assert stored is not None
    assert stored.status == "restarting"  # not running before query says so
    clock(fake_agora).advance(5)
    fake_agora.set_status(new_task.sid, 5)
    outcomes = commit(action.run(command), state, sessions)
    assert [(o["outcome"], o["new_sid"]) for o in outcomes] == [("restarted", new_task.sid)]
    assert len(fake_agora.calls_to("start")) == 2  # the setup's and one restart: no repeat
    stored = sessions.only("class-1")
    assert stored is not None
    assert (stored.status, stored.sid) == ("running", new_task.sid)


@pytest.mark.parametrize("never_runs", [True, False], ids=["stuck", "exits-at-once"])
def test_a_new_task_that_never_runs_fails_with_an_alert_and_no_second_task(
    fake_agora: FakeAgora, never_runs: bool,
) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.initial_status = 2 if never_runs else 20
    if never_runs:
        for _ in range(18):
            with pytest.raises(TransientError):
                action.run(command)
            clock(fake_agora).advance(5)
    with pytest.raises(ActionFailed) as caught:
        action.run(command)
    outcomes = commit(caught.value.effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("failed", True)]
    assert ("within 90 s" if never_runs else "status 20") in outcomes[0]["error"]
    assert len(fake_agora.calls_to("start")) == 2


def test_a_gateway_404_is_a_configuration_error_never_a_dead_task(
    fake_agora: FakeAgora,
) -> None:
    """A wrong API base answers 404 "no Route matched": one alerting outcome that says
    so, no restart; the reconciler reports the task unknown, not dead."""
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    wrong = fake_agora.client(api_base=fake_agora.base_url + "/wrong")
    OPEN_CLIENTS.append(wrong)
    action._api = wrong
    event = received(1, sid=str(record.sid), at_ms=clock_ms(action),
                     details={"module": 0, "errorLevel": 5, "errorCode": 52})
    command = action.decide(event, state)
    assert command is not None
    with pytest.raises(ActionFailed) as caught:
        action.run(command)
    outcomes = commit(caught.value.effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("failed", True)]
    assert "configuration error" in outcomes[0]["error"]
    assert len(fake_agora.calls_to("acquire")) == 1  # the setup's: no restart

    published = Published()
    checker = Reconciler(wrong, snapshot=lambda: dict(MemorySessions(record).items()),
                         publish=published, events_topic="t.events", grace_s=0,
                         clock=fake_agora.clock)
    assert [r.verdict.kind for r in checker.tick()] == ["unknown"]
    assert published.records == []
