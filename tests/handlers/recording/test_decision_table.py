"""The decision table "did this recording fail?", one test per row (docs/recording.md).

Rows D*: what one callback says (``signals.classify``); rows S*: how an ambiguous end
is settled (``decide.decide_ending``). Both are pure: no server, no broker."""

from __future__ import annotations

from typing import Any

import pytest
from support.restart_env import received

from handlers.recording.api_responses import ChannelUsers
from handlers.recording.decide import (
    ChannelUnavailable,
    Decision,
    Evidence,
    QueryAnswer,
    Running,
    Unanswered,
    Vanished,
    decide_ending,
)
from handlers.recording.signals import Signal, classify
from handlers.testing.agora_recordings import registered

OURS = frozenset({"900001", "900002"})


def signal_of(event_type: int, details: dict[str, Any], **kwargs: Any) -> Signal:
    record = kwargs.pop("record", registered(sid="sid-1"))
    event = received(event_type, sid="sid-1", details=details, **kwargs)
    return classify(event.notification, record).signal


def test_row_D1_session_exit_1_restarts() -> None:
    assert signal_of(11, {"exitStatus": 1}) is Signal.FAILURE


def test_row_D2_recorder_leave_0_restarts() -> None:
    assert signal_of(41, {"leaveCode": 0}) is Signal.FAILURE


@pytest.mark.parametrize("code", [2, 3, 4, 5, 6])
def test_row_D3_web_recorder_stopped_with_an_error_restarts(code: int) -> None:
    assert signal_of(71, {"code": code}) is Signal.FAILURE


def test_row_D4_session_exit_0_ends_the_task() -> None:
    event = received(11, sid="sid-1", details={"exitStatus": 0})
    verdict = classify(event.notification, registered(sid="sid-1"))
    assert (verdict.signal, verdict.ended) == (Signal.BENIGN, True)


@pytest.mark.parametrize(("event_type", "details"), [
    (41, {"leaveCode": 2}), (41, {"leaveCode": 4}), (41, {"leaveCode": 6}),
    (41, {"leaveCode": 8}), (71, {"code": 0}), (71, {"code": 1}),
    (1, {"module": 0, "errorLevel": 4, "errorCode": 52}),
])
def test_row_D5_documented_benign_ends_take_no_action(event_type: int,
                                                      details: dict[str, Any]) -> None:
    assert signal_of(event_type, details) is Signal.BENIGN


def test_row_D6_failover_starts_the_grace_and_names_our_new_uid() -> None:
    event = received(12, sid="sid-1", details={"newUid": 4242})
    verdict = classify(event.notification, registered(sid="sid-1"))
    assert (verdict.signal, verdict.failover, verdict.new_uid) == (Signal.BENIGN, True, "4242")


@pytest.mark.parametrize(("cname", "uid"), [("test_webhook", "12121212"),
                                            ("test_webhook", "900001"),
                                            ("class-1", "12121212")])
def test_row_D7_the_console_health_check_is_never_acted_on(cname: str, uid: str) -> None:
    event = received(11, cname=cname, sid="sid-1", details={"exitStatus": 1}, uid=uid)
    assert classify(event.notification, None).signal is Signal.IRRELEVANT


@pytest.mark.parametrize(("status", "sid", "expected"), [
    ("stopping", "sid-1", Signal.BENIGN), ("stopped", "sid-1", Signal.BENIGN),
    ("ended", "sid-1", Signal.BENIGN), ("starting", "sid-1", Signal.IRRELEVANT),
    ("running", "sid-2", Signal.IRRELEVANT),
])
def test_row_D8_what_the_registry_says_wins(status: str, sid: str, expected: Signal) -> None:
    record = registered(sid=sid, status=status)
    assert signal_of(11, {"exitStatus": 1}, record=record) is expected


@pytest.mark.parametrize(("event_type", "details"), [
    (1, {"module": 0, "errorLevel": 5, "errorCode": 52}),
    (41, {"leaveCode": 16}), (41, {"leaveCode": 2 | 64}), (11, {"exitStatus": 3}),
])
def test_row_A1_ambiguous_evidence_is_settled_not_acted_on(event_type: int,
                                                           details: dict[str, Any]) -> None:
    assert signal_of(event_type, details) is Signal.NEEDS_CONFIRMATION


VANISHED = Vanished()


def settle(query: QueryAnswer = VANISHED, *, status: str | None = "running",
           wait_left_s: float = 0.0, channel: Any = None) -> tuple[Decision, str]:
    ruling = decide_ending(Evidence(registry_status=status, query=query,
                                    wait_left_s=wait_left_s, channel=channel,
                                    recorder_uids=OURS))
    return ruling.decision, ruling.row


@pytest.mark.parametrize("status", ["ended", "stopping", "stopped"])
def test_row_S1_an_exit_that_arrived_meanwhile_ends_it(status: str) -> None:
    assert settle(Running(20), status=status) == (Decision.ENDED, "S1")


def test_row_S2_query_status_20_restarts() -> None:
    assert settle(Running(20)) == (Decision.RESTART, "S2")


@pytest.mark.parametrize("status", [4, 5, 6, 1])
def test_row_S3_any_other_query_status_is_alive(status: int) -> None:
    assert settle(Running(status)) == (Decision.ALIVE, "S3")


def test_row_S4_a_failed_query_waits() -> None:
    assert settle(Unanswered("HTTP 504"), wait_left_s=-5) == (Decision.WAIT, "S4")


def test_row_S5_a_404_waits_for_the_exit_then_asks_the_channel() -> None:
    assert settle(wait_left_s=30) == (Decision.WAIT, "S5")
    assert settle(wait_left_s=0) == (Decision.ASK_CHANNEL, "S5")
    # Even with people in the channel, a 404 inside the wait restarts nothing.
    assert settle(wait_left_s=1, channel=ChannelUsers(True, frozenset({"1001"}), 1))[0] \
        is Decision.WAIT


def test_row_S6_a_closed_channel_means_it_ended_with_its_channel() -> None:
    assert settle(channel=ChannelUsers(exists=False)) == (Decision.ENDED, "S6")


@pytest.mark.parametrize("users", [frozenset(), frozenset({"900001"}), OURS,
                                   frozenset({"900002", "4242"})])
def test_row_S7_only_our_recorders_in_the_channel_means_it_ended(users: frozenset[str]) -> None:
    ours = OURS | {"4242"}  # 4242: the uid Agora moved our recorder to
    ruling = decide_ending(Evidence(registry_status="running", query=Vanished(),
                                    wait_left_s=0, recorder_uids=ours,
                                    channel=ChannelUsers(True, users, len(users))))
    assert (ruling.decision, ruling.row) == (Decision.ENDED, "S7")


@pytest.mark.parametrize(("users", "total"), [
    (frozenset({"1001"}), 1), (frozenset({"900001", "1001", "1002"}), 3),
    (frozenset({"900001"}), 40),  # a capped audience list: Agora's total counts them
])
def test_row_S8_people_in_the_channel_restart_it(users: frozenset[str], total: int) -> None:
    assert settle(channel=ChannelUsers(True, users, total)) == (Decision.RESTART, "S8")


def test_row_S9_a_failed_channel_list_waits() -> None:
    assert settle(channel=ChannelUnavailable("HTTP 503", transient=True)) == (
        Decision.WAIT, "S9")


def test_row_S10_a_refused_channel_list_never_restarts() -> None:
    assert settle(channel=ChannelUnavailable("HTTP 401", transient=False)) == (
        Decision.UNKNOWN, "S10")
