"""The ``payload.details`` models: one per documented Cloud Recording event type, plus
:class:`UnknownDetails` for anything else, and the value coercions they share with the
envelope (:mod:`webhook.shared.events`).

Every model keeps unknown keys (``extra="allow"``): Agora adds keys to ``details`` over time
and promises not to change the type of existing ones. Models are frozen. Field names are
Agora's camelCase (``exitStatus``), Python attributes snake_case (``exit_status``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from webhook.shared.event_codes import BENIGN_LEAVE_BITS, ErrorLevel, LeaveCode, WebStopCode
from webhook.shared.filenames import RecordingFile, parse_file_name

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
