"""The models of ``agora.actions``: the runtime's
:class:`~handlers.runtime.outcomes.ActionOutcome` (header
``record-type: outcome``) and :class:`ActionsReport` (``record-type: report``), the report
of whichever handler wrote it. Both share :class:`~handlers.reports.ActionRecordFields`.

Which report model reads a value is decided by its ``handler`` field: a handler with a
typed report -> that report (:class:`RestartReport`, :class:`CaptureFailedReport`,
:class:`AlertsReport`); any other handler (a plugin) -> the open
:class:`~handlers.reports.ActionReport`. The contracts document the topic from these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, get_args

from pydantic import ConfigDict, Discriminator, RootModel, Tag

from handlers.action_contract import Output
from handlers.notify.delivery_report import AlertsReport
from handlers.recording.restart_records import RestartReport
from handlers.reports import RECORD_TYPE_HEADER, REPORT_RECORD, ActionReport
from handlers.whiteboard.models import CaptureFailedReport

TYPED_REPORTS: Mapping[str, type[ActionReport]] = {
    get_args(model.model_fields["handler"].annotation)[0]: model
    for model in (RestartReport, CaptureFailedReport, AlertsReport)
}
"""Handler name -> its typed report."""

_OTHER_HANDLER = "other"


def _report_kind(value: Any) -> str:
    """The tag of the model that reads ``value`` (a JSON object or a model instance)."""
    handler = value.get("handler") if isinstance(value, dict) else getattr(value, "handler", None)
    return handler if isinstance(handler, str) and handler in TYPED_REPORTS else _OTHER_HANDLER


def _typed_by_handler(schema: dict[str, Any]) -> None:
    """Every report fits the open :class:`~handlers.reports.ActionReport`; one whose
    ``handler`` has a typed report fits that too. Written as ``if``/``then`` per handler
    (like the NCS details): the open report also matches typed handlers' values, so a
    ``oneOf`` would match twice."""
    *typed, other = schema.pop("oneOf")  # ReportValue's order: TYPED_REPORTS, then the open
    assert len(typed) == len(TYPED_REPORTS), typed
    schema["allOf"] = [other, *(
        {"if": {"properties": {"handler": {"const": handler}}, "required": ["handler"]},
         "then": ref}
        for handler, ref in zip(TYPED_REPORTS, typed, strict=True)
    )]


ReportValue = Annotated[
    Annotated[RestartReport, Tag("restart")]
    | Annotated[CaptureFailedReport, Tag("whiteboard")]
    | Annotated[AlertsReport, Tag("notify")]
    | Annotated[ActionReport, Tag(_OTHER_HANDLER)],
    Discriminator(_report_kind),
]


class ActionsReport(RootModel[ReportValue]):
    """Any handler's report on ``agora.actions`` (header ``record-type: report``)."""

    model_config = ConfigDict(title="agora.actions report",
                              json_schema_extra=_typed_by_handler)


def report_output(
    topic: str, key: str | None, value: Mapping[str, Any], **headers: str
) -> Output:
    """The ``agora.actions`` record of a report given as a mapping (an action without a
    typed report model, e.g. a plugin).

    The value is checked against :class:`ActionsReport` first (a ``ValidationError`` names
    the field): a plugin report fits the open :class:`~handlers.reports.ActionReport`, and a
    value naming a handler with a typed report must fit that report, so a writer cannot
    drift from the published schema, e.g. by giving ``at`` as text. The value is written as
    given (extra fields kept).
    """
    ActionsReport.model_validate(value)
    return Output.json(topic, key, value, **headers, **{RECORD_TYPE_HEADER: REPORT_RECORD})
