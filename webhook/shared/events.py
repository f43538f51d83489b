"""Agora NCS callbacks as pydantic models: the envelope, the common payload, and one
``details`` model per documented Cloud Recording event type (``agora-facts`` 1.3-1.8).

What makes a body a valid envelope (anything else is quarantined by the webhook):
``noticeId`` (string; a number is accepted as its decimal text), ``productId``, ``eventType``
and ``notifyMs`` (integers) and ``payload`` (an object; the documented misspelling
``playload`` is accepted too) whose ``details``, when present, is an object. Every payload
field is optional at this level: ``cname``, ``sid`` and ``uid`` are ``None`` when absent
(other NCS products use other keys), so an unusual but genuine callback still reaches the
events topic. The documented per-event fields are checked only when a consumer asks for the
typed details (:func:`parse_details`), which raises :class:`EventError` naming the field.

Every model keeps unknown keys (``extra="allow"``): Agora adds keys to ``details`` over time
and promises not to change the type of existing ones. Models are frozen.

The details models (:mod:`webhook.shared.event_details`), the documented codes
(:mod:`webhook.shared.event_codes`) and the event-type catalog
(:mod:`webhook.shared.event_types`) live in their own modules; this one re-exports them, so
``webhook.shared.events`` stays the one import for every consumer.

No Flask here: handlers import this module.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from webhook.shared.event_codes import (
    BENIGN_LEAVE_BITS,
    ErrorLevel,
    ErrorModule,
    LeaveCode,
    ServiceType,
    WebStopCode,
)
from webhook.shared.event_details import (
    AliVodInfo,
    AudioStreamStateChangedDetails,
    BackupedDetails,
    CloudRecordingErrorDetails,
    CloudRecordingWarningDetails,
    Details,
    DownloadFailedDetails,
    FileInfosDetails,
    Int,
    NumStr,
    PostponeTranscodeFinalResultDetails,
    RecorderLeaveDetails,
    RecorderSliceStartDetails,
    RecorderSnapshotFileDetails,
    RecorderStartedDetails,
    RtmpPublishStatusDetails,
    SessionExitDetails,
    SessionFailoverDetails,
    StatusUpdateDetails,
    StreamStateChangedDetails,
    TranscodedUid,
    TranscoderCompletedDetails,
    TranscoderStartedDetails,
    UnknownDetails,
    UploadedDetails,
    UploadedFile,
    UploaderStartedDetails,
    UploadingProgressDetails,
    VideoStreamStateChangedDetails,
    VodStartedDetails,
    VodTriggeredDetails,
    WebFile,
    WebRecorderCapabilityLimitDetails,
    WebRecorderReloadDetails,
    WebRecorderStartedDetails,
    WebRecorderStoppedDetails,
)
from webhook.shared.event_types import (
    CLOUD_RECORDING_PRODUCT_ID,
    EVENT_TYPES,
    EVENT_TYPES_BY_NAME,
    EventType,
)

__all__ = [
    "BENIGN_LEAVE_BITS",
    "CLOUD_RECORDING_PRODUCT_ID",
    "EVENT_TYPES",
    "EVENT_TYPES_BY_NAME",
    "AliVodInfo",
    "AudioStreamStateChangedDetails",
    "BackupedDetails",
    "CloudRecordingErrorDetails",
    "CloudRecordingWarningDetails",
    "Details",
    "DownloadFailedDetails",
    "ErrorLevel",
    "ErrorModule",
    "EventError",
    "EventType",
    "FileInfosDetails",
    "Int",
    "LeaveCode",
    "Notification",
    "NumStr",
    "Payload",
    "PostponeTranscodeFinalResultDetails",
    "RecorderLeaveDetails",
    "RecorderSliceStartDetails",
    "RecorderSnapshotFileDetails",
    "RecorderStartedDetails",
    "RtmpPublishStatusDetails",
    "ServiceType",
    "SessionExitDetails",
    "SessionFailoverDetails",
    "StatusUpdateDetails",
    "StreamStateChangedDetails",
    "TranscodedUid",
    "TranscoderCompletedDetails",
    "TranscoderStartedDetails",
    "UnknownDetails",
    "UploadedDetails",
    "UploadedFile",
    "UploaderStartedDetails",
    "UploadingProgressDetails",
    "VideoStreamStateChangedDetails",
    "VodStartedDetails",
    "VodTriggeredDetails",
    "WebFile",
    "WebRecorderCapabilityLimitDetails",
    "WebRecorderReloadDetails",
    "WebRecorderStartedDetails",
    "WebRecorderStoppedDetails",
    "WebStopCode",
    "parse_details",
    "parse_details_as",
    "parse_notification",
]

_MAX_REPORTED_PROBLEMS = 5


class EventError(ValueError):
    """A body or its details do not fit the model. ``field`` is the first offending JSON path
    (``payload.details.exitStatus``), ``problems`` every reported problem, readable."""

    def __init__(
        self, message: str, field: str | None = None, problems: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problems = problems


# --- envelope ------------------------------------------------------------------------------



class Payload(BaseModel):
    """The common Cloud Recording payload; typed ``details`` via :func:`parse_details`."""

    model_config = ConfigDict(
        extra="allow", frozen=True, validate_by_name=True, validate_by_alias=True
    )

    cname: str | None = None
    uid: NumStr | None = None
    sid: str | None = None
    sequence: Int | None = None
    send_ts: Int | None = Field(default=None, alias="sendts")
    service_type: Int | None = Field(default=None, alias="serviceType")
    service_scene: str | None = Field(default=None, alias="serviceScene")
    details: dict[str, Any] = Field(default_factory=dict)


class Notification(BaseModel):
    """One NCS callback body (the envelope). See the module docstring for what is required."""

    model_config = ConfigDict(
        extra="allow", frozen=True, validate_by_name=True, validate_by_alias=True
    )

    notice_id: NumStr = Field(alias="noticeId", min_length=1)
    product_id: Int = Field(alias="productId")
    event_type: Int = Field(alias="eventType")
    notify_ms: Int = Field(alias="notifyMs")
    payload: Payload = Field(
        validation_alias=AliasChoices("payload", "playload"), serialization_alias="payload"
    )
    event_ms: Int | None = Field(default=None, alias="eventMs")

    @property
    def event_info(self) -> EventType | None:
        """The registry entry, for documented Cloud Recording event types only."""
        if self.product_id != CLOUD_RECORDING_PRODUCT_ID:
            return None
        return EVENT_TYPES.get(self.event_type)

    @property
    def msg_name(self) -> str | None:
        """``details.msgName`` as sent, else the documented name for the event type."""
        sent = self.payload.details.get("msgName")
        if isinstance(sent, str):
            return sent
        info = self.event_info
        return info.msg_name if info else None

    def details_model(self) -> Details:
        """The typed details; see :func:`parse_details`."""
        return parse_details(self)


DetailsT = TypeVar("DetailsT", bound=Details)


def parse_details(notification: Notification) -> Details:
    """Validate ``payload.details`` with the model for the event type.

    Documented Cloud Recording types get their model; anything else :class:`UnknownDetails`.
    Raises :class:`EventError` naming the field (``payload.details.<key>``) that does not fit.
    """
    info = notification.event_info
    model: type[Details] = info.model if info else UnknownDetails
    return _validate_details(notification, model)


def parse_details_as(notification: Notification, model: type[DetailsT]) -> DetailsT:
    """Like :func:`parse_details`, typed for a caller that routed on the event type already
    (``UploadedDetails`` also fits 32 ``backuped``); raises :class:`EventError` when the event
    type's model is not *model* or a subclass of it."""
    info = notification.event_info
    expected: type[Details] = info.model if info else UnknownDetails
    if not issubclass(expected, model):
        raise EventError(
            f"eventType {notification.event_type} carries {expected.__name__}, "
            f"not {model.__name__}",
            field="eventType",
        )
    details = _validate_details(notification, expected)
    assert isinstance(details, model)  # guaranteed by the issubclass check above
    return details


