"""Derived file records: one per reported file, per event type, with a stable id."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from handlers.action_contract import Received
from handlers.notify.files import (
    FileRecord,
    FileRecordError,
    derive_file_records,
    record_id,
)

CNAME = "class-101"
SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
Notice = Callable[..., Received]

MP4 = f"{SID}_{CNAME}_0.mp4"
M3U8 = f"{SID}_{CNAME}.m3u8"
JPG = f"{SID}_{CNAME}__uid_s_123__uid_e_video_20190611073246073.jpg"


def derive(make_notice: Notice, event_type: int, details: dict[str, Any]) -> list[FileRecord]:
    return derive_file_records(make_notice(event_type, details).notification)


@pytest.mark.parametrize(("event_type", "source"), [(31, "uploaded"), (32, "backuped")])
def test_uploaded_gives_one_record_per_file(
    make_notice: Notice, event_type: int, source: str
) -> None:
    details = {
        "msgName": source,
        "status": 0,
        "fileList": [
            {"fileName": MP4, "trackType": "audio_and_video", "uid": "0",
             "mixedAllUser": True, "isPlayable": True, "sliceStartTime": 1619172632080},
            {"fileName": M3U8, "trackType": "audio_and_video", "uid": "0",
             "mixedAllUser": True, "isPlayable": True, "sliceStartTime": 1619172632080},
        ],
    }
    event = make_notice(event_type, details, notice_id="n-1", sendts=1_700_000_000_000)
    records = derive_file_records(event.notification)

    assert [r.file_name for r in records] == [MP4, M3U8]
    first = records[0]
    assert first.source == source
    assert first.event_type == event_type
    assert (first.cname, first.sid, first.uid, first.notice_id) == (CNAME, SID, "900001", "n-1")
    assert first.sendts == 1_700_000_000_000
    assert first.track_type == "audio_and_video"
    assert first.stream_uid == "0"
    assert first.mixed_all_user is True
    assert first.is_playable is True
    assert first.slice_start_time == 1619172632080
    assert first.id == record_id(SID, event_type, MP4)
    assert first.parsed is not None
    assert first.parsed["kind"] == "mp4"
    assert first.parsed["index"] == 0


def test_web_uploaded_without_file_list_gives_nothing(make_notice: Notice) -> None:
    assert derive(make_notice, 31, {"msgName": "uploaded", "status": 0}) == []


def test_file_infos_gives_the_first_playlist(make_notice: Notice) -> None:
    details = {"msgName": "cloud_recording_file_infos", "fileList": M3U8}
    [record] = derive(make_notice, 4, details)
    assert record.file_name == M3U8
    assert record.source == "cloud_recording_file_infos"
    assert record.parsed is not None
    assert record.parsed["kind"] == "playlist"


def test_snapshot_carries_the_parsed_file_name(make_notice: Notice) -> None:
    details = {"msgName": "recorder_snapshot_file", "fileName": f"shots/day1/{JPG}"}
    [record] = derive(make_notice, 45, details)
    assert record.file_name == f"shots/day1/{JPG}"
    assert record.parsed is not None
    assert record.parsed["directory"] == "shots/day1"
    assert record.parsed["uid"] == "123"
    assert record.parsed["kind"] == "screenshot"
    assert record.parsed["utc"] == "2019-06-11T07:32:46.073+00:00"


def test_unparseable_file_name_still_gives_a_record(make_notice: Notice) -> None:
    details = {"msgName": "recorder_snapshot_file", "fileName": "prefix/not-agora.jpg"}
    [record] = derive(make_notice, 45, details)
    assert record.file_name == "prefix/not-agora.jpg"
    assert record.parsed is None


@pytest.mark.parametrize("spelling", ["fileName", "filename"])
def test_web_recorder_stopped_accepts_both_spellings(make_notice: Notice, spelling: str) -> None:
    details = {
        "msgName": "web_recorder_stopped", "code": 0, "message": "ok", "details": "",
        "fileList": [{spelling: f"{SID}_{CNAME}_0.mp4", "sliceStartTime": 1_600_000_000_000},
                     {spelling: f"{SID}_{CNAME}_1.mp4", "sliceStartTime": 1_600_000_100_000}],
    }
    records = derive(make_notice, 71, details)
    assert [r.file_name for r in records] == [f"{SID}_{CNAME}_0.mp4", f"{SID}_{CNAME}_1.mp4"]
    assert records[1].slice_start_time == 1_600_000_100_000
    assert {r.source for r in records} == {"web_recorder_stopped"}


def test_transcoder_completed_gives_files_of_every_uid(make_notice: Notice) -> None:
    details = {
        "msgName": "transcoder_completed", "result": "partial_success",
        "uids": [
            {"uid": "123", "result": "success", "fileList": [{"fileName": "a/123.mp4"}]},
            {"uid": "456", "result": "fail", "fileList": []},
            {"uid": "789", "result": "success",
             "fileList": [{"fileName": "a/789_0.mp4"}, {"fileName": "a/789_1.mp4"}]},
        ],
    }
    records = derive(make_notice, 81, details)
    assert [(r.file_name, r.stream_uid, r.result) for r in records] == [
        ("a/123.mp4", "123", "success"),
        ("a/789_0.mp4", "789", "success"),
        ("a/789_1.mp4", "789", "success"),
    ]


def test_postponed_transcoding_result_gives_its_files(make_notice: Notice) -> None:
    details = {"msgName": "postpone_transcode_final_result", "result": "total_success",
               "fileList": [{"fileName": "out/x.mp4"}]}
    [record] = derive(make_notice, 1001, details)
    assert (record.file_name, record.result, record.event_type) == ("out/x.mp4", "total_success",
                                                                     1001)


@pytest.mark.parametrize(
    ("event_type", "details"),
    [
        (40, {"msgName": "recorder_started", "status": 0}),
        (1, {"msgName": "cloud_recording_error", "module": 0, "errorLevel": 5, "errorCode": 1}),
        (90, {"msgName": "download_failed", "vendor": 1, "region": 0, "bucket": "b",
              "fileName": "a.m3u8;b.ts"}),
        (4242, {"fileList": M3U8}),
    ],
)
def test_other_events_give_nothing(
    make_notice: Notice, event_type: int, details: dict[str, Any]
) -> None:
    assert derive(make_notice, event_type, details) == []


def test_a_file_listed_twice_is_one_record(make_notice: Notice) -> None:
    details = {"msgName": "uploaded", "status": 0,
               "fileList": [{"fileName": MP4}, {"fileName": MP4}]}
    assert len(derive(make_notice, 31, details)) == 1


def test_redundant_notices_give_the_same_ids(make_notice: Notice) -> None:
    details = {"msgName": "uploaded", "status": 0, "fileList": [{"fileName": MP4}]}
    first = derive_file_records(make_notice(31, details, notice_id="a").notification)
    second = derive_file_records(make_notice(31, details, notice_id="b").notification)
    assert [r.id for r in first] == [r.id for r in second]
    assert first[0].notice_id != second[0].notice_id


def test_details_that_do_not_fit_name_the_field(make_notice: Notice) -> None:
    details = {"msgName": "uploaded", "status": 0, "fileList": [{"trackType": "audio"}]}
    with pytest.raises(FileRecordError, match=r"fileList\[0\]\.fileName"):
        derive(make_notice, 31, details)


def test_a_file_event_without_sid_is_refused(make_notice: Notice) -> None:
    with pytest.raises(FileRecordError, match=r"payload\.sid"):
        derive_file_records(
            make_notice(4, {"fileList": M3U8}, sid="").notification
        )


def test_output_record_key_headers_and_value(make_notice: Notice) -> None:
    [record] = derive(make_notice, 4, {"fileList": M3U8})
    output = record.output("files-topic")
    assert output.topic == "files-topic"
    assert output.key == CNAME
    assert dict(output.headers) == {
        "noticeId": record.notice_id, "eventType": "4", "sid": SID, "schema-version": "1",
    }
    value = json.loads(output.value)
    assert value["schema_version"] == "1"
    assert value["fileName"] == M3U8
    assert value["noticeId"] == record.notice_id
    assert value["eventType"] == 4
    assert FileRecord.model_validate_json(output.value) == record


def test_json_schema_documents_the_wire_names() -> None:
    schema = FileRecord.model_json_schema(by_alias=True)
    assert {"schema_version", "id", "cname", "sid", "noticeId", "eventType", "source",
            "fileName", "parsed"} <= set(schema["properties"])
    assert schema["properties"]["schema_version"]["const"] == "1"
    assert "uploaded" in schema["properties"]["source"]["enum"]
