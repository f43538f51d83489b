"""The envelope of every ``agora.actions`` value, and the action report built on it.

Two kinds of record share ``agora.actions``, both built on :class:`ActionRecordFields`
(``action``, ``outcome``, ``cname``, ``sid``, ``noticeId``, ``eventType``, ``at`` in Unix
milliseconds, ``error``):

- the runtime's ``ActionOutcome``, one per decision (:mod:`handlers.runtime.outcomes`);
- an action's own report, :class:`ActionReport` plus the typed fields of the handler that
  wrote it (``RestartReport``, ``CaptureFailedReport``, ``AlertsReport``; their union, the
  model of every report, is :mod:`handlers.actions_topic`).

Both carry the ``record-type`` header (``outcome`` or ``report``) so a consumer can pick a
schema before parsing the value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from handlers.action_contract import Output

RECORD_TYPE_HEADER = "record-type"
"""Header naming the shape of an ``agora.actions`` value."""

RecordType = Literal["outcome", "report"]
OUTCOME_RECORD: RecordType = "outcome"
REPORT_RECORD: RecordType = "report"

TYPED_REPORT_CONFIG = ConfigDict(
    extra="forbid", frozen=True, populate_by_name=True,
    # Writers may not add fields the model does not name; readers must still accept fields
    # added in later releases, so the published schema stays open.
    json_schema_extra={"additionalProperties": True},
)
"""The configuration of a handler's typed report (a subclass of :class:`ActionReport`)."""


class ActionRecordFields(BaseModel):
    """What every ``agora.actions`` value says, whoever wrote it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    action: str = Field(description="What acted: the handler (runtime outcomes) or the "
                        "operation (reports).")
    outcome: str = Field(description="What happened: ok, failed, restarted, notified, ...")
    cname: str | None = Field(default=None, description="Channel name (the record key).")
    sid: str | None = Field(default=None, description="Recording session id, when known.")
    notice_id: str | None = Field(
        default=None, alias="noticeId", description="noticeId of the triggering event."
    )
    event_type: int | None = Field(
        default=None, alias="eventType", description="eventType of the triggering event."
    )
    at: StrictInt = Field(description="Unix time in milliseconds when it was recorded.")
    error: str | None = Field(default=None, description="What went wrong, secrets withheld.")


class ActionReport(ActionRecordFields):
    """An action's own record of one operation (besides the runtime's ``ActionOutcome``).

    The handlers of this project write a typed subclass (fields of their own, nothing
    else); an action without one (a plugin) writes this model, extra fields kept as given,
    through :func:`handlers.actions_topic.report_output`. ``"alert": true`` asks the
    notify handler's alert rules to look at the record.

    The value holds the fields the writer set (:meth:`output`), so a field a report does
    not know is left out rather than written as null.
    """

    model_config = ConfigDict(
        extra="allow", frozen=True, populate_by_name=True, title="agora.actions action report"
    )

    schema_version: Literal["1"] = Field(description="Version of this record's schema.")
    handler: str = Field(description="Handler that wrote the record: restart, whiteboard, ...")
    action: str = Field(description="The operation: screenshot-list, alert, restart, ...")
    alert: bool = Field(default=False, description="A person should look at this record.")

    def output(self, topic: str, **headers: str) -> Output:
        """The ``agora.actions`` record: key cname, the ``record-type: report`` header."""
        value = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return Output.json(topic, self.cname, value,
                           **headers, **{RECORD_TYPE_HEADER: REPORT_RECORD})
