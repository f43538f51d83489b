"""Action reports on ``agora.actions``: the typed record every action writes about what one
of its operations did, and the one builder that turns it into an :class:`Output`.

Two record shapes share ``agora.actions``: the runtime's ``ActionOutcome`` (one per decision,
:mod:`handlers.runtime.outcomes`) and these reports. Both carry the ``record-type`` header
(``outcome`` or ``report``) so a consumer can pick a schema before parsing the value, and
both give ``at`` as Unix time in milliseconds (an integer), like every ``*-at`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from handlers.base import Output

RECORD_TYPE_HEADER = "record-type"
"""Header naming the shape of an ``agora.actions`` value."""

RecordType = Literal["outcome", "report"]
OUTCOME_RECORD: RecordType = "outcome"
REPORT_RECORD: RecordType = "report"


class ActionReport(BaseModel):
    """An action's own record on ``agora.actions`` (besides the runtime's ``ActionOutcome``):
    what one operation of one handler did. Handlers add fields of their own (kept as is).

    ``"alert": true`` asks the notify handler's alert rules to look at the record.
    """

    model_config = ConfigDict(extra="allow", frozen=True, title="agora.actions action report")

    schema_version: Literal["1"] = Field(description="Version of this record's schema.")
    handler: str = Field(description="Handler that wrote the record: restart, whiteboard, ...")
    action: str = Field(description="The operation: screenshot-list, alert, restart, ...")
    outcome: str = Field(description="What happened: failed, notified, restarted, gave_up, ...")
    cname: str | None = Field(default=None, description="Channel name (the record key).")
    sid: str | None = Field(default=None, description="Recording session id, when known.")
    notice_id: str | None = Field(
        default=None, alias="noticeId", description="noticeId of the triggering event."
    )
    event_type: int | None = Field(
        default=None, alias="eventType", description="eventType of the triggering event."
    )
    at: StrictInt = Field(description="Unix time in milliseconds when the report was made.")
    alert: bool = Field(default=False, description="A person should look at this record.")
    error: str | None = Field(default=None, description="What went wrong, secrets withheld.")


def report_output(
    topic: str, key: str | None, value: Mapping[str, Any], **headers: str
) -> Output:
    """The ``agora.actions`` record of an action report.

    The value is checked against :class:`ActionReport` first (a ``ValidationError`` names
    the field), so a writer cannot drift from the published schema, e.g. by giving ``at``
    as text. The value is written as given (extra fields kept).
    """
    ActionReport.model_validate(value)
    return Output.json(topic, key, value, **headers, **{RECORD_TYPE_HEADER: REPORT_RECORD})
