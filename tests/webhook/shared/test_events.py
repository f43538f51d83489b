from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from webhook.shared.events import (
    BENIGN_LEAVE_BITS,
    EVENT_TYPES,
    AudioStreamStateChangedDetails,
    BackupedDetails,
    Details,
    DownloadFailedDetails,
    EventError,
    LeaveCode,
    Notification,
    RecorderLeaveDetails,
    RecorderSnapshotFileDetails,
    SessionExitDetails,
    UnknownDetails,
    UploadedDetails,
    WebRecorderStoppedDetails,
    WebStopCode,
    parse_details,
    parse_details_as,
    parse_notification,
)
from webhook.shared.samples import SAMPLE_CNAME, SAMPLE_SID, encode, sample

# What each sample's typed details must expose (attribute -> value).
EXPECTED_DETAILS: dict[int, dict[str, Any]] = {
    1: {"module": 2, "error_level": 5, "error_code": 52, "is_fatal": True},
    2: {"module": 1, "warn_code": 31},
    3: {"status": 5, "file_list": f"{SAMPLE_SID}_{SAMPLE_CNAME}.m3u8"},
    4: {"file_list": f"{SAMPLE_SID}_{SAMPLE_CNAME}.m3u8"},
    11: {"exit_status": 0, "is_abnormal": False},
    12: {"new_uid": "2387561834"},
    30: {"status": 0},
    31: {"status": 0},
    32: {"status": 0},
    33: {"progress": 7500, "fraction": 0.75},
    40: {"status": 0},
    41: {"leave_code": 2, "is_benign": True},
    42: {"stream_uid": "0", "mixed_all_user": True, "is_resumption": False},
    43: {"stream_uid": "0", "state": 0, "receiving": True},
    44: {"stream_uid": "0", "state": 1, "receiving": False},
    45: {},
    60: {},
    61: {},
    70: {},
    71: {"code": 0, "message": "ok", "is_failure": False, "stop_code": WebStopCode.OK},
    72: {"limit_type": "resolution"},
    73: {"reason": "audio_silence"},
    80: {},
    81: {"result": "all_success"},
    90: {"vendor": 1, "region": 0, "bucket": "rec"},
    100: {"status": "publishing"},
    1001: {"result": "total_success"},
}


def notification(event_type: int, **overrides: Any) -> Notification:
    return parse_notification(encode(sample(event_type, **overrides)))


def with_details(event_type: int, details: dict[str, Any], **overrides: Any) -> Notification:
    """The sample with its details replaced (msgName kept), not merged."""
    body = sample(event_type, **overrides)
    body["payload"]["details"] = {"msgName": EVENT_TYPES[event_type].msg_name, **details}
    return parse_notification(encode(body))


def body_with(**changes: Any) -> bytes:
    body = sample(40)
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body).encode()


def test_every_documented_type_has_an_expectation() -> None:
    assert set(EXPECTED_DETAILS) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_sample_parses_into_its_typed_details(event_type: int) -> None:
    parsed = notification(event_type)

    details = parse_details(parsed)

    info = EVENT_TYPES[event_type]
    assert type(details) is info.model
    assert details == parsed.details_model()
    assert parsed.msg_name == info.msg_name == details.msg_name
    assert parsed.event_info is info
    assert parsed.payload.cname == SAMPLE_CNAME
    assert parsed.payload.sid == SAMPLE_SID
    assert parsed.payload.uid == "900001"
    assert parsed.payload.service_type == info.service_type
    for attribute, value in EXPECTED_DETAILS[event_type].items():
        assert getattr(details, attribute) == value, attribute


def test_uploaded_file_list_is_typed() -> None:
    details = parse_details_as(notification(31), UploadedDetails)

    first = details.file_list[0]
    assert first.file_name == f"{SAMPLE_SID}_{SAMPLE_CNAME}.m3u8"
    assert first.track_type == "audio_and_video"
    assert first.uid == "0"
    assert first.is_playable is True
    assert first.recording_file().layout == "composite"


def test_snapshot_file_name_parses_with_its_prefix_directory() -> None:
    details = parse_details_as(notification(45), RecorderSnapshotFileDetails)

    recording_file = details.recording_file()
    assert recording_file.directory == f"snapshots/{SAMPLE_CNAME}"
    assert recording_file.kind == "screenshot"
    assert recording_file.uid == "100001"


def test_download_failed_splits_its_file_list() -> None:
    details = parse_details_as(notification(90), DownloadFailedDetails)

    assert len(details.file_names) == 2
    assert details.file_names[0].endswith(".m3u8")


def test_common_payload_fields() -> None:
    parsed = notification(40, sequence=7, sendts=1718090000300)

    assert parsed.product_id == 3
    assert parsed.event_type == 40
    assert parsed.payload.sequence == 7
    assert parsed.payload.send_ts == 1718090000300


