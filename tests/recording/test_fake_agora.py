"""Gateway behaviour of the fake Agora server that our client never triggers on purpose."""

from __future__ import annotations

import httpx
import pytest
from support.fake_agora import FakeAgora, response_timeout_65

from handlers.recording.errors import Advice, RecordingApiError


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
