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

No Flask here: handlers import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from webhook.filenames import RecordingFile, parse_file_name

CLOUD_RECORDING_PRODUCT_ID = 3
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


# --- value coercions -----------------------------------------------------------------------


def _number_to_str(value: object) -> object:
    # Agora documents uids as strings but some events (12 newUid) send numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _no_bool(value: object) -> object:
    # JSON true/false are not numbers, even though Python's bool is an int.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# Agora sends some ids as numbers (newUid); the schema says so, and we keep them as text.
NumStr = Annotated[str, BeforeValidator(_number_to_str, json_schema_input_type=str | int)]
Int = Annotated[int, BeforeValidator(_no_bool)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


def _file_name_field() -> Any:
    return Field(
        validation_alias=AliasChoices("fileName", "filename"), serialization_alias="fileName"
    )


# --- enums for documented codes ----------------------------------------------------------


class ServiceType(IntEnum):
    """``payload.serviceType``: which part of the recording service sent the event."""

    CLOUD_RECORDING = 0
    RECORDER = 1
    UPLOADER = 2
    EXTENSION = 4
    WEB_RECORDER = 6
    TRANSCODER = 7
    DOWNLOADER = 8


class ErrorModule(IntEnum):
    """``module`` of events 1 and 2."""

    RECORDER = 0
    UPLOADER = 1
    CLOUD_RECORDING = 2
    WEB_RECORDER = 6


class ErrorLevel(IntEnum):
    """``errorLevel`` of event 1; ``FATAL`` may end the recording (confirm with ``query``)."""

    DEBUG = 1
    MINOR = 2
    MEDIUM = 3
    MAJOR = 4
    FATAL = 5


class LeaveCode(IntFlag):
    """``leaveCode`` of event 41, a bit mask; 0 alone means initialisation failed."""

    INIT = 0
    SIG = 2
    NO_USERS = 4
    TIMER_CATCH = 8
    CLIENT_LEAVE = 16

    def reasons(self) -> tuple[LeaveCode, ...]:
        """The documented reasons set in this code, lowest bit first (``INIT`` for 0)."""
        if self.value == 0:
            return (LeaveCode.INIT,)
        return tuple(flag for flag in _LEAVE_BITS if self.value & flag.value)

    @property
    def unknown_bits(self) -> int:
        """Bits Agora has not documented (kept, never silently dropped)."""
        return self.value & ~_KNOWN_LEAVE_BITS


_LEAVE_BITS = (LeaveCode.SIG, LeaveCode.NO_USERS, LeaveCode.TIMER_CATCH, LeaveCode.CLIENT_LEAVE)
_KNOWN_LEAVE_BITS = sum(flag.value for flag in _LEAVE_BITS)
# Expected ends: our own stop (SIGINT), idle past maxIdleTime, the timer bit Agora says to ignore.
BENIGN_LEAVE_BITS = LeaveCode.SIG | LeaveCode.NO_USERS | LeaveCode.TIMER_CATCH


class WebStopCode(IntEnum):
    """``code`` of event 71 (web page recording stopped)."""

    OK = 0
    MAX_RECORDING_HOUR = 1
    CAPABILITY_LIMIT = 2
    START_ENGINE_FAILED = 3
    PAGE_LOAD_TIMEOUT = 4
    ACCESS_URL_FAILED = 5
    RECORDER_ERROR = 6


# --- details models ----------------------------------------------------------------------


class Details(_Model):
    """Base of every ``details`` model: ``msgName`` is always sent, but not relied upon."""

    msg_name: str | None = None


class UnknownDetails(Details):
    """Details of an undocumented event type (or another product): every key kept as is."""


class CloudRecordingErrorDetails(Details):
    """1 ``cloud_recording_error``."""

    module: Int
    error_level: Int
    error_code: Int
    stat: Int | None = None
    error_msg: str | None = None

    @property
    def is_fatal(self) -> bool:
        return self.error_level == ErrorLevel.FATAL


class CloudRecordingWarningDetails(Details):
    """2 ``cloud_recording_warning``."""

    module: Int
    warn_code: Int


class StatusUpdateDetails(Details):
    """3 ``cloud_recording_status_update``. ``recordingMode`` values differ between the
    English and Chinese docs: do not rely on them."""

    status: Int
    recording_mode: Int | None = None
    file_list: str | None = None


class FileInfosDetails(Details):
    """4 ``cloud_recording_file_infos``: the first M3U8 was uploaded."""

    file_list: str


class SessionExitDetails(Details):
    """11 ``session_exit``: ``exitStatus`` 0 normal, 1 abnormal."""

    exit_status: Int

    @property
    def is_abnormal(self) -> bool:
        return self.exit_status != 0


class SessionFailoverDetails(Details):
    """12 ``session_failover``: Agora moves the task to a new server under ``newUid``."""

    new_uid: NumStr


class UploaderStartedDetails(Details):
    """30 ``uploader_started``."""

    status: Int


class UploadedFile(_Model):
    """One entry of the ``fileList`` of events 31 and 32."""

    file_name: str = _file_name_field()
    track_type: str | None = None
    uid: NumStr | None = None
    mixed_all_user: bool | None = None
    is_playable: bool | None = None
    slice_start_time: Int | None = None

    def recording_file(self) -> RecordingFile:
        """The parsed file name; raises ``FileNameError``."""
        return parse_file_name(self.file_name)


class UploadedDetails(Details):
    """31 ``uploaded``: every file is in your storage. Web recording sends no ``fileList``."""

    status: Int
    file_list: list[UploadedFile] = Field(default_factory=list)


class BackupedDetails(UploadedDetails):
    """32 ``backuped``: uploaded, at least one file via Agora Cloud Backup."""


class UploadingProgressDetails(Details):
    """33 ``uploading_progress``: ``progress`` is uploaded/recorded x 10000."""

    progress: Int = Field(ge=0)

    @property
    def fraction(self) -> float:
        return min(self.progress, 10000) / 10000


class RecorderStartedDetails(Details):
    """40 ``recorder_started``."""

    status: Int


class RecorderLeaveDetails(Details):
    """41 ``recorder_leave``: ``leaveCode`` is a bit mask, see :class:`LeaveCode`."""

    leave_code: Int = Field(ge=0)

    @property
    def flags(self) -> LeaveCode:
        return LeaveCode(self.leave_code)

    def reasons(self) -> tuple[LeaveCode, ...]:
        return self.flags.reasons()

    @property
    def is_benign(self) -> bool:
        """True when the bot left for an expected reason only (stop, idle, timer)."""
        return self.leave_code != 0 and not self.leave_code & ~BENIGN_LEAVE_BITS.value


class RecorderSliceStartDetails(Details):
    """42 ``recorder_slice_start``: first slice, or resumption after an interruption."""

    start_utc_ms: Int
    discontinue_utc_ms: Int | None = None
    mixed_all_user: bool | None = None
    stream_uid: NumStr | None = None
    track_type: str | None = None

    @property
    def is_resumption(self) -> bool:
        """The recording had a gap that ended at ``discontinueUtcMs``."""
        return self.discontinue_utc_ms is not None and self.discontinue_utc_ms != self.start_utc_ms


class StreamStateChangedDetails(Details):
    """43/44 stream state: ``state`` 0 receiving, 1 not receiving; note ``UtcMs``."""

    stream_uid: NumStr
    state: Int
    utc_ms: Int = Field(
        validation_alias=AliasChoices("UtcMs", "utcMs"), serialization_alias="UtcMs"
    )

    @property
    def receiving(self) -> bool:
        return self.state == 0


class AudioStreamStateChangedDetails(StreamStateChangedDetails):
    """43 ``recorder_audio_stream_state_changed``."""


class VideoStreamStateChangedDetails(StreamStateChangedDetails):
    """44 ``recorder_video_stream_state_changed``."""


class RecorderSnapshotFileDetails(Details):
    """45 ``recorder_snapshot_file``: ``fileName`` is ``<prefix path>/<jpg name>``."""

    file_name: str = _file_name_field()

    def recording_file(self) -> RecordingFile:
        return parse_file_name(self.file_name)


class AliVodInfo(_Model):
    video_id: str | None = None


class VodStartedDetails(Details):
    """60 ``vod_started``."""

    ali_vod_info: AliVodInfo


class VodTriggeredDetails(Details):
    """61 ``vod_triggered``."""


class WebRecorderStartedDetails(Details):
    """70 ``web_recorder_started``."""

    recorder_start_time: Int


class WebFile(_Model):
    """A ``fileList`` entry of event 71 (``filename`` in the docs' example, ``fileName`` in
    its table) and of events 81 and 1001."""

    file_name: str = _file_name_field()
    slice_start_time: Int | None = None


class WebRecorderStoppedDetails(Details):
    """71 ``web_recorder_stopped``: codes 0 (user stop) and 1 (max hour) are normal ends."""

    code: Int
    message: str | None = None
    details: str | None = None
    file_list: list[WebFile] = Field(default_factory=list)

    @property
    def stop_code(self) -> WebStopCode | None:
        try:
            return WebStopCode(self.code)
        except ValueError:
            return None

    @property
    def is_failure(self) -> bool:
        return self.code not in (WebStopCode.OK, WebStopCode.MAX_RECORDING_HOUR)


class WebRecorderCapabilityLimitDetails(Details):
    """72 ``web_recorder_capability_limit``: ``resolution``, ``WebGL`` or ``bandwidth``."""

    limit_type: str


class WebRecorderReloadDetails(Details):
    """73 ``web_recorder_reload``: ``audio_silence`` or ``page_load_timeout``."""

    reason: str


class TranscoderStartedDetails(Details):
    """80 ``transcoder_started``."""


class TranscodedUid(_Model):
    uid: NumStr
    result: str
    file_list: list[WebFile] = Field(default_factory=list)


class TranscoderCompletedDetails(Details):
    """81 ``transcoder_completed``: ``all_success``, ``partial_success`` or ``fail``."""

    result: str
    uids: list[TranscodedUid] = Field(default_factory=list)


class DownloadFailedDetails(Details):
    """90 ``download_failed``: ``fileName`` is a ``;``-separated list."""

    vendor: Int
    region: Int
    bucket: str
    file_name: str = _file_name_field()

    @property
    def file_names(self) -> list[str]:
        return [name for name in self.file_name.split(";") if name]


class RtmpPublishStatusDetails(Details):
    """100 ``rtmp_publish_status``: ``status`` is a string (``connecting``, ``publishing``,
    ``onhold``, ``disconnected``) although the docs' table says Number."""

    rtmp_url: str
    status: NumStr


class PostponeTranscodeFinalResultDetails(Details):
    """1001 ``postpone_transcode_final_result``."""

    result: str
    file_list: list[WebFile] = Field(default_factory=list)


# --- registry ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventType:
    """A documented Cloud Recording event type (productId 3)."""

    code: int
    msg_name: str
    service_type: int
    model: type[Details]
    description: str


def _registry(*types: EventType) -> Mapping[int, EventType]:
    return MappingProxyType({t.code: t for t in types})


_S = ServiceType
EVENT_TYPES: Mapping[int, EventType] = _registry(
    EventType(1, "cloud_recording_error", _S.CLOUD_RECORDING, CloudRecordingErrorDetails,
              "an error occurred during recording"),
    EventType(2, "cloud_recording_warning", _S.CLOUD_RECORDING, CloudRecordingWarningDetails,
              "a warning occurred during recording"),
    EventType(3, "cloud_recording_status_update", _S.CLOUD_RECORDING, StatusUpdateDetails,
              "a call did not match the service state"),
    EventType(4, "cloud_recording_file_infos", _S.CLOUD_RECORDING, FileInfosDetails,
              "the first M3U8 playlist was uploaded"),
    EventType(11, "session_exit", _S.CLOUD_RECORDING, SessionExitDetails,
              "the recording service exited"),
    EventType(12, "session_failover", _S.CLOUD_RECORDING, SessionFailoverDetails,
              "high-availability failover started"),
    EventType(30, "uploader_started", _S.UPLOADER, UploaderStartedDetails,
              "the upload service started"),
    EventType(31, "uploaded", _S.UPLOADER, UploadedDetails,
              "all files were uploaded to your storage"),
    EventType(32, "backuped", _S.UPLOADER, BackupedDetails,
              "all files uploaded, some through Agora Cloud Backup"),
    EventType(33, "uploading_progress", _S.UPLOADER, UploadingProgressDetails,
              "upload progress, once a minute"),
    EventType(40, "recorder_started", _S.RECORDER, RecorderStartedDetails,
              "the recorder started"),
    EventType(41, "recorder_leave", _S.RECORDER, RecorderLeaveDetails,
              "the recorder left the channel"),
    EventType(42, "recorder_slice_start", _S.RECORDER, RecorderSliceStartDetails,
              "first slice, or resumption after an interruption"),
    EventType(43, "recorder_audio_stream_state_changed", _S.RECORDER,
              AudioStreamStateChangedDetails, "audio stream receive state changed"),
    EventType(44, "recorder_video_stream_state_changed", _S.RECORDER,
              VideoStreamStateChangedDetails, "video stream receive state changed"),
    EventType(45, "recorder_snapshot_file", _S.RECORDER, RecorderSnapshotFileDetails,
              "a screenshot was captured and uploaded"),
    EventType(60, "vod_started", _S.EXTENSION, VodStartedDetails,
              "the ApsaraVideo VoD uploader started"),
    EventType(61, "vod_triggered", _S.EXTENSION, VodTriggeredDetails,
              "all files were uploaded to ApsaraVideo VoD"),
    EventType(70, "web_recorder_started", _S.WEB_RECORDER, WebRecorderStartedDetails,
              "web page recording started"),
    EventType(71, "web_recorder_stopped", _S.WEB_RECORDER, WebRecorderStoppedDetails,
              "web page recording stopped"),
    EventType(72, "web_recorder_capability_limit", _S.WEB_RECORDER,
              WebRecorderCapabilityLimitDetails, "the page needs an unsupported capability"),
    EventType(73, "web_recorder_reload", _S.WEB_RECORDER, WebRecorderReloadDetails,
              "the web page was reloaded"),
    EventType(80, "transcoder_started", _S.TRANSCODER, TranscoderStartedDetails,
              "postponed transcoding started"),
    EventType(81, "transcoder_completed", _S.TRANSCODER, TranscoderCompletedDetails,
              "postponed transcoding finished"),
    EventType(90, "download_failed", _S.DOWNLOADER, DownloadFailedDetails,
              "recorded files could not be downloaded"),
    EventType(100, "rtmp_publish_status", _S.WEB_RECORDER, RtmpPublishStatusDetails,
              "CDN push status of web recording changed"),
    EventType(1001, "postpone_transcode_final_result", _S.CLOUD_RECORDING,
              PostponeTranscodeFinalResultDetails, "final result of postponed transcoding"),
)
EVENT_TYPES_BY_NAME: Mapping[str, EventType] = MappingProxyType(
    {t.msg_name: t for t in EVENT_TYPES.values()}
)


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
