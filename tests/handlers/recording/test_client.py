"""The Cloud Recording client against the fake Agora server: every endpoint in every mode,
every error path mapped to its advice, and secrets kept out of errors, reprs and logs."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from support.recording_requests import valid_request

from handlers.recording.api_hosts import failover_bases
from handlers.recording.api_responses import RecordingServerResponse, WebServerResponse
from handlers.recording.client import CONTENT_TYPE, CloudRecordingClient
from handlers.recording.errors import Advice, RecordingApiError, RecordingNotConfigured
from handlers.recording.validation import (
    AcquireRequestInvalid,
    StartRequestInvalid,
    UpdateRequestInvalid,
)
from handlers.settings import AgoraSettings
from handlers.testing.agora_faults import (
    agora_error,
    bad_gateway,
    disconnect,
    hang,
    no_recorded_data_435,
    no_worker_502,
    rate_limited,
    response_timeout_65,
    upstream_timeout_62,
)
from handlers.testing.fake_agora import FakeAgora
from webhook.shared.clock import FakeClock

CNAME = "class-1"
UID = "900001"
BACKUP_UID = "900002"


@pytest.fixture
def client(fake_agora: FakeAgora) -> Iterator[CloudRecordingClient]:
    with fake_agora.client() as client:
        yield client


def _clock(fake: FakeAgora) -> FakeClock:
    assert isinstance(fake.clock, FakeClock)
    return fake.clock


def _start(client: CloudRecordingClient, kind: str = "mix", uid: str = UID) -> tuple[str, str]:
    mode, request = valid_request(kind)
    scene = {"scene": 1} if mode == "web" else {}
    resource = client.acquire(CNAME, uid, scene, mode=mode)
    started = client.start(mode, resource.resource_id, CNAME, uid, request)
    return resource.resource_id, started.sid


def _error(call: Any, *args: Any, **kwargs: Any) -> RecordingApiError:
    with pytest.raises(RecordingApiError) as caught:
        call(*args, **kwargs)
    return caught.value


# ------------------------------------------------------------------------ happy paths


@pytest.mark.parametrize("kind", ["individual", "screenshot_only", "screenshot_and_record",
                                  "mix", "web"])
def test_full_session_in_each_mode(fake_agora: FakeAgora, client: CloudRecordingClient,
                                   kind: str) -> None:
    mode, request = valid_request(kind)
    acquired = client.acquire(CNAME, int(UID), {"scene": 1} if mode == "web" else {"scene": 0},
                              mode=mode)
    assert acquired.cname == CNAME
    assert acquired.uid == UID
    started = client.start(mode, acquired.resource_id, CNAME, UID, request)
    assert started.sid
    assert started.resource_id == acquired.resource_id

    queried = client.query(mode, acquired.resource_id, started.sid)
    assert queried.running
    assert queried.status == 5
    assert queried.sid == started.sid
    assert queried.mode == mode

    stopped = client.stop(mode, acquired.resource_id, started.sid, CNAME, UID)
    assert stopped.uploading_status == "uploaded"
    after = _error(client.query, mode, acquired.resource_id, started.sid)
    assert after.advice is Advice.NOT_FOUND
    assert after.http_status == 404
    assert [c.endpoint for c in fake_agora.calls] == ["acquire", "start", "query", "stop",
                                                      "query"]


def test_files_are_parsed_by_mode_and_file_list_mode(client: CloudRecordingClient) -> None:
    rid, sid = _start(client, "mix")  # avFileType hls+mp4 -> fileListMode json
    files = client.query("mix", rid, sid).files
    assert [f.file_name for f in files] == [f"{sid}_{CNAME}.m3u8", f"{sid}_{CNAME}_0.mp4"]

    mode, request = valid_request("mix")
    request["recordingFileConfig"] = {"avFileType": ["hls"]}  # -> fileListMode string
    resource = client.acquire("class-2", UID)
    sid2 = client.start(mode, resource.resource_id, "class-2", UID, request).sid
    server = client.query(mode, resource.resource_id, sid2).server_response
    assert isinstance(server, RecordingServerResponse)
    assert server.file_list_mode == "string"
    assert server.playlist == f"{sid2}_class-2.m3u8"

    rid3, sid3 = _start(client, "screenshot_only", uid=BACKUP_UID)
    shots = client.query("individual", rid3, sid3).server_response
    assert isinstance(shots, RecordingServerResponse)
    assert shots.file_list_mode is None
    assert shots.files == ()

    rid4, sid4 = _start(client, "web", uid="900003")
    web = client.stop("web", rid4, sid4, CNAME, "900003").server_response
    assert isinstance(web, WebServerResponse)
    assert [f.file_name for f in web.files] == [f"{sid4}_{CNAME}_0.mp4"]


def test_update_and_update_layout(fake_agora: FakeAgora, client: CloudRecordingClient) -> None:
    rid, sid = _start(client, "mix")
    subscribe = {"streamSubscribe": {"audioUidList": {"subscribeAudioUids": ["#allstream#"]}}}
    assert client.update("mix", rid, sid, CNAME, UID, subscribe).sid == sid
    layout = {"mixedVideoLayout": 1, "backgroundColor": "#112233"}
    assert client.update_layout(rid, sid, CNAME, UID, layout).sid == sid
    session = fake_agora.sessions[sid]
    assert session.updates == [subscribe]
    assert session.layout == layout

    web_rid, web_sid = _start(client, "web", uid=BACKUP_UID)
    client.update("web", web_rid, web_sid, CNAME, BACKUP_UID,
                  {"webRecordingConfig": {"onhold": True}})
    web = client.query("web", web_rid, web_sid).server_response
    assert isinstance(web, WebServerResponse)
    recorder = web.service("web_recorder_service")
    assert recorder is not None
    assert recorder.payload.onhold is True


def test_wire_format(fake_agora: FakeAgora, client: CloudRecordingClient) -> None:
    rid, sid = _start(client, "individual")
    client.query("individual", rid, sid)
    client.stop("individual", rid, sid, CNAME, int(UID), async_stop=True)
    prefix = f"/v1/apps/{fake_agora.app_id}/cloud_recording"
    calls = fake_agora.calls
    assert [(c.method, c.path) for c in calls] == [
        ("POST", f"{prefix}/acquire"),
        ("POST", f"{prefix}/resourceid/{rid}/mode/individual/start"),
        ("GET", f"{prefix}/resourceid/{rid}/sid/{sid}/mode/individual/query"),
        ("POST", f"{prefix}/resourceid/{rid}/sid/{sid}/mode/individual/stop"),
    ]
    credentials = f"{fake_agora.customer_id}:{fake_agora.customer_secret}".encode()
    for call in calls:
        assert call.headers["content-type"] == CONTENT_TYPE == "application/json;charset=utf-8"
        assert call.headers["authorization"] == "Basic " + base64.b64encode(credentials).decode()
    assert calls[0].body == {"cname": CNAME, "uid": UID, "clientRequest": {}}
    assert calls[1].body["uid"] == UID
    assert calls[3].body == {"cname": CNAME, "uid": UID, "clientRequest": {"async_stop": True}}
    assert calls[2].body is None


# --------------------------------------------------------------- errors and their advice


def test_wrong_secret_is_401_stop(fake_agora: FakeAgora) -> None:
    with fake_agora.client(customer_secret="not-the-secret") as client:
        err = _error(client.acquire, CNAME, UID)
    assert (err.http_status, err.code, err.advice) == (401, None, Advice.STOP)
    assert err.reason == "Invalid authentication credentials"


def test_expired_resource_is_reacquire(fake_agora: FakeAgora,
                                       client: CloudRecordingClient) -> None:
    mode, request = valid_request("mix")
    rid = client.acquire(CNAME, UID).resource_id
    _clock(fake_agora).advance(301)
    err = _error(client.start, mode, rid, CNAME, UID, request)
    assert (err.http_status, err.code, err.advice) == (400, 433, Advice.REACQUIRE)
    fresh = client.acquire(CNAME, UID).resource_id
    assert client.start(mode, fresh, CNAME, UID, request).sid


def test_start_too_late_after_acquire_is_reacquire() -> None:
    with FakeAgora(clock=FakeClock(), start_deadline_s=2.0) as fake, fake.client() as client:
        mode, request = valid_request("mix")
        rid = client.acquire(CNAME, UID).resource_id
        _clock(fake).advance(3)
        assert _error(client.start, mode, rid, CNAME, UID, request).advice is Advice.REACQUIRE


def test_uid_conflict_is_new_uid(client: CloudRecordingClient) -> None:
    _start(client, "mix", uid=UID)
    mode, request = valid_request("mix")
    rid = client.acquire(CNAME, UID).resource_id
    err = _error(client.start, mode, rid, CNAME, UID, request)
    assert (err.http_status, err.code, err.advice) == (400, 53, Advice.NEW_UID)
    other = client.acquire(CNAME, BACKUP_UID).resource_id
    assert client.start(mode, other, CNAME, BACKUP_UID, request).sid


def test_second_start_is_already_running_with_its_sid(client: CloudRecordingClient) -> None:
    rid, sid = _start(client, "mix")
    mode, request = valid_request("mix")
    err = _error(client.start, mode, rid, CNAME, UID, request)
    assert (err.http_status, err.code, err.advice) == (201, 7, Advice.ALREADY_RUNNING)
    assert err.sid == sid


def test_lost_answer_65_then_retry_finds_it_running(fake_agora: FakeAgora,
                                                   client: CloudRecordingClient) -> None:
    mode, request = valid_request("mix")
    rid = client.acquire(CNAME, UID).resource_id
    fake_agora.fail_next("start", response_timeout_65(apply=True))
    err = _error(client.start, mode, rid, CNAME, UID, request)
    assert (err.http_status, err.code, err.advice) == (206, 65, Advice.RETRY_SAME)
    again = _error(client.start, mode, rid, CNAME, UID, request)
    assert again.advice is Advice.ALREADY_RUNNING
    assert again.sid == fake_agora.resources[rid].sid


@pytest.mark.parametrize(
    ("endpoint", "fault", "status", "code", "advice"),
    [
        ("start", upstream_timeout_62("start"), 500, 62, Advice.RETRY_SAME),
        ("query", upstream_timeout_62("query"), 504, 62, Advice.RETRY_SAME),
        ("query", response_timeout_65(), 206, 65, Advice.RETRY_SAME),
        ("update", response_timeout_65(), 206, 65, Advice.RETRY_SAME),
        ("updateLayout", response_timeout_65(), 206, 65, Advice.RETRY_SAME),
        ("stop", response_timeout_65(), 206, 65, Advice.RETRY_SAME),
        ("start", no_worker_502(), 500, 502, Advice.REACQUIRE),
        ("start", bad_gateway(), 502, None, Advice.RETRY_SAME),
        ("acquire", agora_error(500, 504, "allocate_timeout"), 500, 504, Advice.RETRY_SAME),
        ("acquire", agora_error(400, 406, "vendor_over_load"), 400, 406, Advice.RETRY_SAME),
        ("acquire", agora_error(400, 401, "invalid_channel_name"), 400, 401, Advice.STOP),
        ("start", agora_error(400, 2, "invalid parameter"), 400, 2, Advice.STOP),
        ("start", agora_error(400, 1001, "cannot parse resourceId"), 400, 1001,
         Advice.REACQUIRE),
        ("start", agora_error(400, 109, "token expired"), 400, 109, Advice.STOP),
        ("stop", no_recorded_data_435(), 206, 435, Advice.GONE),
        ("stop", agora_error(400, 49, "task is exiting"), 400, 49, Advice.GONE),
        ("stop", agora_error(404, 404, "failed to find worker"), 404, 404, Advice.NOT_FOUND),
    ],
)
def test_scripted_faults_map_to_advice(
    fake_agora: FakeAgora, client: CloudRecordingClient, endpoint: str, fault: Any,
    status: int, code: int | None, advice: Advice,
) -> None:
    mode, request = valid_request("mix")
    if endpoint == "start":
        rid, sid = client.acquire(CNAME, UID).resource_id, ""
    else:
        rid, sid = _start(client, "mix")
    calls = {
        "acquire": lambda: client.acquire("class-9", UID),
        "start": lambda: client.start(mode, rid, CNAME, UID, request),
        "query": lambda: client.query(mode, rid, sid),
        "update": lambda: client.update(mode, rid, sid, CNAME, UID, {}),
        "updateLayout": lambda: client.update_layout(rid, sid, CNAME, UID, {}),
        "stop": lambda: client.stop(mode, rid, sid, CNAME, UID),
    }
    fake_agora.fail_next(endpoint, fault)
    err = _error(calls[endpoint])
    assert (err.http_status, err.code, err.advice) == (status, code, advice)
    assert err.endpoint == endpoint


def test_qps_limit_gives_429_retry_same_until_the_second_passes() -> None:
    with FakeAgora(clock=FakeClock(), qps_limit=2) as fake, fake.client() as client:
        client.acquire(CNAME, UID)
        client.acquire(CNAME, UID)
        err = _error(client.acquire, CNAME, UID)
        assert (err.http_status, err.advice) == (429, Advice.RETRY_SAME)
        assert err.reason == "API rate limit exceeded"
        assert err.retry_after_s is None
        _clock(fake).advance(1.0)
        assert client.acquire(CNAME, UID).resource_id


def test_retry_after_is_offered(fake_agora: FakeAgora, client: CloudRecordingClient) -> None:
    fake_agora.fail_next("acquire", rate_limited("3"), rate_limited("Wed, 21 Oct 2015 07:28:00"))
    assert _error(client.acquire, CNAME, UID).retry_after_s == 3.0
    assert _error(client.acquire, CNAME, UID).retry_after_s is None
    assert client.acquire(CNAME, UID).resource_id


def test_failover_window_is_not_found_then_recovers(fake_agora: FakeAgora,
                                                    client: CloudRecordingClient) -> None:
    rid, sid = _start(client, "mix")
    fake_agora.failover(sid, window_s=90)
    for endpoint_call in (lambda: client.query("mix", rid, sid),
                          lambda: client.stop("mix", rid, sid, CNAME, UID)):
        assert _error(endpoint_call).advice is Advice.NOT_FOUND
    _clock(fake_agora).advance(91)
    assert client.query("mix", rid, sid).running


def test_resource_expired_hour_ends_control(fake_agora: FakeAgora,
                                            client: CloudRecordingClient) -> None:
    mode, request = valid_request("mix")
    rid = client.acquire(CNAME, UID, {"resourceExpiredHour": 1}).resource_id
    sid = client.start(mode, rid, CNAME, UID, request).sid
    _clock(fake_agora).advance(3601)
    err = _error(client.query, mode, rid, sid)
    assert (err.code, err.advice) == (433, Advice.REACQUIRE)


def test_abnormal_exit_and_silent_death(fake_agora: FakeAgora,
                                        client: CloudRecordingClient) -> None:
    rid, sid = _start(client, "mix")
    fake_agora.set_status(sid, 20)
    queried = client.query("mix", rid, sid)
    assert queried.status == 20
    assert not queried.running
    fake_agora.end_session(sid)
    assert _error(client.query, "mix", rid, sid).advice is Advice.NOT_FOUND


def test_dropped_connection_is_retry_same(fake_agora: FakeAgora,
                                          client: CloudRecordingClient) -> None:
    fake_agora.fail_next("acquire", disconnect())
    err = _error(client.acquire, CNAME, UID)
    assert (err.http_status, err.code, err.advice) == (None, None, Advice.RETRY_SAME)
    assert "network error" in err.reason


def test_timeout_is_retry_same(fake_agora: FakeAgora) -> None:
    fake_agora.fail_next("acquire", hang(30))
    with fake_agora.client(timeout_s=0.2) as client:
        err = _error(client.acquire, CNAME, UID)
    assert (err.http_status, err.advice) == (None, Advice.RETRY_SAME)
    assert "timed out" in err.reason


def test_unreachable_host_is_retry_same() -> None:
    with FakeAgora() as fake:
        base = fake.base_url
        app_id, customer_id, secret = fake.app_id, fake.customer_id, fake.customer_secret
    with CloudRecordingClient(app_id=app_id, customer_id=customer_id, customer_secret=secret,
                              api_base=base, timeout_s=2) as client:
        err = _error(client.acquire, CNAME, UID)
    assert (err.http_status, err.advice) == (None, Advice.RETRY_SAME)


def test_a_success_without_resource_id_is_stop(fake_agora: FakeAgora,
                                               client: CloudRecordingClient) -> None:
    fake_agora.fail_next("acquire", agora_error(200, 0, "odd"))
    err = _error(client.acquire, CNAME, UID)
    assert (err.http_status, err.advice) == (200, Advice.STOP)
    assert "resourceId" in err.reason


# ---------------------------------------------------------- validation before sending


def test_invalid_start_sends_nothing(fake_agora: FakeAgora, client: CloudRecordingClient) -> None:
    mode, request = valid_request("mix")
    rid = client.acquire(CNAME, UID).resource_id
    request["storageConfig"]["fileNamePrefix"] = ["with-dash"]
    with pytest.raises(StartRequestInvalid) as caught:
        client.start(mode, rid, CNAME, UID, request)
    assert caught.value.has("clientRequest.storageConfig.fileNamePrefix[0]", "charset")
    assert fake_agora.calls_to("start") == []


def test_invalid_acquire_and_update_send_nothing(fake_agora: FakeAgora,
                                                 client: CloudRecordingClient) -> None:
    with pytest.raises(AcquireRequestInvalid):
        client.acquire(CNAME, "0")
    with pytest.raises(AcquireRequestInvalid):
        client.acquire(CNAME, UID, {"scene": 0}, mode="web")
    with pytest.raises(UpdateRequestInvalid):
        client.update_layout("rid", "sid", CNAME, UID, {}, mode="individual")
    with pytest.raises(ValueError, match="mode must be one of"):
        client.query("composite", "rid", "sid")  # type: ignore[arg-type]
    assert fake_agora.calls == []


# --------------------------------------------------------------------------- secrets


def test_secrets_never_leak(fake_agora: FakeAgora, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mode, request = valid_request("individual")
    request["token"] = "RTC-TOKEN-VALUE-123"
    storage = request["storageConfig"]
    secrets = [fake_agora.customer_secret, storage["accessKey"], storage["secretKey"],
               "RTC-TOKEN-VALUE-123"]
    auth = base64.b64encode(
        f"{fake_agora.customer_id}:{fake_agora.customer_secret}".encode()).decode()
    texts: list[str] = []
    with fake_agora.client() as client:
        texts.append(repr(client))
        rid = client.acquire(CNAME, UID).resource_id
        sid = client.start(mode, rid, CNAME, UID, request).sid
        fake_agora.fail_next("start", response_timeout_65())
        for call in (lambda: client.start(mode, rid, CNAME, UID, request),
                     lambda: client.start(mode, "bogus", CNAME, UID, request)):
            err = _error(call)
            texts += [str(err), repr(err), repr(err.args), repr(vars(err))]
        fake_agora.fail_next("query", disconnect())
        err = _error(client.query, mode, rid, sid)
        texts += [str(err), repr(vars(err))]
        bad = dict(request, storageConfig=dict(storage, vendor=99))
        with pytest.raises(StartRequestInvalid) as invalid:
            client.start(mode, rid, CNAME, UID, bad)
        texts += [str(invalid.value), repr(invalid.value.problems)]
    with fake_agora.client(customer_secret=SecretStr("WRONG-SECRET-xyz")) as wrong:
        err = _error(wrong.acquire, CNAME, UID)
        texts += [str(err), repr(vars(err)), repr(wrong)]
        secrets.append("WRONG-SECRET-xyz")
    texts.append(caplog.text)
    texts += [repr(r.__dict__) for r in caplog.records]
    blob = "\n".join(texts)
    assert "cloud recording start failed" in blob
    for secret in [*secrets, auth]:
        assert secret not in blob


def test_from_settings() -> None:
    with pytest.raises(RecordingNotConfigured) as caught:
        CloudRecordingClient.from_settings(AgoraSettings(app_id="a", customer_id=None,
                                                         customer_secret=None))
    assert "AGORA_CUSTOMER_ID" in str(caught.value)
    assert "AGORA_CUSTOMER_SECRET" in str(caught.value)
    assert "AGORA_APP_ID" not in str(caught.value)
    settings = AgoraSettings(app_id="app", customer_id="cid",
                             customer_secret=SecretStr("s3cr3t"),
                             api_base="http://127.0.0.1:9/", request_timeout_s=3)
    with CloudRecordingClient.from_settings(settings) as client:
        assert client.api_base == "http://127.0.0.1:9"
        assert client.app_id == "app"
        assert "s3cr3t" not in repr(client)


def test_a_sid_with_dot_segments_is_never_sent(fake_agora: FakeAgora) -> None:
    """``..`` in a sid from a callback or a record cannot climb out of the task's URL."""
    with fake_agora.client() as client:
        for sid in ("..", "../../acquire", "x/../../y"):
            with pytest.raises(RecordingApiError) as caught:
                client.query("mix", "rid", sid)
            assert caught.value.advice is Advice.STOP
            assert "sid: must be" in str(caught.value)
        with pytest.raises(RecordingApiError, match="cname: must be"):
            client.channel_users("..")
    assert fake_agora.calls == []


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused: a network error)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(("base", "region", "fallbacks", "expected"), [
    ("https://api.sd-rtn.com", None, None, ("https://api.sd-rtn.com", "https://api.agora.io")),
    ("https://api.agora.io/", "eu-west-1", None,
     ("https://api.agora.io", "https://api.sd-rtn.com", "https://api-eu-west-1.agora.io")),
    ("https://api.sd-rtn.com", "cn-east-1", None,
     ("https://api.sd-rtn.com", "https://api.agora.io", "https://api-cn-east-1.sd-rtn.com")),
    ("http://127.0.0.1:1", None, None, ("http://127.0.0.1:1",)),
    ("http://127.0.0.1:1", None, "http://127.0.0.1:2/, http://127.0.0.1:1",
     ("http://127.0.0.1:1", "http://127.0.0.1:2")),
])
def test_the_failover_hosts_follow_agoras_ladder(base: str, region: str | None,
                                                 fallbacks: str | None,
                                                 expected: tuple[str, ...]) -> None:
    assert failover_bases(base, region, fallbacks) == expected


