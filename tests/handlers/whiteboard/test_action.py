import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from pydantic import SecretStr

from handlers.action_contract import ActionFailed, Effects, Received, TransientError
from handlers.config import WhiteboardLink, WhiteboardRules
from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard, screenshot_entry
from handlers.testing.ncs_callbacks import callback_body
from handlers.whiteboard.action import (
    WhiteboardCaptureAction,
    session_links,
    trigger_key,
)
from handlers.whiteboard.client import HttpWhiteboardClient, WhiteboardApi
from handlers.whiteboard.models import CaptureCommand, InvalidLink, RoomLink
from handlers.whiteboard.tokens import StaticToken
from webhook.shared.clock import FakeClock
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames

ROOM = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"
REGISTRY_ROOM = "faed3130727911ebaea37759ee91947c"
SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
TOPICS = TopicNames()
NOW_MS = 1_700_000_000_000
RULES = WhiteboardRules(links=[
    WhiteboardLink(cnames=["class-*"], room_uuid=ROOM, path="/lesson", width=1280, height=720,
                   region="us-sv", on_events=[11]),
])


class MemoryState:
    """StateView over a dict; ``apply`` does what the runtime does with Effects.state."""

    def __init__(self) -> None:
        self.entries: dict[str, Mapping[str, Any]] = {}

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self.entries.get(key)

    def apply(self, effects: Effects) -> None:
        for key, value in effects.state.items():
            if value is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = value


class MemoryTable:
    """TableView over a dict (the session registry)."""

    def __init__(self, records: Mapping[str, Mapping[str, Any]]) -> None:
        self._records = dict(records)

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self._records.get(key)

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        return iter(self._records.items())


