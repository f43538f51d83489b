import pytest
from click.testing import CliRunner

from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard, screenshot_entry
from handlers.whiteboard.cli import whiteboard_group
from webhook.cli import main

ROOM = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"


@pytest.fixture
def fake(fake_whiteboard: FakeWhiteboard) -> FakeWhiteboard:
    fake_whiteboard.add_room(ROOM, region="us-sv", scenes=("/init", "/test/a", "/test/b"))
    return fake_whiteboard


def env(fake: FakeWhiteboard, **extra: str) -> dict[str, str]:
    return {"WHITEBOARD_API_BASE": fake.url, "WHITEBOARD_TOKEN": FAKE_TOKEN,
            "WHITEBOARD_REGION": "us-sv", **extra}


def test_capture_prints_each_url(fake: FakeWhiteboard) -> None:
    result = CliRunner().invoke(
        main, ["whiteboard", "capture", "--room", ROOM, "--path", "/test",
               "--width", "640", "--height", "480"], env=env(fake))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [screenshot_entry(ROOM, "/test/a")["url"],
                                          screenshot_entry(ROOM, "/test/b")["url"]]
    (call,) = fake.calls
    assert call.body == {"width": 640, "height": 480, "path": "/test"}
    assert call.headers["region"] == "us-sv"


def test_capture_region_option(fake: FakeWhiteboard) -> None:
    fake.add_room("eu-room", region="eu")
    result = CliRunner().invoke(
        whiteboard_group, ["capture", "--room", "eu-room", "--path", "/", "--region", "eu"],
        env=env(fake))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == screenshot_entry("eu-room", "/init")["url"]
    assert fake.calls[0].body == {"width": 1280, "height": 720, "path": "/"}


def test_capture_failure_shows_the_service_message(fake: FakeWhiteboard) -> None:
    fake.respond(ROOM, 404, "room not found: it was deleted")
    result = CliRunner().invoke(
        whiteboard_group, ["capture", "--room", ROOM, "--path", "/test"], env=env(fake))
    assert result.exit_code == 1
    assert "room not found: it was deleted" in result.stderr
    assert "HTTP 404" in result.stderr
    assert result.stdout == ""


def test_transient_failure_says_so(fake: FakeWhiteboard) -> None:
    fake.respond(ROOM, 503, "maintenance")
    result = CliRunner().invoke(
        whiteboard_group, ["capture", "--room", ROOM, "--path", "/test"], env=env(fake))
    assert result.exit_code == 1
    assert "maintenance" in result.stderr
    assert "worth retrying" in result.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--path", "test"], "--path"), (["--path", "/", "--width", "0"], "--width"),
     (["--path", "/", "--height", "9000"], "--height")],
)
def test_bad_options_are_named_and_nothing_is_sent(
    fake: FakeWhiteboard, args: list[str], option: str
) -> None:
    result = CliRunner().invoke(
        whiteboard_group, ["capture", "--room", ROOM, *args], env=env(fake))
    assert result.exit_code == 2
    assert option in result.stderr
    assert fake.calls == []


def test_missing_credentials(fake: FakeWhiteboard) -> None:
    result = CliRunner().invoke(
        whiteboard_group, ["capture", "--room", ROOM, "--path", "/"],
        env={"WHITEBOARD_API_BASE": fake.url})
    assert result.exit_code == 2
    assert "WHITEBOARD_TOKEN" in result.stderr
    assert fake.calls == []


def test_scenes_lists_paths(fake: FakeWhiteboard) -> None:
    result = CliRunner().invoke(
        whiteboard_group, ["scenes", "--room", ROOM, "--dir", "/test"], env=env(fake))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["/test/a", "/test/b"]
