"""The failure-signal rules, one row per rule (SPEC 3.4, agora-facts 1.8-1.10)."""

from __future__ import annotations

from typing import Any

import pytest
from support.restart_env import received

from handlers.recording.session_registry import SessionRecord
from handlers.recording.signals import LIVENESS_EVENT_TYPES, Signal, classify
from handlers.testing.agora_recordings import registered
from webhook.shared.event_types import EVENT_TYPES
from webhook.shared.events import EventError

F, C, B, X = (Signal.FAILURE, Signal.NEEDS_CONFIRMATION, Signal.BENIGN, Signal.IRRELEVANT)

RULES: list[tuple[str, int, dict[str, Any], Signal]] = [
    ("session_exit abnormal", 11, {"exitStatus": 1}, F),
    ("session_exit normal", 11, {"exitStatus": 0}, B),
    ("session_exit undocumented status", 11, {"exitStatus": 3}, C),
    ("recorder_leave init failed", 41, {"leaveCode": 0}, F),
    ("recorder_leave our stop (SIG)", 41, {"leaveCode": 2}, B),
    ("recorder_leave idle (NO_USERS)", 41, {"leaveCode": 4}, B),
    ("recorder_leave SIG+NO_USERS", 41, {"leaveCode": 6}, B),
    ("recorder_leave timer", 41, {"leaveCode": 8}, B),
    ("recorder_leave client left", 41, {"leaveCode": 16}, C),
    ("recorder_leave SIG plus unknown bit", 41, {"leaveCode": 2 | 32}, C),
    ("fatal error", 1, {"module": 0, "errorLevel": 5, "errorCode": 52}, C),
    ("major error", 1, {"module": 0, "errorLevel": 4, "errorCode": 52}, B),
    ("web recorder stopped by user", 71, {"code": 0}, B),
    ("web recorder max hour", 71, {"code": 1}, B),
    ("web recorder page load timeout", 71, {"code": 4}, F),
    ("web recorder undocumented code", 71, {"code": 99}, F),
    ("failover", 12, {"newUid": 12345}, B),
    ("recorder started", 40, {"status": 0}, X),
    ("uploaded", 31, {"status": 0}, X),
]


@pytest.mark.parametrize(("event_type", "details", "expected"),
                         [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_event_rules_without_registry(event_type: int, details: dict[str, Any],
                                      expected: Signal) -> None:
    assert classify(received(event_type, details=details).notification, None).signal is expected


@pytest.mark.parametrize(("event_type", "details", "expected"),
                         [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_event_rules_for_the_registered_task(event_type: int, details: dict[str, Any],
                                             expected: Signal) -> None:
    record = registered(sid="sid-1")
    event = received(event_type, sid="sid-1", details=details)
    assert classify(event.notification, record).signal is expected


def test_failover_opens_the_grace_window() -> None:
    result = classify(received(12, details={"newUid": 5}).notification, None)
    assert result.failover
    assert not classify(received(11, details={"exitStatus": 1}).notification, None).failover


@pytest.mark.parametrize("status", ["stopping", "stopped"])
@pytest.mark.parametrize(("event_type", "details"), [(11, {"exitStatus": 1}),
                                                     (41, {"leaveCode": 0}), (71, {"code": 6})])
def test_our_own_stop_is_benign(status: str, event_type: int, details: dict[str, Any]) -> None:
    record = registered(sid="sid-1", status=status)
    result = classify(received(event_type, sid="sid-1", details=details).notification, record)
    assert result.signal is Signal.BENIGN
    assert status in result.reason


def test_an_old_sid_is_irrelevant() -> None:
    record = registered(sid="sid-new")
    result = classify(received(11, sid="sid-old", details={"exitStatus": 1}).notification,
                      record)
    assert result.signal is Signal.IRRELEVANT
    assert "sid-old" in result.reason


def test_the_new_task_fails_like_any_other() -> None:
    record = registered(sid="sid-new")
    event = received(11, sid="sid-new", details={"exitStatus": 1})
    assert classify(event.notification, record).signal is Signal.FAILURE


def test_a_session_being_started_is_left_alone() -> None:
    record: SessionRecord = registered(sid=None, status="starting")
    event = received(11, sid="sid-x", details={"exitStatus": 1})
    assert classify(event.notification, record).signal is Signal.IRRELEVANT


def test_other_products_are_irrelevant() -> None:
    event = received(11, details={"exitStatus": 1}, product_id=5)
    assert classify(event.notification, None).signal is Signal.IRRELEVANT


def test_an_event_without_sid_is_irrelevant() -> None:
    event = received(11, sid="", details={"exitStatus": 1})
    assert classify(event.notification, None).signal is Signal.IRRELEVANT


def test_malformed_details_of_a_liveness_event_name_the_field() -> None:
    event = received(11, details={"msgName": "session_exit"})
    with pytest.raises(EventError) as caught:
        classify(event.notification, None)
    assert caught.value.field == "payload.details.exitStatus"


@pytest.mark.parametrize("event_type", sorted(set(EVENT_TYPES) - LIVENESS_EVENT_TYPES))
@pytest.mark.parametrize("status", [None, "running", "starting", "restarting", "stopping",
                                    "stopped", "ended"])
def test_no_type_outside_the_liveness_set_is_acted_on(event_type: int, status: str | None
                                                      ) -> None:
    """What lets the restart action declare ``event_types`` and skip the other callbacks
    unread: for them ``classify`` never asks for anything."""
    record = None if status is None else registered(sid="sid-1", status=status)
    result = classify(received(event_type, sid="sid-1").notification, record)
    assert result.signal in (Signal.IRRELEVANT, Signal.BENIGN)
    assert not result.failover
    assert not result.ended
