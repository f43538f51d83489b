"""Request paths and bodies, and response parsing by mode and fileListMode."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.recording.api_requests import (
    AcquireRequest,
    ChannelUsersRequest,
    InvalidIdentifier,
    QueryRequest,
    StartRequest,
    StopRequest,
    UpdateRequest,
    check_mode,
    redact,
    uid_string,
)
from handlers.recording.api_responses import (
    AcquireResponse,
    RecordingServerResponse,
    StartResponse,
    UnexpectedResponse,
    WebServerResponse,
    parse_query,
    parse_simple,
    parse_stop,
    slice_start_ms,
)

IDS = {"cname": "c1", "uid": "527841", "resourceId": "rid", "sid": "sid1"}


def test_paths_are_exactly_as_documented() -> None:
    assert AcquireRequest("c", "1").path() == "/acquire"
    assert StartRequest("mix", "R", "c", "1", {}).path() == "/resourceid/R/mode/mix/start"
    assert QueryRequest("web", "R", "S").path() == "/resourceid/R/sid/S/mode/web/query"
    assert UpdateRequest("mix", "R", "S", "c", "1", {}).path() == (
        "/resourceid/R/sid/S/mode/mix/update"
    )
    assert UpdateRequest("mix", "R", "S", "c", "1", {}, layout=True).path() == (
        "/resourceid/R/sid/S/mode/mix/updateLayout"
    )
    assert StopRequest("individual", "R", "S", "c", "1").path() == (
        "/resourceid/R/sid/S/mode/individual/stop"
    )


@pytest.mark.parametrize(("resource_id", "sid", "field"), [
    ("a/b?c", "s1", "resourceId"), ("..", "s1", "resourceId"), ("r1", "s#1", "sid"),
    ("r1", "..", "sid"), ("r1", "a/../b", "sid"), ("r1", "", "sid"), ("r 1", "s1", "resourceId"),
])
def test_ids_that_would_change_the_path_are_refused(resource_id: str, sid: str,
                                                     field: str) -> None:
    for request in (QueryRequest("mix", resource_id, sid),
                    StopRequest("mix", resource_id, sid, "c", "1", async_stop=True)):
        with pytest.raises(InvalidIdentifier, match=f"^{field}: must be") as caught:
            request.path()
        assert resource_id not in str(caught.value) or resource_id == "r1"


@pytest.mark.parametrize("cname", [".", "..", "a/b", "", "x" * 1025])
def test_a_cname_that_would_change_the_channel_path_is_refused(cname: str) -> None:
    with pytest.raises(InvalidIdentifier, match=r"^cname: must be"):
        ChannelUsersRequest("0123abcd", cname).path()


def test_well_formed_ids_are_quoted_into_one_segment_each() -> None:
    assert QueryRequest("mix", "Jy-K8_n", "38f8e3cf").path() == (
        "/resourceid/Jy-K8_n/sid/38f8e3cf/mode/mix/query")
    assert ChannelUsersRequest("0123abcd", "class #1?x=.").path() == (
        "/dev/v1/channel/user/0123abcd/class%20%231%3Fx%3D.")


def test_methods_and_bodies() -> None:
    assert QueryRequest("mix", "R", "S").method == "GET"
    assert QueryRequest("mix", "R", "S").body() is None
    assert StopRequest("mix", "R", "S", "c", "1", async_stop=True).body() == {
        "cname": "c", "uid": "1", "clientRequest": {"async_stop": True},
    }
    assert AcquireRequest("c", "1", {"scene": 0}).body() == {
        "cname": "c", "uid": "1", "clientRequest": {"scene": 0},
    }


def test_uids_travel_as_strings() -> None:
    assert uid_string(527841) == "527841"
    assert uid_string("527841") == "527841"
    with pytest.raises(TypeError):
        uid_string(True)


def test_check_mode() -> None:
    assert check_mode("web") == "web"
    with pytest.raises(ValueError, match="individual, mix, web"):
        check_mode("composite")


def test_request_repr_hides_the_client_request() -> None:
    request = StartRequest("mix", "R", "c", "1", {"storageConfig": {"secretKey": "TOPSECRET"},
                                                   "token": "TOKENVALUE"})
    assert "TOPSECRET" not in repr(request)
    assert "TOKENVALUE" not in repr(request)
    assert "UpdateRequest" in repr(UpdateRequest("mix", "R", "S", "c", "1", {"x": "SECRETX"}))
    assert "SECRETX" not in repr(UpdateRequest("mix", "R", "S", "c", "1", {"x": "SECRETX"}))


def test_redact_masks_credentials_at_any_depth() -> None:
    body: dict[str, Any] = {"cname": "c", "clientRequest": {
        "token": "t", "storageConfig": {"accessKey": "a", "secretKey": "s", "stsToken": "x",
                                        "bucket": "keep", "fileNamePrefix": ["p"]},
        "recordingConfig": {"secret": "k", "salt": "z", "channelType": 0},
    }}
    out = redact(body)
    storage = out["clientRequest"]["storageConfig"]
    assert storage == {"accessKey": "***", "secretKey": "***", "stsToken": "***",
                       "bucket": "keep", "fileNamePrefix": ["p"]}
    assert out["clientRequest"]["token"] == "***"
    assert out["clientRequest"]["recordingConfig"] == {"secret": "***", "salt": "***",
                                                        "channelType": 0}
    assert body["clientRequest"]["token"] == "t", "the input is not changed"


def test_simple_responses_require_their_identifiers() -> None:
    assert parse_simple(AcquireResponse, {"cname": "c", "uid": 5, "resourceId": "r"}).uid == "5"
    with pytest.raises(UnexpectedResponse, match="resourceId"):
        parse_simple(AcquireResponse, {"cname": "c", "uid": "5"})
    with pytest.raises(UnexpectedResponse, match="sid"):
        parse_simple(StartResponse, {"sid": "", "resourceId": "r"})
    with pytest.raises(UnexpectedResponse, match="object"):
        parse_simple(StartResponse, ["not", "an", "object"])


def test_query_mix_string_mode_gives_the_playlist() -> None:
    body = {**IDS, "serverResponse": {"status": 5, "fileListMode": "string",
                                      "fileList": "sid1_c1.m3u8", "sliceStartTime": 1}}
    parsed = parse_query("mix", body)
    assert isinstance(parsed.server_response, RecordingServerResponse)
    assert parsed.server_response.playlist == "sid1_c1.m3u8"
    assert parsed.files == ()
    assert parsed.running
    assert parsed.resource_id == "rid"


def test_query_json_mode_gives_every_file() -> None:
    files = [{"fileName": "a.m3u8", "trackType": "audio_and_video", "uid": "0",
              "mixedAllUser": True, "isPlayable": True, "sliceStartTime": 1619172632080},
             {"fileName": "a_0.mp4", "trackType": "audio_and_video", "uid": "0",
              "mixedAllUser": True, "isPlayable": True, "sliceStartTime": 1619172632}]
    parsed = parse_query("mix", {**IDS, "serverResponse": {
        "status": 4, "fileListMode": "json", "fileList": files}})
    assert [f.file_name for f in parsed.files] == ["a.m3u8", "a_0.mp4"]
    assert parsed.files[0].mixed_all_user is True
    assert [f.slice_start_ms for f in parsed.files] == [1619172632080, 1619172632000]


def test_query_screenshot_only_has_status_and_no_files() -> None:
    parsed = parse_query("individual", {**IDS, "serverResponse": {"status": 5,
                                                                   "sliceStartTime": 7}})
    assert parsed.status == 5
    assert parsed.files == ()
    assert isinstance(parsed.server_response, RecordingServerResponse)
    assert parsed.server_response.file_list_mode is None


def test_string_file_list_without_mode_is_a_playlist() -> None:
    parsed = parse_query("mix", {**IDS, "serverResponse": {"status": 5, "fileList": "x.m3u8"}})
    assert isinstance(parsed.server_response, RecordingServerResponse)
    assert parsed.server_response.playlist == "x.m3u8"


def test_query_web_reads_extension_states_and_filename_spelling() -> None:
    body = {**IDS, "serverResponse": {"status": 5, "extensionServiceState": [
        {"serviceName": "web_recorder_service", "payload": {
            "state": "inProgress", "onhold": False,
            "fileList": [{"filename": "w_0.mp4", "sliceStartTime": 1}]}},
        {"serviceName": "rtmp_publish_service", "payload": {
            "outputs": [{"rtmpUrl": "rtmp://x/y", "status": "publishing"}]}},
    ]}}
    parsed = parse_query("web", body)
    server = parsed.server_response
    assert isinstance(server, WebServerResponse)
    assert [f.file_name for f in parsed.files] == ["w_0.mp4"]
    rtmp = server.service("rtmp_publish_service")
    assert rtmp is not None
    assert rtmp.payload.outputs[0].status == "publishing"
    assert server.service("missing") is None


def test_stop_web_accepts_the_playload_spelling() -> None:
    body = {**IDS, "serverResponse": {"extensionServiceState": [
        {"serviceName": "upload_service", "playload": {"uploadingStatus": "uploaded"}},
        {"serviceName": "web_recorder_service", "payload": {
            "fileList": [{"fileName": "w.mp4", "sliceStartTime": 1}], "state": "exit"}},
    ]}}
    parsed = parse_stop("web", body)
    assert parsed.uploading_status == "uploaded"
    assert [f.file_name for f in parsed.files] == ["w.mp4"]
    assert not parsed.running


def test_stop_individual_and_mix() -> None:
    parsed = parse_stop("individual", {**IDS, "serverResponse": {
        "uploadingStatus": "backuped", "fileListMode": "json",
        "fileList": [{"fileName": "f.m3u8", "trackType": "audio", "uid": "9"}]}})
    assert parsed.uploading_status == "backuped"
    assert parsed.files[0].uid == "9"
    assert parse_stop("mix", {**IDS, "serverResponse": {"uploadingStatus": "unknown"}}
                      ).uploading_status == "unknown"


@pytest.mark.parametrize("body", [None, "text", {**IDS, "serverResponse": {"status": "five"}}])
def test_malformed_session_answers_are_reported(body: Any) -> None:
    with pytest.raises(UnexpectedResponse):
        parse_query("mix", body)


def test_slice_start_ms_handles_seconds_and_ms() -> None:
    assert slice_start_ms(None) is None
    assert slice_start_ms(1_600_000_000) == 1_600_000_000_000
    assert slice_start_ms(1_600_000_000_123) == 1_600_000_000_123