def _validate_details(notification: Notification, model: type[DetailsT]) -> DetailsT:
    try:
        return model.model_validate(notification.payload.details)
    except ValidationError as exc:
        name = notification.msg_name or "undocumented"
        raise _event_error(
            exc, f"details of eventType {notification.event_type} ({name})", ("payload", "details")
        ) from None


def parse_notification(raw: bytes) -> Notification:
    """Parse a callback body; raises :class:`EventError` saying which field is wrong and what
    was expected (or that the body is not JSON). Never includes the body in the message."""
    try:
        return Notification.model_validate_json(raw)
    except ValidationError as exc:
        raise _event_error(exc, "invalid notification", ()) from None


# --- error formatting ----------------------------------------------------------------------



def _event_error(exc: ValidationError, what: str, prefix: tuple[str, ...]) -> EventError:
    problems: list[str] = []
    fields: list[str] = []
    for error in exc.errors(include_url=False):
        field = _path(prefix + tuple(error["loc"]))
        fields.append(field)
        if error["type"] == "json_invalid":
            problems.append(f"body is not valid JSON ({error['ctx']['error']})")
        elif error["type"] == "missing":
            problems.append(f"{field}: required field is missing")
        else:
            got = _json_type(error["input"])
            problems.append(f"{field}: {error['msg']} (got {got})")
    shown = problems[:_MAX_REPORTED_PROBLEMS]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    first = fields[0] if fields else None
    return EventError(f"{what}: " + "; ".join(shown), first, tuple(problems))


def _path(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "body"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
