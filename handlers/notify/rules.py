"""Alert rule matching and incident identity. Pure: no I/O, no clock.

A rule (``[[alerts.rules]]``) matches

- an NCS event when its ``eventType`` is in ``events`` and every ``where`` entry equals the
  ``details`` field of that name (a missing field never matches; ``true`` does not equal
  ``1``). The incident is (rule, cname, sid): duplicates and redundant notices of the same
  failure of the same session are one incident.
- an ``agora.actions`` record when one of ``outcomes`` names it (compared after
  normalising case and separators: ``"restart gave up"`` names handler ``restart`` with
  outcome ``gave_up``, ``"whiteboard failed"`` names the whiteboard's failures), or is
  ``"*"`` and the record carries ``"alert": true``; ``where`` then applies to the record's
  own fields. The incident is (rule, cname).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.config import AlertRule, AlertRules
from handlers.notify.action_signals import ActionRecord, normalise_name
from handlers.notify.alerts import Severity

ANY_ALERT = "*"
_SUMMARY_DETAILS_MAX = 600


def incident_key(rule: str, cname: str, sid: str | None) -> str:
    """Stable incident key; JSON keeps it unambiguous whatever the names contain."""
    return json.dumps([rule, cname, sid], separators=(",", ":"), ensure_ascii=False)


def where_matches(where: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Every predicate equals the field of that name; booleans only equal booleans."""
    for name, expected in where.items():
        if name not in fields:
            return False
        actual = fields[name]
        if isinstance(actual, bool) != isinstance(expected, bool) or actual != expected:
            return False
    return True


def rules_for_event(
    rules: AlertRules, event_type: int, details: Mapping[str, Any]
) -> list[AlertRule]:
    """Rules that fire for an NCS event, in file order."""
    return [r for r in rules.rules if event_type in r.events and where_matches(r.where, details)]


def rules_for_outcome(rules: AlertRules, record: ActionRecord) -> list[AlertRule]:
    """Rules that fire for an ``agora.actions`` record, in file order."""
    names = record.names()
    fields = record.model_dump(by_alias=True)
    matched: list[AlertRule] = []
    for rule in rules.rules:
        wanted = {normalise_name(o) for o in rule.outcomes if o != ANY_ALERT}
        by_name = bool(wanted & names)
        by_flag = record.alert and ANY_ALERT in rule.outcomes
        if (by_name or by_flag) and where_matches(rule.where, fields):
            matched.append(rule)
    return matched


@dataclass(frozen=True, slots=True)
class Trigger:
    """A matched rule for one record: the incident it opens if none is open."""

    rule: str
    kind: Literal["event", "outcome"]
    severity: Severity
    sinks: tuple[str, ...]
    incident: str
    sid: str | None
    summary: str
    component: str
    alert_class: str
    occurred_ms: int | None
    details: Mapping[str, Any] = field(default_factory=dict)


def _scalars(fields: Mapping[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    return {
        k: v
        for k, v in fields.items()
        if k not in skip and isinstance(v, str | int | float | bool)
    }


def _brief(values: Mapping[str, Any]) -> str:
    text = " ".join(f"{k}={v}" for k, v in values.items())
    return text if len(text) <= _SUMMARY_DETAILS_MAX else text[: _SUMMARY_DETAILS_MAX - 3] + "..."


def event_triggers(
    rules: AlertRules,
    *,
    cname: str,
    sid: str | None,
    uid: str | None,
    event_type: int,
    notice_id: str,
    details: Mapping[str, Any],
    sendts: int | None,
) -> list[Trigger]:
    """One trigger per rule that fires for this NCS event."""
    msg_name = str(details.get("msgName") or f"event {event_type}")
    facts = _scalars(details, frozenset({"msgName"}))
    triggers = []
    for rule in rules_for_event(rules, event_type, details):
        where = f" (sid {sid})" if sid else ""
        summary = f"{rule.name}: {msg_name} on cname {cname}{where}"
        if facts:
            summary += f": {_brief(facts)}"
        triggers.append(
            Trigger(
                rule=rule.name,
                kind="event",
                severity=rule.severity,
                sinks=tuple(rule.sinks),
                incident=incident_key(rule.name, cname, sid),
                sid=sid,
                summary=summary,
                component="cloud-recording",
                alert_class=msg_name,
                occurred_ms=sendts,
                details={
                    "eventType": event_type,
                    "msgName": msg_name,
                    "noticeId": notice_id,
                    "uid": uid,
                    "details": facts,
                },
            )
        )
    return triggers


def outcome_triggers(rules: AlertRules, record: ActionRecord, cname: str) -> list[Trigger]:
    """One trigger per rule that fires for this action record (incident per rule+cname)."""
    facts = record.alert_details()
    triggers = []
    for rule in rules_for_outcome(rules, record):
        where = f" (sid {record.sid})" if record.sid else ""
        summary = f"{rule.name}: {record.handler_name} {record.outcome} on cname {cname}{where}"
        if record.error:
            summary += f": {record.error}"
        triggers.append(
            Trigger(
                rule=rule.name,
                kind="outcome",
                severity=rule.severity,
                sinks=tuple(rule.sinks),
                incident=incident_key(rule.name, cname, None),
                sid=record.sid,
                summary=summary,
                component=record.handler_name,
                alert_class=normalise_name(f"{record.handler_name} {record.outcome}"),
                occurred_ms=record.at,
                details=facts,
            )
        )
    return triggers
