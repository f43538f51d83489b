"""End to end on the real broker: a channel that keeps failing ends with one ``gave_up``
outcome on ``agora.actions`` and exactly one alert at a sink.

The restart action and the notify handler run under the real runtime, each in its own
runner (consumer group, transactions), against the fake Agora and a fake webhook sink;
NCS callbacks go to the events topic as the webhook publishes them, NCS retries and the
redundant channel included. With ``max_restarts = 1``, the first failure is restarted
(through a refused resourceId, 433); the replacement task dies too, and that failure hits
the cap."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from support.figures import Figure
from support.rules_files import webhook_sink
from support.runtime_helpers import fast_config, json_values, read_to_end, running, wait_until

from handlers.config import RecordingRules, RestartRules, parse_rules
from handlers.notify.action import NotifyAction
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import (
    SessionWriter,
    TableSessions,
    parse_session,
    task_key,
)
from handlers.runtime.runner import RunnerExit
from handlers.runtime.state import Table
from handlers.testing.agora_faults import agora_error
from handlers.testing.agora_recordings import BACKUP_UID, ENV, PROFILE, UID, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fresh_topics import unique_topics
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.clock import SystemClock
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

SECRET = "e2e-signing-secret"
RULES = webhook_sink(SECRET) + """
[[alerts.rules]]
name = "restart-gave-up"
outcomes = ["restart gave up"]
sinks = ["ops"]
"""



def publish(bootstrap: str, topic: str, bodies: list[bytes]) -> None:
    """The callbacks as the webhook publishes them (key cname, headers, original bytes)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for raw in bodies:
            record = event_record(topic, raw, parse_notification(raw), int(time.time() * 1000),
                                  "v2")
            producer.send(topic, key=record.key, value=record.value,
                          headers=list(record.headers))
        producer.flush(timeout=10)
    finally:
        producer.close()


def session_exit(cname: str, sid: str, uid: str, notice_id: str) -> bytes:
    body = json.loads(callback_body(
        event_type=11, cname=cname, sid=sid, notice_id=notice_id,
        details={"msgName": "session_exit", "exitStatus": 1}))
    body["payload"]["uid"] = uid
    return json.dumps(body, separators=(",", ":")).encode()


def restart_reports(bootstrap: str, topics: TopicNames, cname: str) -> list[dict[str, Any]]:
    return [v for v in json_values(read_to_end(bootstrap, topics.actions))
            if v.get("handler") == "restart" and v.get("cname") == cname]


