"""Reading ``agora.actions`` records as alert signals.

Two producers write that topic with slightly different shapes: the runtime's
``ActionOutcome`` (``action`` = handler name, ``at`` = Unix ms) and actions' own outcome
records (``handler`` = handler name, ``action`` = the operation, ``at`` = ISO-8601,
``"alert": true`` when a person should look). :class:`ActionRecord` accepts both and
keeps unknown fields, so new producers need no change here.

A record "recovers" its channel when it says ``"recovered": true`` or when it is a restart
success (handler ``restart``, outcome ``restarted``/``succeeded``/``recovered``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from handlers.action_contract import InvalidEvent
from handlers.secret_names import carries_secrets

NOTIFY = "notify"

_RECOVERY_OUTCOMES = frozenset({"restarted", "succeeded", "recovered"})
_SEPARATORS = re.compile(r"[\s._\-/]+")


def normalise_name(name: str) -> str:
    """``"restart.gave_up"`` -> ``"restart gave up"``: how outcome names are compared."""
    return " ".join(_SEPARATORS.split(name.strip().lower())).strip()


class ActionRecord(BaseModel):
    """A lenient view of one ``agora.actions`` record (extra fields are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    action: str
    outcome: str
    handler: str | None = None
    cname: str | None = None
    sid: str | None = None
    notice_id: str | None = Field(default=None, alias="noticeId")
    event_type: int | None = Field(default=None, alias="eventType")
    at: int | None = Field(default=None, description="Unix ms; ISO-8601 strings are converted.")
    alert: bool = False
    recovered: bool = False
    error: str | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _at_ms(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return int(datetime.fromisoformat(value).timestamp() * 1000)
            except ValueError:
                return None  # an unreadable time only loses ordering, not the alert
        return value

    @property
    def handler_name(self) -> str:
        """The handler that produced the record (``handler`` when present, else ``action``)."""
        return self.handler or self.action

    def names(self) -> frozenset[str]:
        """Normalised names a rule's ``outcomes`` entry may use for this record."""
        outcome = normalise_name(self.outcome)
        return frozenset(
            {
                outcome,
                normalise_name(f"{self.handler_name} {self.outcome}"),
                normalise_name(f"{self.action} {self.outcome}"),
            }
        )

    @property
    def is_recovery(self) -> bool:
        if self.recovered:
            return True
        return (
            normalise_name(self.handler_name) == "restart"
            and normalise_name(self.outcome) in _RECOVERY_OUTCOMES
        )

    def alert_details(self) -> dict[str, Any]:
        """Scalar fields for an alert's details, minus anything named like a secret."""
        dumped = self.model_dump(by_alias=True, exclude_none=True)
        return {
            name: value
            for name, value in dumped.items()
            if isinstance(value, str | int | float | bool) and not carries_secrets(name)
        }


def parse_action_record(raw: bytes) -> ActionRecord | None:
    """The record as an :class:`ActionRecord`, or ``None`` when it is not an outcome at all.

    Raises :class:`InvalidEvent` only for a record that asks for an alert (``"alert":
    true``) but cannot be read: dropping that one silently would hide an alert.
    """
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    try:
        return ActionRecord.model_validate(value)
    except ValidationError as exc:
        if value.get("alert") is True:
            fields = ", ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
            raise InvalidEvent(f"alerting action record does not fit: {fields}") from None
        return None
