"""Every answer of Agora's error table (reference/agora-facts.md 2.9) that the restart
path can meet, one case each, on the endpoint where it comes: ``start``, ``acquire`` and
the confirming ``query``. Each case checks what was sent next, what was recorded, the
outcome and the give-up counter; ``test_every_code_of_the_table_is_covered`` keeps the
list complete."""

from __future__ import annotations

from typing import Any

import pytest
from support.restart_env import (
    MemoryState,
    calls_after_setup,
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
from handlers.recording.commands import CONFLICT_LOOKUPS, MAX_ACQUIRES_PER_RUN, RestartCommand
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import MemorySessions
from handlers.testing.agora_faults import (
    Fault,
    agora_error,
    bad_gateway,
    disconnect,
    gateway_error,
    no_worker_502,
    rate_limited,
    response_timeout_65,
    upstream_timeout_62,
)
from handlers.testing.agora_recordings import BACKUP_UID, RESOLVED_REQUEST, start_session
from handlers.testing.fake_agora import FakeAgora


def case(fault: Fault, name: str) -> Any:
    return pytest.param(fault, id=name)


def resource_of(path: str) -> str:
    return path.split("/resourceid/")[1].split("/")[0]


# ----------------------------------------------------------------------------------- start

START_RETRY_SAME = [
    case(upstream_timeout_62("start"), "62"),
    case(response_timeout_65(), "65"),
    case(agora_error(500, 15, "undocumented"), "15"),
    case(agora_error(500, 500, "internal_error"), "500-code"),
    case(gateway_error(500, "internal error"), "500"),
    case(bad_gateway(), "502-gateway"),
    case(gateway_error(503, "service unavailable"), "503"),
    case(gateway_error(504, "upstream timed out"), "504-gateway"),
    case(rate_limited(), "429"),
    case(disconnect(), "no-answer"),
]


@pytest.mark.parametrize("fault", START_RETRY_SAME)
def test_start_retries_the_same_resource(fake_agora: FakeAgora, fault: Fault) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.fail_next("start", fault)
    with pytest.raises(TransientError) as caught:
        action.run(command)
    assert caught.value.retry_after_s == 3.0  # Agora's first back-off, a floor
    outcomes = commit(action.run(command), state, sessions)
    assert [o["outcome"] for o in outcomes] == ["restarted"]
    starts = calls_after_setup(fake_agora, "start")
    assert len(calls_after_setup(fake_agora, "acquire")) == 1
    assert [resource_of(c.path) for c in starts] == [resource_of(starts[0].path)] * 2
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1
    assert gave_up_counts(action) == {}


def test_start_429_waits_for_retry_after(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    action = make_action(fake_agora, sessions)
    fake_agora.fail_next("start", rate_limited(retry_after="20"))
    with pytest.raises(TransientError) as caught:
        action.run(decide(action, record, MemoryState()))
    assert caught.value.retry_after_s == 20.0


START_REACQUIRE = [
    case(agora_error(400, 432, "resourceId does not match"), "432"),
    case(agora_error(400, 433, "resource expired"), "433"),
    case(agora_error(400, 1001, "cannot parse"), "1001"),
    case(no_worker_502(), "502-code"),
]


@pytest.mark.parametrize("fault", START_REACQUIRE)
def test_start_acquires_again_at_once(fake_agora: FakeAgora, fault: Fault) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    fake_agora.fail_next("start", fault)
    outcomes = commit(action.run(decide(action, record, state)), state, sessions)
    assert [o["outcome"] for o in outcomes] == ["restarted"]
    acquires = calls_after_setup(fake_agora, "acquire")
    assert [c.body["uid"] for c in acquires] == [BACKUP_UID, BACKUP_UID]
    starts = calls_after_setup(fake_agora, "start")
    assert resource_of(starts[0].path) != resource_of(starts[1].path)
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


def test_start_refusing_every_resource_retries_later(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    action = make_action(fake_agora, sessions)
    command = decide(action, record, MemoryState())
    fake_agora.fail_next("start", *[no_worker_502()] * MAX_ACQUIRES_PER_RUN)
    with pytest.raises(TransientError, match="resourceIds in a row were refused") as caught:
        action.run(command)
    assert caught.value.retry_after_s == 3.0
    assert len(calls_after_setup(fake_agora, "acquire")) == MAX_ACQUIRES_PER_RUN
    action.run(command)
    assert len(calls_after_setup(fake_agora, "acquire")) == MAX_ACQUIRES_PER_RUN + 1
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1


def test_start_7_records_the_task_that_runs(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.fail_next("start", disconnect())
    with pytest.raises(TransientError):
        action.run(command)
    # Someone (a concurrent attempt) started the noted resourceId meanwhile.
    note = sessions.only("class-1")
    assert note is not None
    assert note.pending is not None
    with fake_agora.client() as client:
        other = client.start("individual", note.pending.resource_id, "class-1", BACKUP_UID,
                             RESOLVED_REQUEST)
    outcomes = commit(action.run(command), state, sessions)
    assert calls_after_setup(fake_agora, "start")[-1].status == 201
    assert [(o["outcome"], o["new_sid"]) for o in outcomes] == [("restarted", other.sid)]
    assert live_tasks(fake_agora, BACKUP_UID) == [other.sid]


START_REFUSED = [
    case(agora_error(400, 2, "invalid parameter"), "2"),
    case(agora_error(400, 8, "invalid Content-Type header"), "8"),
    case(agora_error(400, 109, "token expired"), "109"),
    case(agora_error(400, 110, "token invalid"), "110"),
    case(agora_error(400, 1003, "appid or sid does not match"), "1003"),
    case(agora_error(400, 1013, "invalid channel name"), "1013"),
    case(gateway_error(400, "appid is invalid"), "400-gateway"),
    case(gateway_error(401, "Invalid authentication credentials"), "401"),
    case(gateway_error(403, "forbidden"), "403"),
    case(gateway_error(404, "no Route matched with those values"), "404"),
    case(Fault(status=200, body={"resourceId": "r"}), "200-without-sid"),
]


@pytest.mark.parametrize("fault", START_REFUSED)
def test_start_refused_fails_with_an_alert(fake_agora: FakeAgora, fault: Fault) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    fake_agora.fail_next("start", fault)
    with pytest.raises(ActionFailed) as caught:
        action.run(decide(action, record, state))
    outcomes = commit(caught.value.effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("failed", True)]
    code = (fault.body or {}).get("code")
    if code is not None:
        assert f"code {code}" in outcomes[0]["error"]
    stored = sessions.only("class-1")
    assert stored is not None
    assert (stored.status, stored.pending) == ("failed", None)
    assert len(calls_after_setup(fake_agora, "start")) == 1  # not repeated
    assert live_tasks(fake_agora, BACKUP_UID) == []
    assert gave_up_counts(action) == {"refused": 1.0}
    assert action.decide(exit_event(sid=str(record.sid)), state) is None  # no storm


# --------------------------------------------------------------------------------- acquire

ACQUIRE_RETRY = [
    case(upstream_timeout_62("acquire"), "62"),
    case(agora_error(500, 500, "internal_error"), "500-code"),
    case(agora_error(500, 501, "no_worker_manager_available"), "501"),
    case(agora_error(500, 504, "allocate_timeout"), "504"),
    case(agora_error(400, 406, "vendor_over_load"), "406"),
    case(agora_error(400, 433, "resource expired"), "433"),
    case(bad_gateway(), "502-gateway"),
    case(rate_limited(), "429"),
    case(disconnect(), "no-answer"),
]


@pytest.mark.parametrize("fault", ACQUIRE_RETRY)
def test_acquire_is_retried_later(fake_agora: FakeAgora, fault: Fault) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.fail_next("acquire", fault)
    with pytest.raises(TransientError):
        action.run(command)
    assert calls_after_setup(fake_agora, "start") == []  # nothing to start yet
    outcomes = commit(action.run(command), state, sessions)
    assert [o["outcome"] for o in outcomes] == ["restarted"]
    assert [c.body["uid"] for c in calls_after_setup(fake_agora, "acquire")] == [BACKUP_UID] * 2
    assert len(live_tasks(fake_agora, BACKUP_UID)) == 1
    assert gave_up_counts(action) == {}


ACQUIRE_REFUSED = [
    case(agora_error(400, 2, "invalid parameter"), "2"),
    case(agora_error(400, 400, "invalid_appid"), "400-code"),
    case(agora_error(400, 401, "invalid_channel_name"), "401-code"),
    case(agora_error(400, 405, "no_active_status"), "405"),
    case(gateway_error(401, "Unauthorized"), "401"),
]


@pytest.mark.parametrize("fault", ACQUIRE_REFUSED)
def test_acquire_refused_fails_with_an_alert(fake_agora: FakeAgora, fault: Fault) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    fake_agora.fail_next("acquire", fault)
    with pytest.raises(ActionFailed) as caught:
        action.run(decide(action, record, state))
    outcomes = commit(caught.value.effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("failed", True)]
    assert len(calls_after_setup(fake_agora, "acquire")) == 1
    assert calls_after_setup(fake_agora, "start") == []
    assert gave_up_counts(action) == {"refused": 1.0}


def test_acquire_53_never_switches_uids(fake_agora: FakeAgora) -> None:
    record, sessions = failed_session(fake_agora)
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = decide(action, record, state)
    fake_agora.fail_next("acquire", *[agora_error(400, 53, "task conflict")] * CONFLICT_LOOKUPS)
    for _ in range(CONFLICT_LOOKUPS - 1):
        with pytest.raises(TransientError, match="53"):
            action.run(command)
    with pytest.raises(ActionFailed) as caught:
        action.run(command)
    outcomes = commit(caught.value.effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("failed", True)]
    assert {c.body["uid"] for c in calls_after_setup(fake_agora, "acquire")} == {BACKUP_UID}
    assert calls_after_setup(fake_agora, "start") == []
    assert gave_up_counts(action) == {"uid_conflict": 1.0}


# ----------------------------------------------------------------------------------- query

def confirm_command(fake: FakeAgora,
                    ) -> tuple[RestartAction, RestartCommand, MemorySessions, MemoryState]:
    """A recorder_leave with CLIENT_LEAVE (16) for a live registered task: query first."""
    record = start_session(fake)
    sessions = MemorySessions(record)
    state = MemoryState()
    action = make_action(fake, sessions)
    command = action.decide(received(41, sid=str(record.sid), details={"leaveCode": 16},
                                     at_ms=clock_ms(action)), state)
    assert isinstance(command, RestartCommand)
    assert command.confirm
    return action, command, sessions, state


QUERY_RETRY = [
    case(upstream_timeout_62("query"), "62"),
    case(response_timeout_65(), "65"),
    case(agora_error(500, 501, "service is exiting"), "501"),
    case(rate_limited(), "429"),
    case(disconnect(), "no-answer"),
]


@pytest.mark.parametrize("fault", QUERY_RETRY)
def test_query_is_asked_again_later(fake_agora: FakeAgora, fault: Fault) -> None:
    action, command, sessions, state = confirm_command(fake_agora)
    fake_agora.fail_next("query", fault)
    with pytest.raises(TransientError):
        action.run(command)
    outcomes = commit(action.run(command), state, sessions)
    assert [o["outcome"] for o in outcomes] == ["not_needed"]  # the task still runs
    assert len(fake_agora.calls_to("query")) == 2
    assert calls_after_setup(fake_agora, "acquire") == []


QUERY_REFUSED = [
    case(agora_error(400, 2, "invalid parameter"), "2"),
    case(agora_error(400, 1003, "appid or sid does not match"), "1003"),
    case(gateway_error(401, "Invalid authentication credentials"), "401"),
]


@pytest.mark.parametrize("fault", QUERY_REFUSED)
def test_query_refused_fails_with_an_alert(fake_agora: FakeAgora, fault: Fault) -> None:
    action, command, sessions, state = confirm_command(fake_agora)
    fake_agora.fail_next("query", fault)
    with pytest.raises(ActionFailed, match="cannot confirm") as caught:
        action.run(command)
    outcomes = commit(caught.value.effects, state, sessions)
    assert [(o["outcome"], o["alert"]) for o in outcomes] == [("failed", True)]
    assert calls_after_setup(fake_agora, "acquire") == []
    assert gave_up_counts(action) == {"refused": 1.0}


# ------------------------------------------------------------------------------ coverage

REFERENCE_CODES = {2, 7, 8, 15, 49, 50, 53, 62, 65, 109, 110, 400, 401, 404, 405, 406, 432,
                   433, 435, 500, 501, 502, 504, 1001, 1003, 1013, 1028}
"""The numeric codes of reference/agora-facts.md 2.9."""
ELSEWHERE = {
    7: "test_start_7_records_the_task_that_runs (here)",
    53: "test_acquire_53_never_switches_uids (here); 53 on start: test_run.py",
    404: "404 on query: test_run.py (failover grace); on start: START_REFUSED",
    49: "stop only (task already exiting): tests/handlers/recording/test_errors.py",
    50: "sync stop only (upload took > 20 s)",
    435: "stop only (nothing recorded): tests/handlers/recording/test_errors.py",
    1028: "updateLayout only: tests/handlers/recording/test_errors.py",
}


def _codes(params: list[Any]) -> set[int]:
    found = set()
    for param in params:
        fault = param.values[0]
        code = (fault.body or {}).get("code")
        if code is not None:
            found.add(code)
    return found


def test_every_code_of_the_table_is_covered() -> None:
    cases = [*START_RETRY_SAME, *START_REACQUIRE, *START_REFUSED, *ACQUIRE_RETRY,
             *ACQUIRE_REFUSED, *QUERY_RETRY, *QUERY_REFUSED]
    missing = REFERENCE_CODES - _codes(cases) - set(ELSEWHERE)
    assert not missing, f"codes without a test: {sorted(missing)}"
