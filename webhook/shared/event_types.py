"""The catalog of documented Cloud Recording event types (productId 3): code, ``msgName``,
the service that sends it, its :mod:`webhook.shared.event_details` model and a one-line meaning.
Routing, the samples and the contracts read it; an event type missing here is parsed with
:class:`~webhook.shared.event_details.UnknownDetails`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from webhook.shared.event_codes import ServiceType
from webhook.shared.event_details import (
    AudioStreamStateChangedDetails,
    BackupedDetails,
    CloudRecordingErrorDetails,
    CloudRecordingWarningDetails,
    Details,
    DownloadFailedDetails,
    FileInfosDetails,
    PostponeTranscodeFinalResultDetails,
    RecorderLeaveDetails,
    RecorderSliceStartDetails,
    RecorderSnapshotFileDetails,
    RecorderStartedDetails,
    RtmpPublishStatusDetails,
    SessionExitDetails,
    SessionFailoverDetails,
    StatusUpdateDetails,
    TranscoderCompletedDetails,
    TranscoderStartedDetails,
    UploadedDetails,
    UploaderStartedDetails,
    UploadingProgressDetails,
    VideoStreamStateChangedDetails,
    VodStartedDetails,
    VodTriggeredDetails,
    WebRecorderCapabilityLimitDetails,
    WebRecorderReloadDetails,
    WebRecorderStartedDetails,
    WebRecorderStoppedDetails,
)

CLOUD_RECORDING_PRODUCT_ID = 3



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
