"""Incidents of one channel: when to open, when to resolve, and what that sends. Pure.

All alerting state of a cname lives in one state entry (:func:`state_key`), so a notice is
judged against everything known about its channel in one read and written back in one
write, atomically with the consumed offset:

.. code-block:: json

    {"recovered_ts": 1700000000123, "at": 1700000000456,
     "incidents": {"<incident key>": {"rule": "...", "kind": "event", "sid": "...",
                   "episode": "...", "opened_ts": 1700000000000, "severity": "error",
                   "summary": "...", "component": "...", "class": "...", "sinks": ["ops"]}}}

(``at`` is when ``run`` last wrote the entry; ``sinks`` where the trigger was delivered.)

Rules:

- A trigger whose incident is open is a duplicate: nothing is sent (one alert per
  incident, however many duplicate or redundant notices arrive).
- A channel-wide recovery (``recorder_started``/``web_recorder_started``, or a restart
  success) resolves every open incident of the cname opened before it; each resolve goes
  to the sinks that got the trigger. ``recovered_ts`` remembers the latest one, so a
  failure notice older than it (reordered, or a duplicate arriving after the resolve)
  opens nothing.
- A session recovery (``uploaded``/``backuped``: that session's files are safe) resolves
  only the incidents opened by events of that sid. It does not touch ``recovered_ts``
  nor incidents from action outcomes: the upload of a dead session is not the channel
  recording again, so "restart gave up" stays open.
- Times are Agora's ``sendts`` for events and the producer's ``at`` for action records;
  a missing time never blocks an alert or a resolve.
- A record that both matches a rule and looks like a recovery never resolves the
  incidents it matches itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.notify.alerts import Alert
from handlers.notify.rules import Trigger

STATE_PREFIX = "alerts/"


def state_key(cname: str) -> str:
    return STATE_PREFIX + cname


@dataclass(frozen=True, slots=True)
class Recovery:
    """The channel is recording (again) as of ``ts`` or, with ``sid``, that session's
    files are safe; ``origin`` names the record."""

    ts: int | None
    origin: str
    sid: str | None = None

    def covers(self, incident: Mapping[str, Any]) -> bool:
        if self.sid is None:
            return True
        return incident.get("kind") == "event" and incident.get("sid") == self.sid


@dataclass(frozen=True, slots=True)
class Plan:
    """The channel's next state (``None``: unchanged) and the transitions to send."""

    state: dict[str, Any] | None
    alerts: tuple[Alert, ...]


def _older(a: int | None, b: int | None) -> bool:
    """``a`` strictly before ``b``; unknown times count as older, so they never block."""
    return a is None or b is None or a < b


def plan(
    current: Mapping[str, Any] | None,
    *,
    cname: str,
    triggers: Sequence[Trigger],
    recovery: Recovery | None,
    episode: str,
    configured_sinks: Iterable[str],
) -> Plan:
    """Apply one record's triggers and recovery to the channel's alerting state.

    ``episode`` identifies the record (noticeId, or topic/partition/offset of an action
    record): a new incident's episode, so its transitions get their own webhook ids.
    New incidents are stored with ``sinks: []``; ``run`` fills in where they were delivered.
    """
    configured = set(configured_sinks)
    incidents: dict[str, dict[str, Any]] = {
        key: dict(value) for key, value in ((current or {}).get("incidents") or {}).items()
    }
    recovered_ts: int | None = (current or {}).get("recovered_ts")
    changed = False
    alerts: list[Alert] = []
    matched = {t.incident for t in triggers}

    if recovery is not None:
        for key, incident in list(incidents.items()):
            if key in matched or not recovery.covers(incident):
                continue
            if not _older(incident.get("opened_ts"), recovery.ts):
                continue
            del incidents[key]
            changed = True
            alerts.append(_resolve(key, incident, cname, recovery, configured))
        ts = recovery.ts
        # Only a channel-wide recovery makes older failures of any session stale news.
        if recovery.sid is None and ts is not None and (recovered_ts is None or ts > recovered_ts):
            recovered_ts = ts
            changed = True

    for trigger in triggers:
        if trigger.incident in incidents:
            continue  # duplicate of an open incident
        if trigger.occurred_ms is not None and not _older(recovered_ts, trigger.occurred_ms):
            continue  # the channel recovered after this failure: stale news
        incidents[trigger.incident] = {
            "rule": trigger.rule,
            "kind": trigger.kind,
            "sid": trigger.sid,
            "episode": episode,
            "opened_ts": trigger.occurred_ms,
            "severity": trigger.severity,
            "summary": trigger.summary,
            "component": trigger.component,
            "class": trigger.alert_class,
            "sinks": [],
        }
        changed = True
        alerts.append(
            Alert(
                transition="trigger",
                incident=trigger.incident,
                episode=episode,
                rule=trigger.rule,
                severity=trigger.severity,
                summary=trigger.summary,
                cname=cname,
                sid=trigger.sid,
                component=trigger.component,
                alert_class=trigger.alert_class,
                sinks=tuple(s for s in trigger.sinks if s in configured),
                occurred_ms=trigger.occurred_ms,
                details=trigger.details,
            )
        )

    if not changed:
        return Plan(state=None, alerts=())
    return Plan(state={"recovered_ts": recovered_ts, "incidents": incidents}, alerts=tuple(alerts))


def _resolve(
    key: str,
    incident: Mapping[str, Any],
    cname: str,
    recovery: Recovery,
    configured: set[str],
) -> Alert:
    return Alert(
        transition="resolve",
        incident=key,
        episode=str(incident.get("episode", "")),
        rule=str(incident.get("rule", "")),
        severity=incident.get("severity", "error"),
        summary=str(incident.get("summary", key)),
        cname=cname,
        sid=incident.get("sid"),
        component=str(incident.get("component", "cloud-recording")),
        alert_class=str(incident.get("class", "")),
        # Only where the trigger was delivered: a resolve nobody saw open is noise.
        sinks=tuple(s for s in incident.get("sinks", ()) if s in configured),
        occurred_ms=recovery.ts,
        details={"resolvedBy": recovery.origin},
    )


def record_deliveries(
    state: Mapping[str, Any], delivered: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """``state`` with each triggered incident's ``sinks`` set to where it was delivered."""
    incidents = {k: dict(v) for k, v in (state.get("incidents") or {}).items()}
    for key, sinks in delivered.items():
        if key in incidents:
            incidents[key]["sinks"] = sorted(sinks)
    return {**state, "incidents": incidents}
