"""Runtime changes folded into the start request (pure), and the fake Agora's update and
updateLayout answers with their documented error codes."""

from __future__ import annotations

from typing import Any

import pytest
from support.recording_requests import valid_request

from handlers.recording.errors import Advice, RecordingApiError
from handlers.recording.updates import LAYOUT_KEYS, fold_layout, fold_update
from handlers.testing.fake_agora import FakeAgora

BASE: dict[str, Any] = {
    "recordingConfig": {"channelType": 0, "unsubscribeAudioUids": ["7"],
                        "transcodingConfig": {"width": 640, "mixedVideoLayout": 3,
                                              "layoutConfig": [{"x_axis": 0.0}],
                                              "backgroundColor": "#000000"}},
    "storageConfig": {"accessKey": "${S3_KEY}"},
}


def test_a_subscribe_list_replaces_its_exclusive_counterpart() -> None:
    folded = fold_update(BASE, {"streamSubscribe": {
        "audioUidList": {"subscribeAudioUids": ["1", "2"]},
        "videoUidList": {"unsubscribeVideoUids": ["3"]}}})
    config = folded["recordingConfig"]
    assert config["subscribeAudioUids"] == ["1", "2"]
    assert "unsubscribeAudioUids" not in config
    assert config["unsubscribeVideoUids"] == ["3"]
    assert BASE["recordingConfig"]["unsubscribeAudioUids"] == ["7"]  # input untouched
    assert folded["storageConfig"] == {"accessKey": "${S3_KEY}"}


def test_onhold_and_rtmp_outputs_go_to_their_extension_services() -> None:
    web = {"extensionServiceConfig": {"extensionServices": [
        {"serviceName": "web_recorder_service", "serviceParam": {"url": "https://x"}}]}}
    folded = fold_update(web, {"webRecordingConfig": {"onhold": True},
                               "rtmpPublishConfig": {"outputs": [{"rtmpUrl": "rtmp://y"}]}})
    services = {s["serviceName"]: s["serviceParam"]
                for s in folded["extensionServiceConfig"]["extensionServices"]}
    assert services["web_recorder_service"] == {"url": "https://x", "onhold": True}
    assert services["rtmp_publish_service"] == {"outputs": [{"rtmpUrl": "rtmp://y"}]}


def test_storage_refreshes_are_not_folded() -> None:
    assert fold_update(BASE, {"storageConfig": {"stsToken": "${STS}"}}) == BASE


def test_a_layout_replaces_the_whole_layout_and_keeps_the_rest() -> None:
    folded = fold_layout(BASE, {"mixedVideoLayout": 1, "backgroundColor": "#FFFFFF"})
    transcoding = folded["recordingConfig"]["transcodingConfig"]
    assert transcoding == {"width": 640, "mixedVideoLayout": 1, "backgroundColor": "#FFFFFF"}
    assert "layoutConfig" in LAYOUT_KEYS  # unset fields revert, as Agora does


def started(fake: FakeAgora, mode: str) -> tuple[Any, str, str]:
    client = fake.client()
    acquired = client.acquire("room-1", "900001", {})
    kind_mode, request = valid_request(mode)
    task = client.start(kind_mode, acquired.resource_id, "room-1", "900001", request)
    return client, acquired.resource_id, task.sid


@pytest.mark.parametrize(("body", "problem"), [
    ({"streamSubscribe": {"audioUidList": {"subscribeAudioUids": [str(i) for i in range(33)]}}},
     "32"),
    ({"rtmpPublishConfig": {"outputs": [{"rtmpUrl": "rtmp://a"}, {"rtmpUrl": "rtmp://b"}]}},
     "1 entry"),
])
def test_the_fake_refuses_invalid_updates_with_code_2(fake_agora: FakeAgora,
                                                      body: dict[str, Any], problem: str) -> None:
    client, rid, sid = started(fake_agora, "mix")
    with client:
        answer = client._http.post(  # bypasses our own validation: the fake must refuse
            f"{client.api_base}/v1/apps/{fake_agora.app_id}/cloud_recording/resourceid/{rid}"
            f"/sid/{sid}/mode/mix/update",
            json={"cname": "room-1", "uid": "900001", "clientRequest": body},
            headers={"Authorization": client._auth_header()})
    assert answer.status_code == 400
    assert answer.json()["code"] == 2
    assert problem in answer.json()["reason"]


def test_the_fake_refuses_an_unreadable_layout_with_1028(fake_agora: FakeAgora) -> None:
    client, rid, sid = started(fake_agora, "mix")
    with client:
        answer = client._http.post(
            f"{client.api_base}/v1/apps/{fake_agora.app_id}/cloud_recording/resourceid/{rid}"
            f"/sid/{sid}/mode/mix/updateLayout",
            json={"cname": "room-1", "uid": "900001", "clientRequest": {"mixedVideoLayout": 2}},
            headers={"Authorization": client._auth_header()})
        assert (answer.status_code, answer.json()["code"]) == (400, 1028)
        client.update_layout(rid, sid, "room-1", "900001",
                             {"mixedVideoLayout": 2, "maxResolutionUid": "5"})
    (session,) = fake_agora.running()
    assert session.layout == {"mixedVideoLayout": 2, "maxResolutionUid": "5"}


def test_an_update_of_a_finished_task_is_not_found(fake_agora: FakeAgora) -> None:
    client, rid, sid = started(fake_agora, "individual")
    fake_agora.end_session(sid)
    with client, pytest.raises(RecordingApiError) as caught:
        client.update("individual", rid, sid, "room-1", "900001",
                      {"streamSubscribe": {"audioUidList": {"subscribeAudioUids": ["1"]}}})
    assert caught.value.advice is Advice.NOT_FOUND
