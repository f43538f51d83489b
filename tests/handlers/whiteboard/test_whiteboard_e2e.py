"""End to end: signed NCS callbacks posted to the real webhook (gunicorn) -> Kafka -> a real
``agora-events handlers whiteboard notify`` process -> the fake whiteboard service, and for
failures an alert at a fake sink.

Starting the webhook and the handler process is most of the cost, so one of each (with one
set of topics, one fake whiteboard and one fake sink) serves the whole module. Every test
uses its own channels and rooms, and waits until the handlers have committed past
everything it posted before it asserts, so "nothing else happened" is a real check.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.figures import Figure
from support.rules_files import webhook_sink
from support.runtime_helpers import committed_offsets, header, read_to_end

from handlers.contracts.record_shapes import ActionReport, ScreenshotsRecord
from handlers.recording.session_registry import SessionWriter
from handlers.testing.agora_recordings import registered
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fake_whiteboard import FAKE_TOKEN, Call, FakeWhiteboard, screenshot_entry
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import (
    WebhookProcess,
    console_script,
    run_webhook,
    terminate_group,
)
from webhook.shared.kafka_settings import TopicNames

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(150)]

DEFAULT_REGION = "us-sv"
RULE_ROOM = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"
REGISTRY_ROOM = "faed3130727911ebaea37759ee91947c"
RETRY_ROOM = "3c1f9b2e6a7d4e0f8b5c2d1e0f9a8b7c"
DENIED_ROOM = "5d2e8c1b7a6f4e3d9c8b7a6f5e4d3c2b"
MISSING_ROOM = "0000000000000000000000000000dead"  # the fake does not know it: 404

MODULE_TAG = uuid.uuid4().hex[:8]
# Registry records are written before the handlers start, so their cnames are fixed here.
REGISTRY_CNAME = f"wb-reg-{MODULE_TAG}"
UNLINKED_REGISTRY_CNAME = f"wb-plain-{MODULE_TAG}"
REGISTRY_SID = "sid-reg-" + MODULE_TAG

OPS_SECRET = "whsec_" + base64.b64encode(b"whiteboard-e2e-sink-key").decode()
RULE = "whiteboard-failed"

RULES_TOML = f"""
[[whiteboard.links]]
cnames = ["wb-rule-*"]
room_uuid = "{RULE_ROOM}"
path = "/lesson"
width = 1920
height = 1080
# no region: WHITEBOARD_REGION applies

[[whiteboard.links]]
cnames = ["wb-retry-*"]
room_uuid = "{RETRY_ROOM}"
region = "{DEFAULT_REGION}"

[[whiteboard.links]]
cnames = ["wb-denied-*"]
room_uuid = "{DENIED_ROOM}"

[[whiteboard.links]]
cnames = ["wb-missing-*"]
room_uuid = "{MISSING_ROOM}"
""" + webhook_sink("${OPS_HOOK_SECRET}", url="${OPS_HOOK_URL}") + f"""
[[alerts.rules]]
name = "{RULE}"
outcomes = ["whiteboard failed"]
sinks = ["ops"]
"""


def tag() -> str:
    return uuid.uuid4().hex[:8]


def exit_body(cname: str, sid: str, notice_id: str | None = None) -> bytes:
    """session_exit (eventType 11), the default trigger of a link."""
    return callback_body(event_type=11, cname=cname, sid=sid, notice_id=notice_id,
                         details={"msgName": "session_exit", "exitStatus": 0})


def of_product(body: bytes, product_id: int) -> bytes:
    """The same callback as another NCS product would number it."""
    value = json.loads(body)
    value["productId"] = product_id
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Stack:
    bootstrap: str
    topics: TopicNames
    prefix: str
    fake: FakeWhiteboard
    sinks: FakeSinks
    webhook: WebhookProcess
    process: subprocess.Popen[bytes]
    log_path: Path

    def post(self, body: bytes) -> None:
        response = httpx.post(self.webhook.ncs_url, content=body, headers=signed(body),
                              timeout=10)
        assert response.status_code == 200, response.text

    def wait(self, predicate: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
        """Poll until ``predicate``; fail at once if the handler process died."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"handlers exited with {self.process.returncode} while waiting for "
                    f"{what}:\n{self.log_path.read_text(errors='replace')}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {timeout_s:g}s")
            time.sleep(0.1)

    def committed(self, action: str, topic: str) -> int:
        offset = committed_offsets(self.bootstrap, f"{self.prefix}.{action}", topic).get(0)
        return -1 if offset is None else offset

    def settle_whiteboard(self) -> None:
        """Wait until the whiteboard handler committed every event posted so far."""
        end = len(read_to_end(self.bootstrap, self.topics.events))
        if end == 0:
            return  # nothing posted yet (the group has no offset to wait for)
        self.wait(lambda: self.committed("whiteboard", self.topics.events) >= end,
                  f"whiteboard committed {end} events")

    def settle_notify(self, *cnames: str) -> None:
        """Wait until notify committed past every whiteboard record of ``cnames`` on the
        actions topic (alerts are delivered before that commit)."""
        last = max(r.offset for r in self.records(self.topics.actions, *cnames)
                   if is_whiteboard(json.loads(r.value)))
        self.wait(lambda: self.committed("notify", self.topics.actions) > last,
                  f"notify committed past offset {last} of the actions topic")

    def records(self, topic: str, *cnames: str) -> list[Any]:
        return [r for r in read_to_end(self.bootstrap, topic)
                if r.key is not None and r.key.decode() in cnames]

    def actions(self, cname: str) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in self.records(self.topics.actions, cname)]

    def room_calls(self, room: str) -> list[Call]:
        return [c for c in self.fake.calls if c.room == room]


