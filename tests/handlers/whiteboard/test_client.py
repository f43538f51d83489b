import socket
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard, screenshot_entry
from handlers.whiteboard.client import HttpWhiteboardClient, WhiteboardError
from handlers.whiteboard.models import InvalidCaptureRequest, Screenshot
from handlers.whiteboard.tokens import GeneratedSdkToken, StaticToken

ROOM = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"
SCENES = ("/init", "/test/cover", "/test/page1", "/test/nested/deep")


def make_client(url: str, token: str = FAKE_TOKEN, *, region: str = "us-sv",
                timeout_s: float = 5) -> HttpWhiteboardClient:
    return HttpWhiteboardClient(url, StaticToken(SecretStr(token)), default_region=region,
                                timeout_s=timeout_s)


def failure(client: HttpWhiteboardClient, room: str = ROOM) -> WhiteboardError:
    """The error of one screenshot-list call that must fail."""
    with client, pytest.raises(WhiteboardError) as info:
        client.screenshot_list(room, path="/test", width=640, height=480)
    return info.value


@pytest.fixture
def fake(fake_whiteboard: FakeWhiteboard) -> FakeWhiteboard:
    fake_whiteboard.add_room(ROOM, region="us-sv", scenes=SCENES)
    return fake_whiteboard


@pytest.fixture
def client(fake: FakeWhiteboard) -> Iterator[HttpWhiteboardClient]:
    with make_client(fake.url) as client:
        yield client


def test_screenshot_list_returns_one_typed_entry_per_direct_scene(
    client: HttpWhiteboardClient, fake: FakeWhiteboard
) -> None:
    shots = client.screenshot_list(ROOM, path="/test", width=640, height=480)
    assert shots == [Screenshot(**screenshot_entry(ROOM, "/test/cover")),
                     Screenshot(**screenshot_entry(ROOM, "/test/page1"))]
    (call,) = fake.calls
    assert (call.method, call.path) == ("POST", f"/v5/rooms/{ROOM}/screenshot-list")
    assert call.headers["token"] == FAKE_TOKEN
    assert call.headers["region"] == "us-sv"
    assert call.headers["content-type"] == "application/json"
    assert call.body == {"width": 640, "height": 480, "path": "/test"}


def test_explicit_region_overrides_default(fake: FakeWhiteboard) -> None:
    fake.add_room("eu-room", region="eu", scenes=("/init",))
    with make_client(fake.url) as client:
        shots = client.screenshot_list("eu-room", path="/", width=10, height=10, region="eu")
    assert [s.key for s in shots] == [screenshot_entry("eu-room", "/init")["key"]]
    assert fake.calls[-1].headers["region"] == "eu"


def test_single_screenshot(client: HttpWhiteboardClient) -> None:
    shot = client.screenshot(ROOM, path="/test/page1", width=100, height=50)
    assert shot == Screenshot(**screenshot_entry(ROOM, "/test/page1"))


def test_room_and_scene_lookups(client: HttpWhiteboardClient, fake: FakeWhiteboard) -> None:
    room = client.room(ROOM)
    scenes = client.scenes(ROOM, scene_dir="/test")
    assert (room.uuid, room.is_ban, room.limit) == (ROOM, False, 0)
    assert scenes == ["/test/cover", "/test/page1"]
    assert fake.calls[-1].query == {"sceneDir": "/test"}


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_permanent_and_carry_the_message(
    client: HttpWhiteboardClient, fake: FakeWhiteboard, status: int
) -> None:
    fake.respond(ROOM, status, f"refused with {status}")
    with pytest.raises(WhiteboardError) as info:
        client.screenshot_list(ROOM, path="/test", width=640, height=480)
    assert (info.value.status, info.value.retryable) == (status, False)
    assert info.value.message == f"refused with {status}"
    assert f"refused with {status}" in str(info.value)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_throttling_and_server_errors_are_retryable(
    client: HttpWhiteboardClient, fake: FakeWhiteboard, status: int
) -> None:
    fake.respond(ROOM, status, "try later", retry_after="3")
    with pytest.raises(WhiteboardError) as info:
        client.screenshot_list(ROOM, path="/test", width=640, height=480)
    assert (info.value.status, info.value.retryable) == (status, True)
    assert info.value.retry_after_s == 3.0
    assert info.value.message == "try later"


