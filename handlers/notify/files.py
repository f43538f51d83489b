"""Derived records on ``agora.recording.files``: one record per recorded file an NCS event
reports. Pure: no I/O.

Sources (``source`` = the event's ``msgName``):

=====  ==================================  ===============================================
31     ``uploaded``                        one record per ``fileList`` entry
32     ``backuped``                        one record per ``fileList`` entry
4      ``cloud_recording_file_infos``      the first playlist (``fileList`` is one name)
45     ``recorder_snapshot_file``          the screenshot (full key with prefix path)
71     ``web_recorder_stopped``            one record per ``fileList`` entry
81     ``transcoder_completed``            one record per file of each ``uids`` entry
1001   ``postpone_transcode_final_result`` one record per ``fileList`` entry
=====  ==================================  ===============================================

Record: key = cname; value = :class:`FileRecord` as JSON (its JSON Schema is
``FileRecord.model_json_schema(by_alias=True)``); headers ``noticeId``, ``eventType``,
``sid`` and ``schema-version``. ``id`` is sha256 of sid, eventType and fileName, so the
same file reported by a duplicate or redundant notice (another noticeId, same content)
has the same id; the notify action publishes each id once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from handlers.action_contract import Output
from webhook.shared.event_records import (
    HEADER_EVENT_TYPE,
    HEADER_NOTICE_ID,
    HEADER_SCHEMA_VERSION,
    HEADER_SID,
    SCHEMA_VERSION,
)
from webhook.shared.events import (
    EventError,
    FileInfosDetails,
    Notification,
    PostponeTranscodeFinalResultDetails,
    RecorderSnapshotFileDetails,
    TranscoderCompletedDetails,
    UploadedDetails,
    WebRecorderStoppedDetails,
    parse_details_as,
)
from webhook.shared.filenames import FileNameError, parse_file_name

Source = Literal[
    "uploaded",
    "backuped",
    "cloud_recording_file_infos",
    "recorder_snapshot_file",
    "web_recorder_stopped",
    "transcoder_completed",
    "postpone_transcode_final_result",
]
SOURCES: dict[int, Source] = {
    31: "uploaded",
    32: "backuped",
    4: "cloud_recording_file_infos",
    45: "recorder_snapshot_file",
    71: "web_recorder_stopped",
    81: "transcoder_completed",
    1001: "postpone_transcode_final_result",
}


class FileRecordError(ValueError):
    """The event should report files but its details do not fit; names the field."""


class FileRecord(BaseModel):
    """One recorded file, as published on ``agora.recording.files`` (schema version 1).

    Fields absent from the source event are ``null``. Version 1 only ever gains optional
    fields; a change of meaning or type gets a new ``schema_version``.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        title="agora.recording.files record",
    )

    schema_version: Literal["1"] = Field(
        default=SCHEMA_VERSION, description="Version of this record's schema."
    )
    id: str = Field(description="sha256 hex of sid, eventType and fileName: the dedup key.")
    cname: str = Field(description="Channel name (also the record key).")
    sid: str = Field(description="Recording session id.")
    uid: str | None = Field(description="UID of the recording bot that sent the event.")
    notice_id: str = Field(alias="noticeId", description="noticeId of the reporting event.")
    event_type: int = Field(alias="eventType", description="eventType of the reporting event.")
    source: Source = Field(description="msgName of the reporting event.")
    sendts: int | None = Field(description="Unix ms when Agora says the event happened.")
    file_name: str = Field(
        alias="fileName", description="The file's name/key exactly as Agora reported it."
    )
    track_type: str | None = Field(
        default=None, alias="trackType", description="audio, video or audio_and_video (31/32)."
    )
    stream_uid: str | None = Field(
        default=None,
        alias="streamUid",
        description="UID whose stream the file holds ('0' in composite; 31/32 and 81).",
    )
    mixed_all_user: bool | None = Field(default=None, alias="mixedAllUser")
    is_playable: bool | None = Field(default=None, alias="isPlayable")
    slice_start_time: int | None = Field(
        default=None, alias="sliceStartTime", description="Unix ms of the first slice."
    )
    result: str | None = Field(
        default=None,
        description="Transcoding result: the uid's result (81) or the overall one (1001).",
    )
    parsed: dict[str, Any] | None = Field(
        default=None,
        description="The file name's parts (webhook.shared.filenames.RecordingFile.to_dict()), "
        "or null when the name does not follow Agora's naming.",
    )

    def output(self, topic: str) -> Output:
        """The Kafka record: key cname, JSON value, descriptive headers."""
        return Output.json(
            topic,
            self.cname,
            self.model_dump(mode="json"),
            **{
                HEADER_NOTICE_ID: self.notice_id,
                HEADER_EVENT_TYPE: str(self.event_type),
                HEADER_SID: self.sid,
                HEADER_SCHEMA_VERSION: self.schema_version,
            },
        )


