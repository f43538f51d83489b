"""Gateway behaviour of the fake Agora server that our client never triggers on purpose."""

from __future__ import annotations

import httpx
import pytest

from handlers.recording.api_responses import ChannelUsers, UnexpectedResponse, parse_channel_users
from handlers.recording.errors import Advice, RecordingApiError
from handlers.testing.agora_faults import response_timeout_65
from handlers.testing.fake_agora import FakeAgora


def test_missing_auth_unknown_route_and_bad_content_type(fake_agora: FakeAgora) -> None:
    prefix = f"{fake_agora.base_url}/v1/apps/{fake_agora.app_id}/cloud_recording"
    auth = (fake_agora.customer_id, fake_agora.customer_secret)
    body = {"cname": "c", "uid": "1", "clientRequest": {}}
    with httpx.Client() as http:
        unauthorized = http.post(f"{prefix}/acquire", json=body)
        assert (unauthorized.status_code, unauthorized.json()) == (
            401, {"message": "Unauthorized"})
        no_route = http.get(f"{prefix}/acquire", auth=auth)
        assert (no_route.status_code, no_route.json()) == (
            404, {"message": "no Route matched with those values"})
        wrong_type = http.post(f"{prefix}/acquire", content=b"{}", auth=auth,
                               headers={"Content-Type": "text/plain"})
        assert (wrong_type.status_code, wrong_type.json()["code"]) == (400, 8)
        bad_uid = http.post(f"{prefix}/acquire", json={**body, "uid": "0"}, auth=auth)
        assert (bad_uid.status_code, bad_uid.json()["code"]) == (400, 2)
    assert [c.status for c in fake_agora.calls] == [401, 404, 400, 400]
    assert [c.endpoint for c in fake_agora.calls] == ["acquire", None, "acquire", "acquire"]


def test_unknown_app_id_is_refused(fake_agora: FakeAgora) -> None:
    with fake_agora.client(app_id="0" * 32) as client, pytest.raises(RecordingApiError) as caught:
        client.acquire("c", "1")
    assert (caught.value.http_status, caught.value.reason, caught.value.advice) == (
        400, "appid is invalid", Advice.STOP)


def test_faults_are_per_endpoint_and_consumed_in_order(fake_agora: FakeAgora) -> None:
    with pytest.raises(ValueError, match="endpoint must be one of"):
        fake_agora.fail_next("acquired", response_timeout_65())
    fake_agora.fail_next("query", response_timeout_65())
    with fake_agora.client() as client:
        assert client.acquire("c", "1").resource_id, "a query fault leaves acquire alone"
    assert [c.status for c in fake_agora.calls] == [200]


def test_the_channel_user_list_as_documented(fake_agora: FakeAgora) -> None:
    with fake_agora.client() as client:
        assert client.channel_users("room-1") == ChannelUsers(exists=False)
        fake_agora.join("room-1", "1001", "1002")
        acquired = client.acquire("room-1", "900001", {})
        client.start("individual", acquired.resource_id, "room-1", "900001", {
            "recordingConfig": {"channelType": 0, "subscribeUidGroup": 0},
            "recordingFileConfig": {"avFileType": ["hls"]},
            "storageConfig": {"vendor": 1, "region": 0, "bucket": "b", "accessKey": "k",
                              "secretKey": "s"}})
        # Our recorder is in the channel like anybody else.
        assert client.channel_users("room-1") == ChannelUsers(
            True, frozenset({"1001", "1002", "900001"}), 3)
        fake_agora.leave("room-1")
        assert client.channel_users("room-1").users == {"900001"}
        fake_agora.join("live-1", "7", role="broadcasters")
        fake_agora.join("live-1", "8", "9", role="audience")
        assert client.channel_users("live-1") == ChannelUsers(
            True, frozenset({"7", "8", "9"}), 3)
    raw = httpx.get(f"{fake_agora.base_url}/dev/v1/channel/user/{fake_agora.app_id}/live-1",
                    auth=(fake_agora.customer_id, fake_agora.customer_secret)).json()
    assert raw == {"success": True, "data": {
        "channel_exist": True, "mode": 2, "total": 3, "broadcasters": [7],
        "audience": [8, 9], "audience_total": 2}}
    unauthorised = httpx.get(
        f"{fake_agora.base_url}/dev/v1/channel/user/{fake_agora.app_id}/live-1")
    assert unauthorised.status_code == 401


def test_the_channel_user_list_errors_carry_advice(fake_agora: FakeAgora) -> None:
    fake_agora.fail_next("channel_users", response_timeout_65())
    with fake_agora.client() as client, pytest.raises(RecordingApiError) as caught:
        client.channel_users("room-1")
    assert caught.value.advice is Advice.RETRY_SAME
    assert caught.value.endpoint == "channel_users"
    with fake_agora.client(customer_secret="wrong") as client, \
            pytest.raises(RecordingApiError) as refused:
        client.channel_users("room-1")
    assert (refused.value.http_status, refused.value.advice) == (401, Advice.STOP)


@pytest.mark.parametrize(("body", "problem"), [
    ({"success": True}, "data"),
    ({"success": False, "data": {"channel_exist": False}}, "success"),
    ({"success": True, "data": {}}, "channel_exist"),
    ({"success": True, "data": {"channel_exist": True, "users": "1"}}, "data.users"),
])
def test_an_unreadable_channel_user_list_is_refused(body: object, problem: str) -> None:
    with pytest.raises(UnexpectedResponse, match=problem):
        parse_channel_users(body)
