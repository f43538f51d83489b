"""The whiteboard action under the real runtime: events topic -> runner -> fake service ->
screenshots and actions topics, with the session registry read from its compacted topic."""

import json
import threading
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from pydantic import SecretStr
from support.kafka_broker import consume_all

from handlers.config import WhiteboardLink, WhiteboardRules
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.runner import ActionRunner, RunnerConfig
from handlers.runtime.state import Table
from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard, screenshot_entry
from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body
from handlers.whiteboard.action import WhiteboardCaptureAction, session_links
from handlers.whiteboard.client import HttpWhiteboardClient
from handlers.whiteboard.tokens import StaticToken
from webhook.shared.kafka_settings import TopicNames

ROOM = "a7e04e2b0cf911ecb3b8d5ea7d1eca69"
REGISTRY_ROOM = "faed3130727911ebaea37759ee91947c"
MISSING_ROOM = "0000000000000000000000000000dead"

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@pytest.fixture
def topics(kafka_bootstrap: str) -> TopicNames:
    names = TopicNames(
        events=unique_topic("wb-events"), actions=unique_topic("wb-actions"),
        screenshots=unique_topic("wb-shots"), sessions=unique_topic("wb-sessions"),
        state=unique_topic("wb-state"), dlq=unique_topic("wb-dlq"),
        quarantine=unique_topic("wb-quarantine"), files=unique_topic("wb-files"),
    )
    create_topics(kafka_bootstrap, [names.events, names.actions, names.screenshots, names.dlq])
    create_topics(kafka_bootstrap, [names.sessions, names.state],
                  configs={"cleanup.policy": "compact"})
    return names


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    yield producer
    producer.close(timeout=10)


def wait_until_consumed(bootstrap: str, group: str, topic: str, end: int) -> None:
    """Poll the group's committed offset until it reaches ``end`` (bounded)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + 60
        committed = -1
        while time.monotonic() < deadline:
            offsets = admin.list_group_offsets(group).get(group, {})
            meta = offsets.get(TopicPartition(topic, 0))
            committed = meta.offset if meta is not None else -1
            if committed >= end:
                return
            time.sleep(0.2)  # polling a broker-side state with a deadline
        raise AssertionError(f"group {group} committed {committed}, expected {end}")
    finally:
        admin.close()


def test_captures_once_per_trigger_through_the_runtime(
    kafka_bootstrap: str, topics: TopicNames, producer: KafkaProducer,
    fake_whiteboard: FakeWhiteboard,
) -> None:
    fake_whiteboard.add_room(ROOM, scenes=("/lesson/1", "/lesson/2"))
    fake_whiteboard.add_room(REGISTRY_ROOM, scenes=("/init",))
    producer.send(topics.sessions, key=b"reg-1", value=json.dumps(
        {"sid": "s-reg", "whiteboard": {"room_uuid": REGISTRY_ROOM, "region": "us-sv"}}
    ).encode())
    events = [
        ("class-1", callback_body(event_type=11, cname="class-1", sid="s-1", notice_id="a")),
        ("class-1", callback_body(event_type=11, cname="class-1", sid="s-1", notice_id="b")),
        ("class-1", callback_body(event_type=40, cname="class-1", sid="s-1")),
        ("reg-1", callback_body(event_type=11, cname="reg-1", sid="s-reg", notice_id="c")),
        ("bad-1", callback_body(event_type=11, cname="bad-1", sid="s-bad", notice_id="d")),
    ]
    for key, body in events:
        producer.send(topics.events, key=key.encode(), value=body)
    producer.flush(timeout=30)

    rules = WhiteboardRules(links=[
        WhiteboardLink(cnames=["class-*"], room_uuid=ROOM, path="/lesson", region="us-sv"),
        WhiteboardLink(cnames=["bad-*"], room_uuid=MISSING_ROOM, region="us-sv"),
    ])
    sessions = Table(topics.sessions)
    group = unique_topic("wb-group")
    stop = threading.Event()
    with HttpWhiteboardClient(fake_whiteboard.url, StaticToken(SecretStr(FAKE_TOKEN)),
                              default_region="us-sv", timeout_s=5) as client:
        action = WhiteboardCaptureAction(client, rules=rules, topics=topics,
                                         default_region="us-sv",
                                         links_lookup=session_links(sessions))
        runner = ActionRunner(
            action,
            RunnerConfig(group_id=group, transactional_id=f"{group}-0", topics=topics,
                         retry=RetryPolicy(max_attempts=3, budget_s=10, base_delay_s=0.1),
                         client_config={"bootstrap_servers": kafka_bootstrap.split(",")},
                         startup_timeout_s=60),
            metrics=RuntimeMetrics(), stop=stop, tables=[sessions],
        )
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        try:
            wait_until_consumed(kafka_bootstrap, group, topics.events, len(events))
        finally:
            stop.set()
            thread.join(timeout=60)
    assert not thread.is_alive()

    shots = consume_all(kafka_bootstrap, topics.screenshots, expected=2)
    by_key = {r.key.decode(): json.loads(r.value) for r in shots}
    assert len(shots) == 2
    assert by_key["class-1"]["screenshots"] == [
        screenshot_entry(ROOM, "/lesson/1"), screenshot_entry(ROOM, "/lesson/2")]
    assert by_key["class-1"]["noticeId"] == "a"
    assert by_key["reg-1"]["screenshots"] == [screenshot_entry(REGISTRY_ROOM, "/init")]
    assert len(fake_whiteboard.calls_to("screenshot-list")) == 3  # class-1, reg-1, bad-1

    actions = [json.loads(r.value) for r in consume_all(kafka_bootstrap, topics.actions, 4)]
    alerts = [a for a in actions if a.get("alert") is True]
    assert len(alerts) == 1
    assert (alerts[0]["cname"], alerts[0]["outcome"], alerts[0]["status"]) == (
        "bad-1", "failed", 404)
    assert "not found" in alerts[0]["error"]
