"""``agora-events timeline --cname C`` of a restarted recording, on the real broker.

The restart action and the notify handler run under the real runtime against the fake
Agora and a fake alert sink. A registered recording dies (session_exit 1), is restarted on
the backup uid, an alert rule fires on the restart, and the new task's files are
uploaded. The timeline, read by the installed command, tells that story in order:
registry entry, callback, decision, restart report, registry change, alert, upload
callback, files."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from kafka import KafkaProducer
from support.document_schemas import errors
from support.rules_files import webhook_sink
from support.runtime_helpers import fast_config, json_values, read_to_end, running, wait_until

from handlers.config import RecordingRules, RestartRules, parse_rules
from handlers.contracts.openapi import build_handlers_openapi
from handlers.notify.action import NotifyAction
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import SessionWriter, TableSessions
from handlers.runtime.state import Table
from handlers.testing.agora_recordings import BACKUP_UID, ENV, PROFILE, UID, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.clock import SystemClock
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

CLI = Path(sys.executable).with_name("agora-events")
SECRET = "timeline-signing-secret"
RULES = webhook_sink(SECRET) + """
[[alerts.rules]]
name = "recording-exit"
events = [11]
sinks = ["ops"]
"""



def publish(bootstrap: str, topic: str, bodies: list[bytes]) -> None:
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


def with_uid(raw: bytes, uid: str) -> bytes:
    body = json.loads(raw)
    body["payload"]["uid"] = uid
    return json.dumps(body, separators=(",", ":")).encode()


def test_the_timeline_of_a_restarted_recording(
    kafka_bootstrap: str, live_agora: FakeAgora, fake_sinks: FakeSinks,
) -> None:
    topics = unique_topics(kafka_bootstrap)
    cname = f"class-{uuid.uuid4().hex[:6]}"
    writer = SessionWriter({"bootstrap_servers": kafka_bootstrap}, topics.sessions)
    try:
        first = start_session(live_agora, cname)
        writer.publish(first)
    finally:
        writer.close()
    assert first.sid is not None
    live_agora.end_session(first.sid)

    table = Table(topics.sessions)
    agora = live_agora.client()
    restart = RestartAction(
        agora, sessions=TableSessions(table, lambda: SessionWriter(
            {"bootstrap_servers": kafka_bootstrap}, topics.sessions)),
        profiles=RecordingRules(profiles=[PROFILE]), rules=RestartRules(), topics=topics,
        app_id=live_agora.app_id, clock=SystemClock(), env=ENV,
    )
    notify = NotifyAction(
        alerts=parse_rules(RULES, {"OPS_URL": fake_sinks.webhook_url("ops", SECRET)}).alerts,
        topics=topics, client=httpx.Client(), clock=SystemClock(),
    )
    with agora, \
            running(restart, fast_config(kafka_bootstrap, topics, "restart"), tables=[table]), \
            running(notify, fast_config(kafka_bootstrap, topics, "notify")):
        publish(kafka_bootstrap, topics.events, [with_uid(callback_body(
            event_type=11, cname=cname, sid=first.sid, notice_id=f"{cname}-exit",
            details={"msgName": "session_exit", "exitStatus": 1}), UID)])
        wait_until(lambda: len(fake_sinks.deliveries("ops")) >= 1, timeout_s=60,
                   what="the alert at the sink")
        wait_until(lambda: any(v.get("outcome") == "restarted" for v in json_values(
            read_to_end(kafka_bootstrap, topics.actions))), timeout_s=60, what="the restart")
        (second,) = [s for s in live_agora.running() if s.cname == cname]
        assert second.uid == BACKUP_UID
        upload = callback_body(event_type=31, cname=cname, sid=second.sid,
                               notice_id=f"{cname}-uploaded", details={
                                   "msgName": "uploaded", "status": 0, "fileList": [{
                                       "fileName": f"{second.sid}_{cname}.m3u8",
                                       "trackType": "audio_and_video", "uid": "0",
                                       "mixedAllUser": True, "isPlayable": True,
                                       "sliceStartTime": 1718090001500}]})
        publish(kafka_bootstrap, topics.events, [with_uid(upload, BACKUP_UID)])
        wait_until(lambda: len(read_to_end(kafka_bootstrap, topics.files)) == 1,
                   timeout_s=60, what="the file record")
    notify.close()
    deliveries = fake_sinks.deliveries("ops")

    env = {**os.environ, **topics_env(topics), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    started = time.monotonic()
    result = subprocess.run([str(CLI), "timeline", "--cname", cname, "--since", "1h", "--json"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["at_ms"] for e in entries] == sorted(e["at_ms"] for e in entries)

    def index(source: str, *parts: str) -> int:
        found = [i for i, e in enumerate(entries)
                 if e["source"] == source and all(p in e["what"] for p in parts)]
        assert found, f"no {source} entry with {parts} in {[e['what'] for e in entries]}"
        return found[0]

    registered = index("registry", "running profile=classes")
    died = index("events", "callback 11 session_exit", "exitStatus=1")
    # The restart is one transaction: the decision, the report and the registry change.
    restart_step = [
        index("actions", "restart ok on callback 11"),
        index("actions", "restart: restarted", f"-> new sid {second.sid}"),
        index("registry", "running", "restarts=1"),
    ]
    uploaded = index("events", "callback 31 uploaded", "files=1")
    filed = index("files", f"{second.sid}_{cname}.m3u8 (uploaded)")
    assert registered < died < min(restart_step)
    assert max(restart_step) < uploaded < filed
    # The alert (notify, on the callback) runs beside the restart: after the callback,
    # before the upload that came once both were done.
    alert = index("actions", "alert notified: recording-exit trigger (error) -> ops")
    assert died < alert < uploaded
    assert entries[alert]["alert"] is True
    # The restart resolves the incident: notify reads the restart report.
    resolved = index("actions", "alert notified: recording-exit resolve (error) -> ops")
    assert restart_step[1] < resolved < uploaded
    assert entries[resolved]["alert"] is False
    restarted = entries[restart_step[1]]
    assert (restarted["sid"], restarted["alert"]) == (first.sid, False)
    assert entries[restart_step[2]]["sid"] == second.sid
    assert entries[restart_step[2]]["task"] == BACKUP_UID
    assert entries[died]["task"] == UID
    # Other channels' records are not in it.
    assert all(e["record"].startswith("rt-") for e in entries)
    assert len(json_values(read_to_end(kafka_bootstrap, topics.actions))) >= 3
    assert seconds < 30

    # The table form: one line per entry, the count on stderr.
    table = subprocess.run([str(CLI), "timeline", "--cname", cname, "--since", "1h"],
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert table.returncode == 0
    assert len(table.stdout.splitlines()) == len(entries)
    assert f"{len(entries)} entries for {cname}" in table.stderr

    # What the sink received is the documented alert webhook (OpenAPI `webhooks.alert`).
    document = build_handlers_openapi()
    operation = document["webhooks"]["alert"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert [d.json["type"] for d in deliveries] == ["agora.alert.triggered",
                                                    "agora.alert.resolved"]
    for delivery in deliveries:
        assert errors(delivery.json, schema, document) == []
        assert delivery.problems == ()


def test_follow_prints_new_records_as_they_come_and_stops_on_ctrl_c(
    kafka_bootstrap: str,
) -> None:
    topics = unique_topics(kafka_bootstrap)
    cname = f"class-{uuid.uuid4().hex[:6]}"
    publish(kafka_bootstrap, topics.events, [callback_body(
        event_type=40, cname=cname, notice_id=f"{cname}-before",
        details={"msgName": "recorder_started"})])
    env = {**os.environ, **topics_env(topics), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    with subprocess.Popen(
        [str(CLI), "timeline", "--cname", cname, "--since", "1h", "--follow", "--json",
         "--source", "events"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:
        try:
            assert process.stdout is not None
            first = json.loads(_line(process.stdout, timeout_s=30))
            assert first["what"] == "callback 40 recorder_started"
            publish(kafka_bootstrap, topics.events, [
                callback_body(event_type=41, cname=f"{cname}-other",
                              details={"msgName": "recorder_leave", "leaveCode": 0}),
                callback_body(event_type=41, cname=cname, notice_id=f"{cname}-after",
                              details={"msgName": "recorder_leave", "leaveCode": 0})])
            second = json.loads(_line(process.stdout, timeout_s=30))
            assert second["what"] == "callback 41 recorder_leave leaveCode=0"
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
            assert "Traceback" not in (process.stderr.read() if process.stderr else "")
        finally:
            if process.poll() is None:
                process.kill()


def _line(stream: IO[str], timeout_s: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    assert ready, f"no line within {timeout_s:g}s"
    return stream.readline()


def test_a_missing_topic_is_noted_and_the_rest_of_the_story_shown(kafka_bootstrap: str) -> None:
    topics = unique_topics(kafka_bootstrap)
    cname = f"class-{uuid.uuid4().hex[:6]}"
    publish(kafka_bootstrap, topics.events, [callback_body(
        event_type=40, cname=cname, details={"msgName": "recorder_started"})])
    missing = f"{topics.screenshots}-missing"
    env = {**os.environ, **topics_env(topics), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "AGORA_TOPIC_SCREENSHOTS": missing}
    result = subprocess.run([str(CLI), "timeline", "--cname", cname, "--since", "1h"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert f"note: topic {missing!r} does not exist" in result.stderr
    assert "callback 40 recorder_started" in result.stdout
