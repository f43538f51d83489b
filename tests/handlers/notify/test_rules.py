"""Alert rule matching (events and action outcomes) and incident keys. Pure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.action_contract import InvalidEvent
from handlers.config import AlertRules
from handlers.notify.action_signals import ActionRecord, normalise_name, parse_action_record
from handlers.notify.rules import (
    event_triggers,
    incident_key,
    outcome_triggers,
    rules_for_event,
    rules_for_outcome,
    where_matches,
)

RULES = AlertRules.model_validate(
    {
        "sinks": [{"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/x"}],
        "rules": [
            {"name": "fatal-error", "events": [1], "where": {"errorLevel": 5}, "sinks": ["ops"],
             "severity": "critical"},
            {"name": "abnormal-exit", "events": [11], "where": {"exitStatus": 1},
             "sinks": ["ops"]},
            {"name": "any-exit", "events": [11], "sinks": ["ops"], "severity": "info"},
            {"name": "restart-gave-up", "outcomes": ["restart gave up"], "sinks": ["ops"]},
            {"name": "whiteboard-failed", "outcomes": ["whiteboard failed"], "sinks": ["ops"]},
            {"name": "flagged", "outcomes": ["*"], "sinks": ["ops"], "severity": "warning"},
        ],
    }
)


def names(rules: list[Any]) -> list[str]:
    return [r.name for r in rules]


@pytest.mark.parametrize(
    ("where", "fields", "expected"),
    [
        ({}, {}, True),
        ({"errorLevel": 5}, {"errorLevel": 5, "module": 0}, True),
        ({"errorLevel": 5}, {"errorLevel": 4}, False),
        ({"errorLevel": 5}, {}, False),
        ({"errorLevel": 5}, {"errorLevel": "5"}, False),
        ({"stat": 1}, {"stat": True}, False),
        ({"flag": True}, {"flag": 1}, False),
        ({"flag": True}, {"flag": True}, True),
        ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
    ],
)
def test_where_is_strict_equality_on_every_field(
    where: dict[str, Any], fields: dict[str, Any], expected: bool
) -> None:
    assert where_matches(where, fields) is expected


def test_rules_for_event_checks_type_and_predicates() -> None:
    fatal = {"msgName": "cloud_recording_error", "module": 2, "errorLevel": 5, "errorCode": 52}
    assert names(rules_for_event(RULES, 1, fatal)) == ["fatal-error"]
    assert names(rules_for_event(RULES, 1, {**fatal, "errorLevel": 3})) == []
    assert names(rules_for_event(RULES, 2, fatal)) == []
    assert names(rules_for_event(RULES, 11, {"exitStatus": 1})) == ["abnormal-exit", "any-exit"]
    assert names(rules_for_event(RULES, 11, {"exitStatus": 0})) == ["any-exit"]


def test_event_trigger_carries_incident_summary_and_details() -> None:
    details = {"msgName": "cloud_recording_error", "module": 2, "errorLevel": 5,
               "errorCode": 52, "errorMsg": "start timeout", "fileList": ["ignored"]}
    [trigger] = event_triggers(
        RULES, cname="c1", sid="s1", uid="9", event_type=1, notice_id="n1",
        details=details, sendts=123,
    )
    assert trigger.incident == incident_key("fatal-error", "c1", "s1")
    assert trigger.severity == "critical"
    assert trigger.sinks == ("ops",)
    assert trigger.occurred_ms == 123
    assert trigger.alert_class == "cloud_recording_error"
    assert "fatal-error: cloud_recording_error on cname c1 (sid s1)" in trigger.summary
    assert "errorCode=52" in trigger.summary
    assert trigger.details["noticeId"] == "n1"
    assert "fileList" not in trigger.details["details"]


def test_incident_keys_are_unambiguous() -> None:
    assert incident_key("a/b", "c", "d") != incident_key("a", "b/c", "d")
    assert incident_key("r", "c", None) != incident_key("r", "c", "None")
    assert json.loads(incident_key("r", "c", "s")) == ["r", "c", "s"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("restart gave up", "restart gave up"),
        ("Restart.Gave_Up", "restart gave up"),
        ("  whiteboard-failed ", "whiteboard failed"),
        ("screenshot-list/failed", "screenshot list failed"),
    ],
)
def test_outcome_names_are_normalised(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def record(**fields: Any) -> ActionRecord:
    return ActionRecord.model_validate({"cname": "c1", **fields})


def test_outcome_rules_match_handler_and_outcome_names() -> None:
    gave_up = record(action="restart", outcome="gave_up", alert=True)
    assert names(rules_for_outcome(RULES, gave_up)) == ["restart-gave-up", "flagged"]
    # The runtime's own outcome of a failed whiteboard call (no alert flag).
    runtime_failed = record(action="whiteboard", outcome="failed", attempts=1, at=5)
    assert names(rules_for_outcome(RULES, runtime_failed)) == ["whiteboard-failed"]
    # The whiteboard action's own record: handler + operation + flag.
    wb = record(handler="whiteboard", action="screenshot-list", outcome="failed", alert=True)
    assert names(rules_for_outcome(RULES, wb)) == ["whiteboard-failed", "flagged"]
    assert names(rules_for_outcome(RULES, record(action="restart", outcome="ok"))) == []


def test_outcome_where_applies_to_the_record_fields() -> None:
    rules = AlertRules.model_validate(
        {
            "sinks": [{"name": "ops", "kind": "slack", "url": "http://127.0.0.1:9/x"}],
            "rules": [{"name": "wb-401", "outcomes": ["whiteboard failed"],
                       "where": {"status": 401}, "sinks": ["ops"]}],
        }
    )
    failed = {"handler": "whiteboard", "action": "screenshot-list", "outcome": "failed"}
    assert names(rules_for_outcome(rules, record(**failed, status=401))) == ["wb-401"]
    assert names(rules_for_outcome(rules, record(**failed, status=404))) == []


def test_outcome_trigger_is_per_rule_and_cname() -> None:
    gave_up = record(action="restart", outcome="gave_up", sid="s9", error="5 restarts in 600 s",
                     alert=True,
                     at="2024-01-01T00:00:00+00:00", clientRequest="{token}", secretKey="x")
    triggers = outcome_triggers(RULES, gave_up, "c1")
    assert [t.incident for t in triggers] == [
        incident_key("restart-gave-up", "c1", None), incident_key("flagged", "c1", None)
    ]
    first = triggers[0]
    assert first.summary == (
        "restart-gave-up: restart gave_up on cname c1 (sid s9): 5 restarts in 600 s"
    )
    assert first.occurred_ms == 1_704_067_200_000
    assert first.component == "restart"
    assert "clientRequest" not in first.details
    assert "secretKey" not in first.details
    assert first.details["error"] == "5 restarts in 600 s"


def test_recovery_outcomes() -> None:
    assert record(action="restart", outcome="restarted").is_recovery
    assert record(handler="restart", action="start", outcome="succeeded").is_recovery
    assert record(action="reconciler", outcome="ok", recovered=True).is_recovery
    assert not record(action="restart", outcome="ok").is_recovery
    assert not record(action="whiteboard", outcome="succeeded").is_recovery


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"action": "restart"}', b'{"outcome": "ok"}', b"\xff\xfe"],
)
def test_records_that_are_not_outcomes_are_ignored(raw: bytes) -> None:
    assert parse_action_record(raw) is None


def test_an_unreadable_alerting_record_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="outcome"):
        parse_action_record(b'{"action": "restart", "alert": true}')


def test_a_sink_url_given_by_reference_loads_with_references_kept(tmp_path: Path) -> None:
    # The restart action reads the rules file with ${NAME} kept (its profiles go to the
    # registry as written); a sink whose whole URL is a reference must not stop that read.
    from handlers.recording.prepare import raw_rules

    rules = tmp_path / "rules.toml"
    rules.write_text('[[alerts.sinks]]\nname = "ops"\nkind = "webhook"\nurl = "${OPS_URL}"\n')
    assert raw_rules(rules).recording.profiles == []