def record_id(sid: str, event_type: int, file_name: str) -> str:
    """The deterministic id of one derived record."""
    return hashlib.sha256(f"{sid}\x00{event_type}\x00{file_name}".encode()).hexdigest()


def _parsed(file_name: str, cname: str) -> dict[str, Any] | None:
    # The cname hint splits names exactly; without it, a name from another channel (e.g. a
    # reused prefix) still gets its parts.
    for hint in (cname, None):
        try:
            return parse_file_name(file_name, cname=hint).to_dict()
        except FileNameError:
            continue
    return None


def _files(notification: Notification, event_type: int) -> Iterable[dict[str, Any]]:
    """(fileName plus file fields) per file the event reports."""
    if event_type in (31, 32):
        uploaded = parse_details_as(notification, UploadedDetails)
        for f in uploaded.file_list:
            yield {
                "file_name": f.file_name,
                "track_type": f.track_type,
                "stream_uid": f.uid,
                "mixed_all_user": f.mixed_all_user,
                "is_playable": f.is_playable,
                "slice_start_time": f.slice_start_time,
            }
    elif event_type == 4:
        yield {"file_name": parse_details_as(notification, FileInfosDetails).file_list}
    elif event_type == 45:
        yield {"file_name": parse_details_as(notification, RecorderSnapshotFileDetails).file_name}
    elif event_type == 71:
        stopped = parse_details_as(notification, WebRecorderStoppedDetails)
        for w in stopped.file_list:
            yield {"file_name": w.file_name, "slice_start_time": w.slice_start_time}
    elif event_type == 81:
        completed = parse_details_as(notification, TranscoderCompletedDetails)
        for group in completed.uids:
            for w in group.file_list:
                yield {
                    "file_name": w.file_name,
                    "stream_uid": group.uid,
                    "result": group.result,
                    "slice_start_time": w.slice_start_time,
                }
    elif event_type == 1001:
        final = parse_details_as(notification, PostponeTranscodeFinalResultDetails)
        for w in final.file_list:
            yield {
                "file_name": w.file_name,
                "result": final.result,
                "slice_start_time": w.slice_start_time,
            }


def derive_file_records(notification: Notification) -> list[FileRecord]:
    """The file records an NCS notification reports, each file once, in report order.

    Events of other types (and other products) give ``[]``. Raises
    :class:`FileRecordError` naming the field when a file-reporting event lacks cname/sid
    or its details do not fit the documented model.
    """
    event_type = notification.event_type
    source = SOURCES.get(event_type)
    if source is None or notification.event_info is None:
        return []
    payload = notification.payload
    if not payload.cname:
        raise FileRecordError(f"eventType {event_type}: payload.cname is required for files")
    if not payload.sid:
        raise FileRecordError(f"eventType {event_type}: payload.sid is required for files")
    try:
        files = list(_files(notification, event_type))
    except EventError as exc:
        raise FileRecordError(str(exc)) from None
    records: dict[str, FileRecord] = {}
    for fields in files:
        rid = record_id(payload.sid, event_type, fields["file_name"])
        if rid in records:
            continue
        records[rid] = FileRecord(
            id=rid,
            cname=payload.cname,
            sid=payload.sid,
            uid=payload.uid,
            notice_id=notification.notice_id,
            event_type=event_type,
            source=source,
            sendts=payload.send_ts,
            parsed=_parsed(fields["file_name"], payload.cname),
            **fields,
        )
    return list(records.values())