# --- spelling variants -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["fileName", "filename"])
def test_web_recorder_file_list_accepts_both_spellings(key: str) -> None:
    parsed = notification(71, fileList=[{key: "x_c_0.mp4", "sliceStartTime": 5}])

    details = parse_details_as(parsed, WebRecorderStoppedDetails)

    assert details.file_list[0].file_name == "x_c_0.mp4"
    assert details.model_dump()["fileList"][0]["fileName"] == "x_c_0.mp4"


@pytest.mark.parametrize("key", ["fileName", "filename"])
def test_snapshot_and_download_accept_both_spellings(key: str) -> None:
    snapshot = with_details(45, {key: "p/s_c__uid_s_1__uid_e_video_20240101000000000.jpg"})
    download = with_details(90, {"vendor": 1, "region": 0, "bucket": "b", key: "a.m3u8;b.ts"})

    assert parse_details_as(snapshot, RecorderSnapshotFileDetails).recording_file().uid == "1"
    assert parse_details_as(download, DownloadFailedDetails).file_names == ["a.m3u8", "b.ts"]


def test_envelope_accepts_the_playload_misspelling() -> None:
    body = sample(11)
    body["playload"] = body.pop("payload")

    parsed = parse_notification(json.dumps(body).encode())

    assert parsed.payload.cname == SAMPLE_CNAME
    assert parse_details_as(parsed, SessionExitDetails).exit_status == 0


@pytest.mark.parametrize("key", ["UtcMs", "utcMs"])
def test_stream_state_time_accepts_its_capitalised_key(key: str) -> None:
    parsed = with_details(43, {"streamUid": 5, "state": 0, key: 123})

    details = parse_details_as(parsed, AudioStreamStateChangedDetails)

    assert details.utc_ms == 123
    assert details.stream_uid == "5"
    assert details.model_dump()["UtcMs"] == 123


def test_numeric_uids_become_strings() -> None:
    parsed = notification(12, uid=900001, newUid=123456)

    assert parsed.payload.uid == "900001"
    assert parse_details(parsed).model_dump()["newUid"] == "123456"


def test_legacy_event_ms_and_unknown_keys_are_kept() -> None:
    body = sample(40, eventMs=1560408533119)
    body["sid"] = "top-level"
    body["payload"]["newPayloadKey"] = {"a": 1}
    body["payload"]["details"]["newDetailsKey"] = [1, 2]

    parsed = parse_notification(encode(body))

    assert parsed.event_ms == 1560408533119
    assert parsed.model_extra == {"sid": "top-level"}
    assert parsed.payload.model_extra == {"newPayloadKey": {"a": 1}}
    assert parse_details(parsed).model_extra == {"newDetailsKey": [1, 2]}


def test_models_are_frozen() -> None:
    parsed = notification(40)

    with pytest.raises(ValidationError):
        parsed.event_type = 41  # type: ignore[misc]


def test_payload_identity_fields_are_optional() -> None:
    raw = (
        b'{"noticeId":"n","productId":1,"eventType":101,"notifyMs":1,'
        b'"payload":{"channelName":"x"}}'
    )

    parsed = parse_notification(raw)

    assert parsed.payload.cname is None
    assert parsed.payload.sid is None
    assert parsed.payload.uid is None
    assert parsed.payload.details == {}


def test_notice_id_may_be_a_number() -> None:
    assert parse_notification(body_with(noticeId=1205703979)).notice_id == "1205703979"


# --- unknown and foreign events ----------------------------------------------------------


def test_undocumented_event_type_parses_with_unknown_details() -> None:
    parsed = with_details(40, {"msgName": "ha_register", "x": 1}, eventType=13)

    details = parse_details(parsed)

    assert type(details) is UnknownDetails
    assert details.msg_name == "ha_register"
    assert details.model_extra == {"x": 1}
    assert parsed.event_info is None
    assert parsed.msg_name == "ha_register"


def test_other_products_never_use_cloud_recording_models() -> None:
    # eventType 41 of RTC (productId 1) is not recorder_leave.
    parsed = with_details(41, {"clientSeq": 1}, productId=1)

    assert type(parse_details(parsed)) is UnknownDetails
    assert parsed.event_info is None


def test_msg_name_falls_back_to_the_registry() -> None:
    parsed = notification(11, details={"msgName": None})
    body = sample(11)
    del body["payload"]["details"]["msgName"]

    assert parse_notification(encode(body)).msg_name == "session_exit"
    assert parsed.msg_name == "session_exit"


