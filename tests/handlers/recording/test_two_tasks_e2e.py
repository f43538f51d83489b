"""End to end on the real broker: one channel recorded by two tasks at once (seed 002:
composite and web page recording are separate tasks with their own uids). Each task's
failure restarts that task only, once, and the registry holds one record per task."""

from __future__ import annotations

import json
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from support.runtime_helpers import committed_offsets, fast_config, read_to_end, running, wait_until

from handlers.config import RecordingRules, RestartRules
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import (
    SessionWriter,
    TableSessions,
    parse_session,
    task_key,
)
from handlers.runtime.state import Table
from handlers.testing.agora_recordings import BACKUP_UID, ENV, PROFILE, UID, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.clock import SystemClock

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]

SHOT_UID, SHOT_BACKUP = "800001", "800002"
SHOTS = PROFILE.model_copy(update={"name": "shots", "uid": SHOT_UID,
                                   "backup_uid": SHOT_BACKUP})



def exit_1(cname: str, sid: str, uid: str) -> bytes:
    body = json.loads(callback_body(event_type=11, cname=cname, sid=sid,
                                    details={"msgName": "session_exit", "exitStatus": 1}))
    body["payload"]["uid"] = uid
    return json.dumps(body, separators=(",", ":")).encode()


def test_two_tasks_on_one_channel_fail_and_restart_independently(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora,
) -> None:
    topics = unique_topics(kafka_bootstrap)
    cname = f"class-{uuid.uuid4().hex[:6]}"
    composite = start_session(live_agora, cname).model_copy(update={"task": "classes"})
    shots = start_session(live_agora, cname, uid=SHOT_UID, backup_uid=SHOT_BACKUP).model_copy(
        update={"profile": "shots", "task": "shots"})
    writer = SessionWriter({"bootstrap_servers": kafka_bootstrap}, topics.sessions)
    try:
        writer.publish(composite)
        writer.publish(shots)
    finally:
        writer.close()
    live_agora.join(cname, "1001")
    live_agora.end_session(str(shots.sid))  # the screenshot task dies first
    setup_calls = len(live_agora.calls)

    table = Table(topics.sessions)
    client = live_agora.client()
    action = RestartAction(
        client, sessions=(sessions := TableSessions(
            table, lambda: SessionWriter({"bootstrap_servers": kafka_bootstrap},
                                         topics.sessions))),
        profiles=RecordingRules(profiles=[PROFILE, SHOTS]), rules=RestartRules(),
        topics=topics, app_id=live_agora.app_id, clock=SystemClock(), env=ENV,
    )
    config = fast_config(kafka_bootstrap, topics, "restart")
    with client, closing(sessions), \
            run_webhook(kafka_bootstrap, tmp_path, env=topics_env(topics)) as webhook, \
            running(action, config, tables=[table]):
        def post(body: bytes) -> None:
            response = httpx.post(webhook.ncs_url, content=body, headers=signed(body),
                                  timeout=10)
            assert response.status_code == 200, response.text

        post(exit_1(cname, str(shots.sid), SHOT_UID))
        post(exit_1(cname, str(shots.sid), SHOT_UID))  # a redundant notice
        wait_until(lambda: committed_offsets(kafka_bootstrap, config.group_id, topics.events)
                   == {0: 2}, timeout_s=60, what="the screenshot task's failure handled")
        # Then the composite task dies too: it is its own task, not "an older sid".
        live_agora.end_session(str(composite.sid))
        post(exit_1(cname, str(composite.sid), UID))
        wait_until(lambda: committed_offsets(kafka_bootstrap, config.group_id, topics.events)
                   == {0: 3}, timeout_s=60, what="the composite task's failure handled")

    starts = [c for c in live_agora.calls[setup_calls:] if c.endpoint == "start"]
    assert sorted(c.body["uid"] for c in starts) == sorted([SHOT_BACKUP, BACKUP_UID])
    live = {s.uid: s.sid for s in live_agora.running() if s.cname == cname}
    assert set(live) == {SHOT_BACKUP, BACKUP_UID}

    registry = {r.key.decode(): r for r in read_to_end(kafka_bootstrap, topics.sessions)}
    keys = {task_key(cname, "classes"), task_key(cname, "shots")}
    assert {k for k in registry if cname in k} == keys
    shot_record = parse_session(registry[task_key(cname, "shots")].value,
                                task_key(cname, "shots"))
    composite_record = parse_session(registry[task_key(cname, "classes")].value,
                                     task_key(cname, "classes"))
    assert (shot_record.uid, shot_record.sid, shot_record.status) == (
        SHOT_BACKUP, live[SHOT_BACKUP], "running")
    assert (composite_record.uid, composite_record.sid, composite_record.status) == (
        BACKUP_UID, live[BACKUP_UID], "running")
    assert [(h.old_sid, h.new_sid) for h in shot_record.restarts] == [
        (shots.sid, live[SHOT_BACKUP])]
    assert [(h.old_sid, h.new_sid) for h in composite_record.restarts] == [
        (composite.sid, live[BACKUP_UID])]
    outcomes = [json.loads(r.value) for r in read_to_end(kafka_bootstrap, topics.actions)]
    assert sorted((o["outcome"], o["sid"]) for o in outcomes if o.get("handler") == "restart") \
        == sorted([("restarted", shots.sid), ("restarted", composite.sid)])


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_failover_to_the_other_api_host_completes_a_restart(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora,
) -> None:
    """The primary host is unreachable (connection refused on every call): each call goes
    on to the next host, and the restart completes there."""
    topics = unique_topics(kafka_bootstrap)
    cname = f"class-{uuid.uuid4().hex[:6]}"
    record = start_session(live_agora, cname)
    writer = SessionWriter({"bootstrap_servers": kafka_bootstrap}, topics.sessions)
    try:
        writer.publish(record)
    finally:
        writer.close()
    live_agora.end_session(str(record.sid))
    setup_calls = len(live_agora.calls)
    dead = closed_port_url()
    table = Table(topics.sessions)
    client = live_agora.client(api_base=dead, api_bases=(dead, live_agora.base_url))
    action = RestartAction(
        client, sessions=(sessions := TableSessions(
            table, lambda: SessionWriter({"bootstrap_servers": kafka_bootstrap},
                                         topics.sessions))),
        profiles=RecordingRules(profiles=[PROFILE]), rules=RestartRules(),
        topics=topics, app_id=live_agora.app_id, clock=SystemClock(), env=ENV,
    )
    config = fast_config(kafka_bootstrap, topics, "restart")
    with client, closing(sessions), \
            run_webhook(kafka_bootstrap, tmp_path, env=topics_env(topics)) as webhook, \
            running(action, config, tables=[table]):
        body = exit_1(cname, str(record.sid), UID)
        response = httpx.post(webhook.ncs_url, content=body, headers=signed(body), timeout=10)
        assert response.status_code == 200, response.text
        wait_until(lambda: committed_offsets(kafka_bootstrap, config.group_id, topics.events)
                   == {0: 1}, timeout_s=60, what="the failure handled")

    assert [c.endpoint for c in live_agora.calls[setup_calls:]] == ["acquire", "start", "query"]
    (task,) = [s for s in live_agora.running() if s.cname == cname]
    registry = {r.key.decode(): r for r in read_to_end(kafka_bootstrap, topics.sessions)}
    key = task_key(cname, "classes")
    stored = parse_session(registry[key].value, key)
    assert (stored.sid, stored.uid, stored.status) == (task.sid, BACKUP_UID, "running")
    outcomes = [json.loads(r.value) for r in read_to_end(kafka_bootstrap, topics.actions)]
    assert [(o["outcome"], o.get("new_sid")) for o in outcomes
            if o.get("handler") == "restart"] == [("restarted", task.sid)]