def test_an_unknown_region_is_a_configuration_error() -> None:
    with pytest.raises(RecordingNotConfigured, match="AGORA_API_REGION must be one of"):
        failover_bases("https://api.agora.io", "mars-1")


def test_a_network_error_fails_over_to_the_next_host(fake_agora: FakeAgora) -> None:
    dead = closed_port_url()
    with fake_agora.client(api_base=dead, api_bases=(dead, fake_agora.base_url)) as client:
        acquired = client.acquire("room-1", "900001", {})
    assert acquired.resource_id
    assert len(fake_agora.calls_to("acquire")) == 1


def test_a_5xx_fails_over_and_a_4xx_never_does() -> None:
    with FakeAgora() as first, FakeAgora(app_id=None) as second:
        second.app_id, second.customer_secret = first.app_id, first.customer_secret
        first.fail_next("acquire", bad_gateway())
        with first.client(api_bases=(first.base_url, second.base_url)) as client:
            client.acquire("room-1", "900001", {})
            assert (len(first.calls_to("acquire")), len(second.calls_to("acquire"))) == (1, 1)
            first.fail_next("acquire", agora_error(400, 2, "invalid parameter"))
            with pytest.raises(RecordingApiError) as caught:
                client.acquire("room-1", "900001", {})
            assert caught.value.advice is Advice.STOP
            assert (len(first.calls_to("acquire")), len(second.calls_to("acquire"))) == (2, 1)