# --- rejection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (body_with(noticeId=None), "noticeId", "required"),
        (body_with(noticeId=""), "noticeId", "at least 1 character"),
        (body_with(productId="three"), "productId", "valid integer"),
        (body_with(eventType=True), "eventType", "valid integer (got boolean)"),
        (body_with(notifyMs=1.5), "notifyMs", "got number"),
        (body_with(payload=None), "payload", "required"),
        (body_with(payload=[1]), "payload", "got array"),
        (body_with(payload={"details": "x"}), "payload.details", "got string"),
        (body_with(payload={"sequence": "first"}), "payload.sequence", "valid integer"),
        (b"[1, 2]", "body", "object (got array)"),
        (b'{"noticeId": ', "body", "not valid JSON"),
        (b"\xff\xfe", "body", "not valid JSON"),
    ],
)
def test_bad_envelopes_name_the_field(raw: bytes, field: str, words: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_notification(raw)

    assert caught.value.field == field
    assert field in str(caught.value)
    assert words in str(caught.value)


def test_envelope_errors_list_every_field_and_never_echo_values() -> None:
    raw = body_with(noticeId={"token": "hunter2"}, productId="hunter3", notifyMs=None)

    with pytest.raises(EventError) as caught:
        parse_notification(raw)

    message = str(caught.value)
    assert "noticeId" in message
    assert "productId" in message
    assert "notifyMs" in message
    assert "hunter" not in message
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("event_type", "details", "field", "words"),
    [
        (11, {}, "payload.details.exitStatus", "required"),
        (41, {"leaveCode": "x"}, "payload.details.leaveCode", "valid integer"),
        (41, {"leaveCode": -1}, "payload.details.leaveCode", "greater than or equal to 0"),
        (31, {"status": 0, "fileList": [{"uid": "1"}]}, "payload.details.fileList[0].fileName",
         "required"),
        (71, {"code": 0, "fileList": "a.mp4"}, "payload.details.fileList", "valid list"),
    ],
)
def test_details_that_do_not_fit_name_the_field(
    event_type: int, details: dict[str, Any], field: str, words: str
) -> None:
    parsed = with_details(event_type, details)  # the envelope itself is fine

    with pytest.raises(EventError) as caught:
        parse_details(parsed)

    assert caught.value.field == field
    assert field in str(caught.value)
    assert words in str(caught.value)
    assert f"eventType {event_type}" in str(caught.value)


def test_parse_details_as_refuses_the_wrong_model() -> None:
    with pytest.raises(EventError, match="eventType 40 carries RecorderStartedDetails"):
        parse_details_as(notification(40), SessionExitDetails)


def test_parse_details_as_accepts_a_base_model() -> None:
    details = parse_details_as(notification(32), UploadedDetails)

    assert isinstance(details, BackupedDetails)


# --- leave codes and other helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reasons", "benign"),
    [
        (0, (LeaveCode.INIT,), False),
        (2, (LeaveCode.SIG,), True),
        (6, (LeaveCode.SIG, LeaveCode.NO_USERS), True),
        (8, (LeaveCode.TIMER_CATCH,), True),
        (16, (LeaveCode.CLIENT_LEAVE,), False),
        (18, (LeaveCode.SIG, LeaveCode.CLIENT_LEAVE), False),
        (34, (LeaveCode.SIG,), False),
    ],
)
def test_leave_code_reasons(code: int, reasons: tuple[LeaveCode, ...], benign: bool) -> None:
    details = RecorderLeaveDetails.model_validate({"leaveCode": code})

    assert details.reasons() == reasons
    assert details.is_benign is benign


def test_leave_code_keeps_undocumented_bits() -> None:
    assert LeaveCode(34).unknown_bits == 32
    assert LeaveCode(6).unknown_bits == 0
    assert int(BENIGN_LEAVE_BITS) == 14


@pytest.mark.parametrize(("code", "failure"), [(0, False), (1, False), (2, True), (6, True),
                                               (42, True)])
def test_web_recorder_stop_codes(code: int, failure: bool) -> None:
    details = WebRecorderStoppedDetails.model_validate({"code": code})

    assert details.is_failure is failure
    assert (details.stop_code is None) is (code == 42)


def test_registry_is_consistent() -> None:
    names = [info.msg_name for info in EVENT_TYPES.values()]
    assert len(set(names)) == len(names)
    for code, info in EVENT_TYPES.items():
        assert info.code == code
        assert issubclass(info.model, Details)
        assert info.description
    assert EVENT_TYPES[90].msg_name == "download_failed"
    assert EVENT_TYPES[100].msg_name == "rtmp_publish_status"


def test_importing_the_models_does_not_import_flask() -> None:
    code = (
        "import sys, webhook.shared.events, webhook.shared.filenames, webhook.shared.samples;"
        "import webhook.sender;"
        "sys.exit(1 if 'flask' in sys.modules else 0)"
    )

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)

    assert completed.returncode == 0, completed.stderr.decode()