def test_a_channel_that_keeps_failing_gives_up_with_one_alert(
    kafka_bootstrap: str, live_agora: FakeAgora, fake_sinks: FakeSinks, figure: Figure,
) -> None:
    started_at = time.monotonic()
    topics = unique_topics(kafka_bootstrap)
    cname = f"class-{uuid.uuid4().hex[:6]}"
    writer = SessionWriter({"bootstrap_servers": kafka_bootstrap}, topics.sessions)
    try:
        first = start_session(live_agora, cname)
        writer.publish(first)
    finally:
        writer.close()
    assert first.sid is not None
    live_agora.end_session(first.sid)  # the task the first failure callbacks report
    setup_calls = len(live_agora.calls)

    table = Table(topics.sessions)
    agora = live_agora.client()
    restart = RestartAction(
        agora, sessions=TableSessions(table, lambda: SessionWriter(
            {"bootstrap_servers": kafka_bootstrap}, topics.sessions)),
        profiles=RecordingRules(profiles=[PROFILE]),
        rules=RestartRules(max_restarts=1, window_s=600), topics=topics, app_id=live_agora.app_id,
        clock=SystemClock(), env=ENV,
    )
    notify = NotifyAction(
        alerts=parse_rules(RULES, {"OPS_URL": fake_sinks.webhook_url("ops", SECRET)}).alerts,
        topics=topics, client=httpx.Client(), clock=SystemClock(),
    )
    restart_config = fast_config(kafka_bootstrap, topics, restart.name)
    notify_config = fast_config(kafka_bootstrap, topics, notify.name)

    with agora, running(restart, restart_config, tables=[table]) as restart_run, \
            running(notify, notify_config) as notify_run:
        # 1. The first task dies: restarted once (its first resourceId refused), whatever
        #    the duplicates.
        live_agora.fail_next("start", agora_error(400, 433, "resource expired"))
        exit_1 = session_exit(cname, first.sid, UID, f"{cname}-exit-1")
        publish(kafka_bootstrap, topics.events, [
            exit_1, exit_1, session_exit(cname, first.sid, UID, f"{cname}-exit-1-copy")])
        wait_until(lambda: [r["outcome"] for r in restart_reports(
            kafka_bootstrap, topics, cname)] == ["restarted"], timeout_s=60,
            what="the first failure restarted")
        (second,) = [s for s in live_agora.running() if s.cname == cname]
        assert second.uid == BACKUP_UID

        # 2. The replacement dies too: the cap (1 restart per 600 s) is reached.
        live_agora.end_session(second.sid)
        exit_2 = session_exit(cname, second.sid, BACKUP_UID, f"{cname}-exit-2")
        publish(kafka_bootstrap, topics.events, [
            exit_2, exit_2, session_exit(cname, second.sid, BACKUP_UID,
                                         f"{cname}-exit-2-copy"),
            exit_1])  # a late NCS retry of the first failure
        events = 7
        wait_until(lambda: restart_run.sample("agora_handler_consumed_total",
                                              action="restart") == events,
                   timeout_s=60, what="every callback taken by the restart handler")
        wait_until(lambda: len(fake_sinks.deliveries("ops")) >= 1, timeout_s=60,
                   what="an alert at the sink")

        def notify_caught_up() -> bool:
            # Everything on both of its inputs, its own reports included, was handled.
            on_actions = len(read_to_end(kafka_bootstrap, topics.actions))
            taken = notify_run.sample("agora_handler_consumed_total", action="notify")
            return taken == events + on_actions

        wait_until(notify_caught_up, timeout_s=60, what="notify handled every record")
        assert restart_run.stop() is RunnerExit.STOPPED
        assert notify_run.stop() is RunnerExit.STOPPED
    notify.close()
    elapsed = time.monotonic() - started_at

    reports = restart_reports(kafka_bootstrap, topics, cname)
    assert [(r["outcome"], r["alert"], r["sid"]) for r in reports] == [
        ("restarted", False, first.sid), ("gave_up", True, second.sid)]
    assert "max_restarts 1" in reports[1]["error"]
    assert restart.metrics.registry.get_sample_value(
        "agora_restart_gave_up_total", {"reason": "max_restarts"}) == 1.0

    # Agora: one acquire refused at start, one more acquire and start; nothing after.
    calls = [(c.endpoint, c.status) for c in live_agora.calls[setup_calls:]]
    assert calls == [("acquire", 200), ("start", 400), ("acquire", 200), ("start", 200),
                     ("query", 200)]  # the new task confirmed running
    assert [s for s in live_agora.running() if s.cname == cname] == []

    sessions = {r.key.decode(): r for r in read_to_end(kafka_bootstrap, topics.sessions)}
    key = task_key(cname, "classes")
    record = parse_session(sessions[key].value, key)
    assert (record.status, record.sid, record.pending) == ("gave_up", second.sid, None)

    (alert,) = fake_sinks.deliveries("ops")
    assert alert.problems == ()  # signed and shaped as documented
    assert alert.json["type"] == "agora.alert.triggered"
    assert alert.json["data"]["cname"] == cname
    assert alert.json["data"]["rule"] == "restart-gave-up"
    assert len(fake_sinks.attempts("ops")) == 1
    figure("restart give-up alert e2e", callbacks=events, seconds=round(elapsed, 1))
