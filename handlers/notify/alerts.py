"""What an alert sink is asked to deliver: one transition (trigger or resolve) of one
incident episode, already rendered to plain, secret-free data.

Identifiers are deterministic so that every retry of the same transition is recognisable
by the receiver: the Standard Webhooks ``webhook-id`` and the PagerDuty ``dedup_key``
derive from the incident key and the episode, never from the time of sending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Transition = Literal["trigger", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]

# PagerDuty refuses dedup keys longer than 255 characters.
_MAX_DEDUP_KEY = 255


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def dedup_key(incident: str) -> str:
    """The incident's PagerDuty ``dedup_key``: readable when it fits, hashed otherwise.

    The same for every episode: PagerDuty opens a new incident for a trigger whose key's
    previous incident is resolved, which is exactly an episode.
    """
    if len(incident) <= _MAX_DEDUP_KEY:
        return incident
    return "agora-events:" + _digest(incident)


@dataclass(frozen=True, slots=True)
class Alert:
    """One transition of one incident episode, ready to render for any sink.

    ``incident`` is the stable incident key (rule, cname and sid, or rule and cname for
    action outcomes); ``episode`` identifies one open..resolve cycle of it (the id of the
    record that opened it). ``details`` must be JSON-serialisable and free of secrets.
    """

    transition: Transition
    incident: str
    episode: str
    rule: str
    severity: Severity
    summary: str
    cname: str
    sid: str | None
    component: str
    alert_class: str
    sinks: tuple[str, ...]
    occurred_ms: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.incident)

    @property
    def message_id(self) -> str:
        """Standard Webhooks ``webhook-id``: the same for every attempt of this transition."""
        return "alert_" + _digest(self.incident, self.episode, self.transition)[:32]

    def delivery_id(self, sink: str) -> str:
        """Identifies this transition's delivery to one sink (for the in-process ledger)."""
        return _digest(self.incident, self.episode, self.transition, sink)

    def describe(self) -> dict[str, Any]:
        """The sink-independent description of the alert (webhook ``data``, outcome records)."""
        return {
            "status": "triggered" if self.transition == "trigger" else "resolved",
            "incident": self.incident,
            "dedupKey": self.dedup_key,
            "episode": self.episode,
            "rule": self.rule,
            "severity": self.severity,
            "summary": self.summary,
            "cname": self.cname,
            "sid": self.sid,
            "component": self.component,
            "class": self.alert_class,
            "occurredMs": self.occurred_ms,
            "details": dict(self.details),
        }