def is_whiteboard(value: dict[str, Any]) -> bool:
    """A record of the whiteboard handler: its own outcome, or the runtime's for it."""
    return "whiteboard" in (value.get("handler"), value.get("action"))


def runtime_outcomes(actions: list[dict[str, Any]]) -> list[str]:
    """The runtime's outcome kinds for the whiteboard action, in order."""
    return [a["outcome"] for a in actions if a.get("action") == "whiteboard"
            and "handler" not in a]


def own_failures(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in actions if a.get("handler") == "whiteboard"]


def register_sessions(bootstrap: str, topic: str) -> None:
    """One session linked to a room (in another region than the default), one without."""
    writer = SessionWriter({"bootstrap_servers": bootstrap}, topic)
    try:
        writer.publish(registered(REGISTRY_CNAME, sid=REGISTRY_SID, whiteboard={
            "room_uuid": REGISTRY_ROOM, "region": "gb-lon", "on_events": [11]}))
        writer.publish(registered(UNLINKED_REGISTRY_CNAME, sid="sid-plain"))
    finally:
        writer.close()


def start_handlers(stack_env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    # Nothing from the developer's own WHITEBOARD_*/AGORA_* settings may leak in.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WHITEBOARD_", "AGORA_"))}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [console_script("agora-events"), "handlers", "--instance-id", "wb-e2e",
             "whiteboard", "notify"],
            env={**base, **stack_env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_handlers(process: subprocess.Popen[bytes], log_path: Path) -> None:
    if not terminate_group(process, timeout_s=40):
        raise AssertionError(f"handlers ignored SIGTERM:\n{log_path.read_text()}")
    assert process.returncode == 0, log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("whiteboard-e2e")
    topics = unique_topics(kafka_bootstrap)
    register_sessions(kafka_bootstrap, topics.sessions)
    rules = tmp / "rules.toml"
    rules.write_text(RULES_TOML, encoding="utf-8")
    prefix = f"wb-e2e-{MODULE_TAG}"
    log_path = tmp / "handlers.log"
    with FakeWhiteboard() as fake, FakeSinks() as sinks, \
            run_webhook(kafka_bootstrap, tmp, env=topics_env(topics)) as webhook:
        fake.add_room(RULE_ROOM, region=DEFAULT_REGION,
                      scenes=("/lesson/1", "/lesson/2", "/other/x"))
        fake.add_room(REGISTRY_ROOM, region="gb-lon", scenes=("/init",))
        fake.add_room(RETRY_ROOM, region=DEFAULT_REGION, scenes=("/init",))
        fake.add_room(DENIED_ROOM, region=DEFAULT_REGION, scenes=("/init",))
        process = start_handlers({
            **topics_env(topics),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "AGORA_HANDLERS_GROUP_PREFIX": prefix,
            "AGORA_HANDLERS_METRICS_PORT": "0",
            "AGORA_EVENTS_CONFIG": str(rules),
            "WHITEBOARD_API_BASE": fake.url,
            "WHITEBOARD_TOKEN": FAKE_TOKEN,
            "WHITEBOARD_REGION": DEFAULT_REGION,
            "OPS_HOOK_URL": sinks.webhook_url("ops", OPS_SECRET),
            "OPS_HOOK_SECRET": OPS_SECRET,
        }, log_path)
        try:
            yield Stack(kafka_bootstrap, topics, prefix, fake, sinks, webhook, process,
                        log_path)
        finally:
            stop_handlers(process, log_path)


def test_a_rule_linked_trigger_captures_once_though_posted_three_times(
    stack: Stack, figure: Figure
) -> None:
    cname, sid, notice = f"wb-rule-{tag()}", uuid.uuid4().hex, f"n-{tag()}"
    body = exit_body(cname, sid, notice)
    started = time.monotonic()
    for _ in range(3):  # NCS re-posts a notice it thinks was not received
        stack.post(body)
    stack.post(callback_body(event_type=40, cname=cname, sid=sid))  # not a trigger
    stack.wait(lambda: bool(stack.records(stack.topics.screenshots, cname)), "a capture")
    figure("whiteboard e2e capture", seconds_post_to_record=round(time.monotonic() - started, 2))
    stack.settle_whiteboard()

    (call,) = stack.room_calls(RULE_ROOM)
    assert (call.method, call.endpoint) == ("POST", "screenshot-list")
    assert call.headers["token"] == FAKE_TOKEN
    assert call.headers["region"] == DEFAULT_REGION  # the rule names none
    assert call.body == {"width": 1920, "height": 1080, "path": "/lesson"}

    (record,) = stack.records(stack.topics.screenshots, cname)
    value = json.loads(record.value)
    ScreenshotsRecord.model_validate(value)
    assert record.key.decode() == cname
    assert (value["cname"], value["sid"], value["noticeId"], value["eventType"]) == (
        cname, sid, notice, 11)
    assert (value["room_uuid"], value["path"]) == (RULE_ROOM, "/lesson")
    assert value["screenshots"] == [screenshot_entry(RULE_ROOM, "/lesson/1"),
                                    screenshot_entry(RULE_ROOM, "/lesson/2")]
    assert (header(record, "noticeId"), header(record, "sid")) == (notice, sid)
    actions = stack.actions(cname)
    assert runtime_outcomes(actions) == ["ok"]
    assert own_failures(actions) == []


def test_a_registry_linked_trigger_captures_once_across_reposts_and_redundant_notices(
    stack: Stack,
) -> None:
    cname, notice = REGISTRY_CNAME, f"n-{tag()}"
    body = exit_body(cname, REGISTRY_SID, notice)
    for _ in range(3):
        stack.post(body)
    # The redundant NCS channel: the same event under another noticeId.
    stack.post(exit_body(cname, REGISTRY_SID))
    stack.settle_whiteboard()

    (call,) = stack.room_calls(REGISTRY_ROOM)
    assert call.endpoint == "screenshot-list"
    assert call.headers["token"] == FAKE_TOKEN
    assert call.headers["region"] == "gb-lon"  # the session's link, not the default
    assert call.body == {"width": 1280, "height": 720, "path": "/"}
    (record,) = stack.records(stack.topics.screenshots, cname)
    value = json.loads(record.value)
    assert (value["sid"], value["noticeId"]) == (REGISTRY_SID, notice)
    assert value["screenshots"] == [screenshot_entry(REGISTRY_ROOM, "/init")]
    assert runtime_outcomes(stack.actions(cname)) == ["ok"]


def test_unlinked_channels_cause_no_request_and_no_record(stack: Stack) -> None:
    stack.settle_whiteboard()
    calls_before = len(stack.fake.calls)
    unlinked = f"wb-free-{tag()}"  # no rule matches, not in the registry
    stack.post(exit_body(unlinked, uuid.uuid4().hex))
    stack.post(exit_body(UNLINKED_REGISTRY_CNAME, "sid-plain"))  # registered, no link
    # A linked channel, but Media Push's event 11 is not Cloud Recording's session_exit.
    other = f"wb-rule-{tag()}"
    stack.post(of_product(exit_body(other, uuid.uuid4().hex), 5))
    stack.settle_whiteboard()

    assert len(stack.fake.calls) == calls_before
    cnames = (unlinked, UNLINKED_REGISTRY_CNAME, other)
    assert stack.records(stack.topics.screenshots, *cnames) == []
    assert len(stack.records(stack.topics.events, *cnames)) == 3  # all were published
    for cname in cnames:
        assert [a for a in stack.actions(cname) if is_whiteboard(a)] == []


def test_429_then_500_are_retried_and_the_capture_succeeds_once(
    stack: Stack, figure: Figure
) -> None:
    stack.fake.respond(RETRY_ROOM, 429, "too many requests", retry_after="2")
    stack.fake.respond(RETRY_ROOM, 500, "internal error")
    cname, sid, notice = f"wb-retry-{tag()}", uuid.uuid4().hex, f"n-{tag()}"
    started = time.monotonic()
    stack.post(exit_body(cname, sid, notice))
    stack.post(exit_body(cname, sid, notice))  # a duplicate waits behind the retried one
    stack.wait(lambda: bool(stack.records(stack.topics.screenshots, cname)), "a capture")
    figure("whiteboard e2e 429+500 retried", seconds_post_to_record=round(
        time.monotonic() - started, 2))
    stack.settle_whiteboard()

    calls = stack.room_calls(RETRY_ROOM)
    assert [c.endpoint for c in calls] == ["screenshot-list"] * 3  # 429, 500, 201
    assert all(c.body == {"width": 1280, "height": 720, "path": "/"} for c in calls)
    (record,) = stack.records(stack.topics.screenshots, cname)
    assert json.loads(record.value)["screenshots"] == [screenshot_entry(RETRY_ROOM, "/init")]
    actions = stack.actions(cname)
    assert runtime_outcomes(actions) == ["retrying", "retrying", "ok"]
    first_retry = next(a for a in actions if a.get("outcome") == "retrying")
    assert first_retry["retry_in_s"] >= 2.0  # the 429's Retry-After is a floor
    assert own_failures(actions) == []
    assert stack.records(stack.topics.dlq, cname) == []


def test_401_and_404_fail_once_with_one_alert_each_and_no_retries(stack: Stack) -> None:
    stack.fake.respond(DENIED_ROOM, 401, "token has expired")  # a retry would then succeed
    denied, missing = f"wb-denied-{tag()}", f"wb-missing-{tag()}"
    for _ in range(2):  # duplicates of a failed trigger must not call again
        stack.post(exit_body(denied, "sid-denied", "n-denied-" + denied))
        stack.post(exit_body(missing, "sid-missing", "n-missing-" + missing))
    stack.settle_whiteboard()
    stack.wait(lambda: len(stack.sinks.attempts("ops")) >= 2, "two alerts")
    stack.settle_notify(denied, missing)

    assert [c.endpoint for c in stack.room_calls(DENIED_ROOM)] == ["screenshot-list"]
    assert [c.endpoint for c in stack.room_calls(MISSING_ROOM)] == ["screenshot-list"]
    assert stack.records(stack.topics.screenshots, denied, missing) == []
    attempts = stack.sinks.attempts("ops")
    assert all(a.accepted and not a.problems for a in attempts), attempts
    alerts = {a.json["data"]["cname"]: a.json for a in attempts}
    assert len(attempts) == len(alerts) == 2

    for cname, status in ((denied, 401), (missing, 404)):
        actions = stack.actions(cname)
        assert runtime_outcomes(actions) == ["failed"]  # given up at once: no "retrying"
        (failure,) = own_failures(actions)
        assert (failure["outcome"], failure["status"], failure["alert"]) == (
            "failed", status, True)
        ActionReport.model_validate(failure)
        assert stack.records(stack.topics.dlq, cname) == []
        alert = alerts[cname]
        assert alert["type"] == "agora.alert.triggered"
        assert (alert["data"]["rule"], alert["data"]["component"]) == (RULE, "whiteboard")
        assert (alert["data"]["details"]["status"], alert["data"]["sid"]) == (
            status, failure["sid"])
        assert failure["error"] in alert["data"]["summary"]
        notified = [a for a in actions if a.get("handler") == "notify"]
        assert [(n["outcome"], n["alerts"][0]["delivered"]) for n in notified] == [
            ("notified", ["ops"])]
