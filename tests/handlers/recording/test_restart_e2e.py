"""End to end: signed callbacks posted to the real webhook (gunicorn) -> Kafka -> the
handler runtime running the restart action -> the fake Agora server, with the session
registry read from and written to its compacted topic."""

from __future__ import annotations

import json
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from support.kafka_broker import consume_all
from support.restart_env import TOPICS
from support.runtime_helpers import committed_offsets, fast_config, read_to_end, running, wait_until

from handlers.config import RecordingRules, RestartRules
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import (
    SessionRecord,
    SessionWriter,
    TableSessions,
    parse_session,
    task_key,
)
from handlers.runtime.state import Table
from handlers.testing.agora_recordings import (
    BACKUP_UID,
    ENV,
    PROFILE,
    RESOLVED_REQUEST,
    start_session,
)
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.clock import SystemClock
from webhook.shared.kafka_settings import TopicNames

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]



def post(url: str, body: bytes) -> None:
    response = httpx.post(url, content=body, headers=signed(body), timeout=10)
    assert response.status_code == 200, response.text


def exit_body(cname: str, sid: str, status: int, notice_id: str | None = None) -> bytes:
    return callback_body(event_type=11, cname=cname, sid=sid, notice_id=notice_id,
                         details={"msgName": "session_exit", "exitStatus": status})


def registered(live_agora: FakeAgora, writer: SessionWriter, cname: str,
               status: str = "running") -> SessionRecord:
    record = start_session(live_agora, cname)
    record = record.model_copy(update={"status": status})
    writer.publish(record)
    return record


def test_a_failure_callback_restarts_once_and_nothing_else_does(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora,
) -> None:
    topics: TopicNames = unique_topics(kafka_bootstrap)
    tag = uuid.uuid4().hex[:6]
    failing, normal, stopping, moving = (f"class-{tag}-{n}" for n in ("a", "b", "c", "d"))
    writer = SessionWriter({"bootstrap_servers": kafka_bootstrap}, topics.sessions)
    try:
        a = registered(live_agora, writer, failing)
        b = registered(live_agora, writer, normal)
        c = registered(live_agora, writer, stopping, status="stopping")
        d = registered(live_agora, writer, moving)
    finally:
        writer.close()
    live_agora.end_session(str(a.sid))  # the task that the failure callback reports
    setup_calls = len(live_agora.calls)

    table = Table(topics.sessions)
    client = live_agora.client()
    action = RestartAction(
        client, sessions=(sessions := TableSessions(
            table, lambda: SessionWriter({"bootstrap_servers": kafka_bootstrap},
                                         topics.sessions))),
        profiles=RecordingRules(profiles=[PROFILE]), rules=RestartRules(),
        topics=topics, app_id=live_agora.app_id, clock=SystemClock(), env=ENV,
    )
    failure = exit_body(failing, str(a.sid), 1, notice_id=f"n-{tag}")
    bodies = [
        exit_body(normal, str(b.sid), 0),  # normal exit
        exit_body(stopping, str(c.sid), 1),  # our own stop
        callback_body(event_type=12, cname=moving, sid=str(d.sid),
                      details={"msgName": "session_failover", "newUid": 4242}),
        failure,
        failure,  # an NCS retry
        exit_body(failing, str(a.sid), 1),  # the redundant channel: another noticeId
    ]
    config = fast_config(kafka_bootstrap, topics, "restart")
    with client, closing(sessions), \
            run_webhook(kafka_bootstrap, tmp_path, env=topics_env(topics)) as webhook, \
            running(action, config, tables=[table]):
        for body in bodies:
            post(webhook.ncs_url, body)
        # Every post was acknowledged, so what is on the topic now is all there will be. The
        # webhook's worker that took the retry may remember publishing it (then it is not
        # published again) or not (another worker): the handler must cope with both.
        published = len(consume_all(kafka_bootstrap, topics.events, len(bodies), timeout_s=5))
        assert published in (len(bodies) - 1, len(bodies))
        wait_until(
            lambda: committed_offsets(kafka_bootstrap, config.group_id, topics.events)
            == {0: published},
            timeout_s=90, what="every callback handled",
        )

    calls = live_agora.calls[setup_calls:]
    assert [(c.endpoint, c.body and c.body["uid"]) for c in calls] == [
        ("acquire", BACKUP_UID), ("start", BACKUP_UID), ("query", None)]  # query: confirmed
    start = calls[1]
    assert start.body["cname"] == failing
    assert start.body["clientRequest"] == RESOLVED_REQUEST
    (new_task,) = [s for s in live_agora.running() if s.cname == failing]
    assert new_task.uid == BACKUP_UID

    registry = {r.key.decode(): r for r in read_to_end(kafka_bootstrap, topics.sessions)}
    key = {c: task_key(c, "classes") for c in (failing, normal, stopping, moving)}
    record = parse_session(registry[key[failing]].value, key[failing])
    assert (record.sid, record.uid, record.status) == (new_task.sid, BACKUP_UID, "running")
    assert [(h.old_sid, h.new_sid) for h in record.restarts] == [(a.sid, new_task.sid)]
    assert record.pending is None
    # The normal exit marked its record ended (the reconciler stops querying it); the
    # others are as they were.
    statuses = {cname: parse_session(registry[key[cname]].value, key[cname]).status
                for cname in (normal, stopping, moving)}
    assert statuses == {normal: "ended", stopping: "stopping", moving: "running"}

    outcomes = [json.loads(r.value) for r in read_to_end(kafka_bootstrap, topics.actions)]
    restarts = [o for o in outcomes if o.get("handler") == "restart"]
    assert [(o["outcome"], o["cname"], o["new_sid"]) for o in restarts] == [
        ("restarted", failing, new_task.sid)]
    assert TOPICS.sessions != topics.sessions  # the test ran on its own topics