def test_every_host_failing_raises_the_last_failure(fake_agora: FakeAgora) -> None:
    dead = closed_port_url()
    fake_agora.fail_next("query", bad_gateway())
    with fake_agora.client(api_bases=(fake_agora.base_url, dead)) as client, \
            pytest.raises(RecordingApiError) as caught:
        client.query("mix", "rid", "sid1")
    assert caught.value.http_status is None
    assert caught.value.advice is Advice.RETRY_SAME


@pytest.mark.parametrize("wrong", ["/wrong-prefix", ""])
def test_a_gateway_404_or_401_is_a_configuration_error_not_a_dead_task(
    fake_agora: FakeAgora, wrong: str,
) -> None:
    options: dict[str, Any] = {"api_base": fake_agora.base_url + wrong}
    if not wrong:
        options["customer_secret"] = "not-the-secret"
    with fake_agora.client(**options) as client, pytest.raises(RecordingApiError) as caught:
        client.query("mix", "rid", "sid1")
    assert caught.value.advice is Advice.STOP  # not NOT_FOUND: nothing says the task is gone
    assert caught.value.configuration
    assert "configuration error" in str(caught.value)


@pytest.mark.parametrize(("dns", "expected"), [
    (True, ["api.sd-rtn.com", "api.agora.io"]),
    (False, ["api.sd-rtn.com", "api-eu-west-1.sd-rtn.com"]),
], ids=["name-lookup-failed", "network-error"])
def test_the_other_primary_is_tried_only_after_a_failed_name_lookup(
    dns: bool, expected: list[str],
) -> None:
    """Agora's ladder (facts 2.1): primary, the other primary, a regional host; skip the
    other primary when the failure is a network error rather than DNS."""
    import socket

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "api.sd-rtn.com":
            if dns:
                raise httpx.ConnectError("[Errno -2] Name or service not known") \
                    from socket.gaierror(-2, "Name or service not known")
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return httpx.Response(200, json={"cname": "c", "uid": "1", "resourceId": "r1"})

    bases = failover_bases("https://api.sd-rtn.com", "eu-west-1")
    client = CloudRecordingClient(app_id="0123abcd", customer_id="id", customer_secret="s",
                                  api_base=bases[0], api_bases=bases,
                                  transport=httpx.MockTransport(answer))
    with client:
        assert client.acquire("c", "1").resource_id == "r1"
    assert seen == expected