class UnusedApi:
    """decide never calls the API; any call would be a bug."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"decide called the whiteboard API ({name})")


def received(event_type: int = 11, cname: str = "class-101", sid: str = SID,
             notice_id: str | None = None, product_id: int = 3) -> Received:
    raw = callback_body(event_type=event_type, cname=cname, sid=sid, notice_id=notice_id,
                        details={"msgName": "session_exit", "exitStatus": 0})
    if product_id != 3:
        body = json.loads(raw)
        body["productId"] = product_id
        raw = json.dumps(body).encode()
    return Received(notification=parse_notification(raw), raw=raw, topic="agora.ncs.events",
                    partition=0, offset=7, headers={}, key=cname)


def action(api: WhiteboardApi | None = None, registry: Mapping[str, Mapping[str, Any]] = {},
           rules: WhiteboardRules = RULES) -> WhiteboardCaptureAction:
    return WhiteboardCaptureAction(
        api or UnusedApi(),
        rules=rules, topics=TOPICS, default_region="cn-hz",
        links_lookup=session_links(MemoryTable(registry)), clock=FakeClock(NOW_MS),
    )


# --- decide (pure) -------------------------------------------------------------------------


def test_linked_via_rules_file() -> None:
    event = received(notice_id="n-1")
    command = action().decide(event, MemoryState())
    assert command == CaptureCommand(
        cname="class-101", sid=SID, notice_id="n-1", event_type=11, room_uuid=ROOM,
        path="/lesson", width=1280, height=720, region="us-sv",
        trigger_key=trigger_key("class-101", SID, 11),
    )


def test_linked_via_session_registry_takes_precedence() -> None:
    registry = {"class-101": {"sid": SID, "whiteboard": {
        "room_uuid": REGISTRY_ROOM, "path": "/slides", "width": 640, "height": 480,
        "on_events": [11, 31]}}}
    command = action(registry=registry).decide(received(event_type=31), MemoryState())
    assert command is not None
    assert (command.room_uuid, command.path, command.width, command.height) == (
        REGISTRY_ROOM, "/slides", 640, 480)
    assert command.region == "cn-hz"  # no region in the record: the configured default


def test_registry_link_for_a_channel_no_rule_matches() -> None:
    registry = {"lobby": {"whiteboard": {"room_uuid": REGISTRY_ROOM}}}
    command = action(registry=registry).decide(received(cname="lobby"), MemoryState())
    assert command is not None
    assert (command.room_uuid, command.path, command.width, command.height) == (
        REGISTRY_ROOM, "/", 1280, 720)


def test_unlinked_channel_is_ignored() -> None:
    registry = {"other": {"whiteboard": {"room_uuid": REGISTRY_ROOM}}}
    assert action(registry=registry).decide(received(cname="lobby"), MemoryState()) is None


def test_session_record_without_whiteboard_falls_back_to_rules() -> None:
    registry = {"class-101": {"sid": SID, "mode": "mix"}}
    command = action(registry=registry).decide(received(), MemoryState())
    assert command is not None
    assert command.room_uuid == ROOM


def test_malformed_registry_link_falls_back_to_rules() -> None:
    registry = {"class-101": {"whiteboard": {"room_uuid": ROOM, "width": "wide"}}}
    command = action(registry=registry).decide(received(), MemoryState())
    assert command is not None
    assert command.path == "/lesson"


@pytest.mark.parametrize("event_type", [1, 30, 31, 40, 41])
def test_non_trigger_event_is_ignored(event_type: int) -> None:
    assert action().decide(received(event_type=event_type), MemoryState()) is None


@pytest.mark.parametrize("product_id", [1, 4, 5])
def test_same_event_number_of_another_product_is_ignored(product_id: int) -> None:
    # e.g. an RTC (1) or Media Push (5) event numbered 11 on a linked channel
    assert action().decide(received(product_id=product_id), MemoryState()) is None
    assert action().decide(received(product_id=3), MemoryState()) is not None


def test_duplicate_trigger_is_ignored_whatever_its_notice_id() -> None:
    state = MemoryState()
    state.entries[trigger_key("class-101", SID, 11)] = {"status": "captured"}
    assert action().decide(received(notice_id="redundant-copy"), state) is None
    # Another session of the same channel is a new trigger.
    assert action().decide(received(sid="another-sid"), state) is not None


def test_trigger_failed_for_good_is_not_retried_by_duplicates() -> None:
    state = MemoryState()
    state.entries[trigger_key("class-101", SID, 11)] = {"status": "failed"}
    assert action().decide(received(), state) is None


def test_event_without_sid_is_ignored() -> None:
    assert action().decide(received(sid=""), MemoryState()) is None


def test_trigger_key_is_unambiguous() -> None:
    assert trigger_key("a/b", "c", 11) != trigger_key("a", "b/c", 11)
    assert json.loads(trigger_key('x"y', SID, 11).removeprefix("capture/")) == ['x"y', SID, 11]


def test_rule_out_of_range_fails_at_construction() -> None:
    rules = WhiteboardRules(links=[
        WhiteboardLink(cnames=["*"], room_uuid=ROOM, path="lesson")])
    with pytest.raises(InvalidLink, match=r"whiteboard\.links\[0\]\.path"):
        action(rules=rules)


def test_registry_link_errors_name_the_field() -> None:
    lookup = session_links(MemoryTable({"c": {"whiteboard": {"room_uuid": ROOM,
                                                             "height": 0}}}))
    with pytest.raises(InvalidLink, match="height"):
        lookup("c")
    assert session_links(MemoryTable({}))("c") is None


def test_room_link_defaults() -> None:
    assert RoomLink(room_uuid=ROOM).on_events == frozenset({11})


# --- run (against the fake service) ---------------------------------------------------------


@pytest.fixture
def fake(fake_whiteboard: FakeWhiteboard) -> FakeWhiteboard:
    fake_whiteboard.add_room(ROOM, region="us-sv",
                             scenes=("/init", "/lesson/1", "/lesson/2", "/lesson/x/3"))
    return fake_whiteboard


@pytest.fixture
def live(fake: FakeWhiteboard) -> Iterator[WhiteboardCaptureAction]:
    client = HttpWhiteboardClient(fake.url, StaticToken(SecretStr(FAKE_TOKEN)),
                                  default_region="cn-hz", timeout_s=5)
    with client:
        yield action(api=client)


def command(notice_id: str = "n-1") -> CaptureCommand:
    found = action().decide(received(notice_id=notice_id), MemoryState())
    assert found is not None
    return found


def test_capture_publishes_screenshots_and_records_the_trigger(
    live: WhiteboardCaptureAction, fake: FakeWhiteboard
) -> None:
    effects = live.run(command())
    (output,) = effects.outputs
    assert (output.topic, output.key) == ("agora.whiteboard.screenshots", "class-101")
    assert dict(output.headers) == {"noticeId": "n-1", "sid": SID, "schema-version": "1"}
    assert json.loads(output.value) == {
        "schema_version": "1", "cname": "class-101", "sid": SID, "noticeId": "n-1",
        "eventType": 11, "room_uuid": ROOM, "path": "/lesson",
        "captured_at": "2023-11-14T22:13:20.000Z",
        "screenshots": [screenshot_entry(ROOM, "/lesson/1"), screenshot_entry(ROOM, "/lesson/2")],
    }
    assert effects.state == {trigger_key("class-101", SID, 11): {
        "status": "captured", "noticeId": "n-1", "at": "2023-11-14T22:13:20.000Z",
        "screenshots": 2}}
    (call,) = fake.calls
    assert call.body == {"width": 1280, "height": 720, "path": "/lesson"}
    assert call.headers["region"] == "us-sv"


def test_one_capture_per_trigger_across_duplicates(
    live: WhiteboardCaptureAction, fake: FakeWhiteboard
) -> None:
    state = MemoryState()
    for notice_id in ("n-1", "n-1", "redundant-n-2"):
        found = live.decide(received(notice_id=notice_id), state)
        if found is not None:
            state.apply(live.run(found))
    assert len(fake.calls_to("screenshot-list")) == 1


@pytest.mark.parametrize("status", [429, 500])
def test_throttled_or_server_error_is_transient(
    live: WhiteboardCaptureAction, fake: FakeWhiteboard, status: int
) -> None:
    fake.respond(ROOM, status, "busy", retry_after="2")
    with pytest.raises(TransientError, match="busy") as info:
        live.run(command())
    assert info.value.retry_after_s == 2.0


@pytest.mark.parametrize("status", [401, 404])
def test_permanent_error_fails_with_an_alert_and_marks_the_trigger(
    live: WhiteboardCaptureAction, fake: FakeWhiteboard, status: int
) -> None:
    fake.respond(ROOM, status, f"service says {status}")
    with pytest.raises(ActionFailed) as info:
        live.run(command())
    effects = info.value.effects
    (alert,) = effects.outputs
    assert (alert.topic, alert.key) == ("agora.actions", "class-101")
    value = json.loads(alert.value)
    assert value | {"at": None} == {
        "schema_version": "1", "handler": "whiteboard", "action": "screenshot-list",
        "outcome": "failed", "alert": True, "cname": "class-101", "sid": SID,
        "noticeId": "n-1", "eventType": 11, "room_uuid": ROOM, "path": "/lesson",
        "status": status, "error": f"service says {status}", "at": None,
    }
    assert value["at"] == 1_700_000_000_000  # Unix ms, like every agora.actions record
    assert dict(alert.headers)["record-type"] == "report"
    assert effects.state == {trigger_key("class-101", SID, 11): {
        "status": "failed", "noticeId": "n-1", "at": "2023-11-14T22:13:20.000Z",
        "http_status": status, "error": f"service says {status}"}}


def test_failed_trigger_is_not_captured_again(
    live: WhiteboardCaptureAction, fake: FakeWhiteboard
) -> None:
    fake.respond(ROOM, 403, "forbidden")
    state = MemoryState()
    with pytest.raises(ActionFailed) as info:
        live.run(command())
    state.apply(info.value.effects)
    assert live.decide(received(notice_id="n-2"), state) is None
    assert len(fake.calls) == 1


def test_the_console_health_check_triggers_no_capture() -> None:
    """The console's "Check" sends synthetic callbacks on channel test_webhook (facts
    1.1): published by the webhook, never acted on, even where a link matches."""
    catch_all = WhiteboardRules(links=[WhiteboardLink(cnames=["*"], room_uuid=ROOM)])
    assert action(rules=catch_all).decide(received(cname="class-9"), MemoryState()) is not None
    assert action(rules=catch_all).decide(received(cname="test_webhook"),
                                          MemoryState()) is None
