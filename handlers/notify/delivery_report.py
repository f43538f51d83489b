"""The notify handler's report on ``agora.actions``: which alerts went to which sinks.

It never carries ``"alert": true``, and the notify handler ignores reports of handler
``notify``, so an alert about alerting cannot loop.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from handlers.notify.alerts import Alert, Severity, Transition
from handlers.reports import TYPED_REPORT_CONFIG, ActionReport


class AlertDelivery(BaseModel):
    """One alert transition and where it was delivered."""

    model_config = TYPED_REPORT_CONFIG | ConfigDict(title="alert delivery")

    incident: str = Field(description="Incident key (rule, cname and sid or rule and cname).")
    dedup_key: str = Field(alias="dedupKey", description="PagerDuty dedup_key of the incident.")
    transition: Transition = Field(description="trigger or resolve.")
    rule: str = Field(description="Alert rule that matched.")
    severity: Severity = Field(description="The rule's severity.")
    delivered: list[str] = Field(description="Sinks that accepted the alert.")
    failed: list[str] = Field(description="Sinks that refused it for good.")

    @classmethod
    def of(cls, alert: Alert, delivered: list[str], failed: list[str]) -> AlertDelivery:
        return cls(incident=alert.incident, dedupKey=alert.dedup_key,
                   transition=alert.transition, rule=alert.rule, severity=alert.severity,
                   delivered=delivered, failed=failed)


class AlertsReport(ActionReport):
    """What one consumed record's alerts did (written only when it sent alerts)."""

    model_config = TYPED_REPORT_CONFIG | ConfigDict(title="agora.actions notify report")

    handler: Literal["notify"] = Field(description="Always notify.")
    action: Literal["alert"] = Field(description="Always alert.")
    outcome: Literal["notified", "failed"] = Field(
        description="failed: at least one sink refused an alert for good."
    )
    source: str | None = Field(
        default=None, description="What triggered the alerts: <topic>/<partition>/<offset>."
    )
    alerts: list[AlertDelivery] = Field(
        default_factory=list, description="One entry per alert transition."
    )