def test_scripted_answers_are_consumed_in_order(
    client: HttpWhiteboardClient, fake: FakeWhiteboard
) -> None:
    fake.respond(ROOM, 500, "first")
    with pytest.raises(WhiteboardError, match="first"):
        client.screenshot_list(ROOM, path="/test", width=640, height=480)
    assert len(client.screenshot_list(ROOM, path="/test", width=640, height=480)) == 2


def test_real_auth_and_lookup_failures(fake: FakeWhiteboard) -> None:
    unauthorised = failure(make_client(fake.url, "wrong-token"))
    wrong_region = failure(make_client(fake.url, region="sg"))
    assert (unauthorised.status, unauthorised.message) == (401, "token is missing or invalid")
    assert "wrong-token" not in str(unauthorised)  # the token never shows in errors
    assert wrong_region.status == 404


def test_error_body_without_json_message(client: HttpWhiteboardClient,
                                         fake: FakeWhiteboard) -> None:
    fake.respond(ROOM, 400, body={"code": 7})
    with pytest.raises(WhiteboardError) as info:
        client.screenshot_list(ROOM, path="/test", width=640, height=480)
    assert info.value.message == '{"code": 7}'


def test_malformed_success_body_is_permanent(client: HttpWhiteboardClient,
                                             fake: FakeWhiteboard) -> None:
    fake.respond(ROOM, 201, body=[{"url": "https://x", "key": "k"}])
    with pytest.raises(WhiteboardError) as info:
        client.screenshot_list(ROOM, path="/test", width=640, height=480)
    assert info.value.retryable is False
    assert "0.bucket" in info.value.message


def test_timeout_is_retryable(fake: FakeWhiteboard) -> None:
    fake.hang(ROOM)
    error = failure(make_client(fake.url, timeout_s=0.2))
    assert (error.status, error.retryable) == (None, True)
    assert "timed out" in error.message


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = failure(make_client(f"http://127.0.0.1:{port}", timeout_s=2))
    assert (error.status, error.retryable) == (None, True)
    assert "connection failed" in error.message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width": 0}, "width"),
        ({"width": 8193}, "width"),
        ({"width": True}, "width"),
        ({"height": "720"}, "height"),
        ({"height": -1}, "height"),
        ({"path": "test"}, "path"),
        ({"path": ""}, "path"),
    ],
)
def test_invalid_parameters_are_named_and_nothing_is_sent(
    client: HttpWhiteboardClient, fake: FakeWhiteboard, kwargs: dict[str, object], field: str
) -> None:
    params: dict[str, object] = {"path": "/test", "width": 640, "height": 480, **kwargs}
    with pytest.raises(InvalidCaptureRequest) as info:
        client.screenshot_list(ROOM, **params)  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: expected")
    assert fake.calls == []


def test_room_uuid_cannot_escape_the_url_path(client: HttpWhiteboardClient,
                                              fake: FakeWhiteboard) -> None:
    with pytest.raises(InvalidCaptureRequest) as info:
        client.screenshot_list("../tokens", path="/", width=1, height=1)
    assert info.value.field == "room_uuid"
    with pytest.raises(InvalidCaptureRequest, match="scene_dir"):
        client.scenes(ROOM, scene_dir="test")
    assert fake.calls == []


def test_generated_sdk_token_is_accepted() -> None:
    with FakeWhiteboard(token="unused", sdk_keys=("AK1", "SK1")) as fake:
        fake.add_room(ROOM, scenes=SCENES)
        tokens = GeneratedSdkToken("AK1", SecretStr("SK1"))
        with HttpWhiteboardClient(fake.url, tokens, default_region="us-sv") as client:
            assert client.room(ROOM).uuid == ROOM
        bad = GeneratedSdkToken("AK1", SecretStr("other-secret"))
        error = failure(HttpWhiteboardClient(fake.url, bad, default_region="us-sv"))
    assert error.status == 401
    assert fake.calls[0].headers["token"].startswith("NETLESSSDK_")
