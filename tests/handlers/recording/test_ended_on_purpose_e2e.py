"""End to end on the real broker: signed callbacks through the real webhook (gunicorn) ->
Kafka -> the handler runtime running the restart action -> the fake Agora (with its
channel user list), plus the reconciler publishing to and writing the same topics.

A task that ended with its channel is never restarted, whatever order its callbacks
arrive in and whether or not its ``session_exit`` was lost; a task that vanished while
people are in the channel is restarted exactly once."""

from __future__ import annotations

import json
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from support.runtime_helpers import (
    committed_offsets,
    end_offsets,
    fast_config,
    read_to_end,
    running,
    wait_until,
)

from handlers.config import RecordingRules, RestartRules
from handlers.recording.reconciler import EventPublisher, Reconciler
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import (
    SessionRecord,
    SessionWriter,
    TableSessions,
    load_sessions,
    parse_session,
    task_key,
)
from handlers.runtime.state import Table
from handlers.testing.agora_recordings import BACKUP_UID, ENV, PROFILE, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.clock import SystemClock
from webhook.shared.kafka_settings import TopicNames

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

GRACE_S = 2
"""The wait for a vanished task's session_exit (90 s in production)."""



def exit_cb(cname: str, sid: str, status: int) -> bytes:
    return callback_body(event_type=11, cname=cname, sid=sid,
                         details={"msgName": "session_exit", "exitStatus": status})


def fatal_cb(cname: str, sid: str, notice_id: str | None = None) -> bytes:
    return callback_body(event_type=1, cname=cname, sid=sid, notice_id=notice_id,
                         details={"msgName": "cloud_recording_error", "module": 0,
                                  "errorLevel": 5, "errorCode": 52, "stat": 1,
                                  "errorMsg": "fatal"})


def leave_cb(cname: str, sid: str, code: int) -> bytes:
    return callback_body(event_type=41, cname=cname, sid=sid,
                         details={"msgName": "recorder_leave", "leaveCode": code})


def test_ended_with_the_channel_is_never_restarted_and_a_wanted_one_is_once(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora,
) -> None:
    topics: TopicNames = unique_topics(kafka_bootstrap)
    tag = uuid.uuid4().hex[:6]
    names = ("lost-exit", "exit-first", "exit-last", "unknown-bits", "people",
             "rec-empty", "rec-people")
    cname = {n: f"class-{tag}-{n}" for n in names}
    writer = SessionWriter({"bootstrap_servers": kafka_bootstrap}, topics.sessions)
    tasks: dict[str, SessionRecord] = {}
    try:
        for n in names:
            tasks[n] = start_session(live_agora, cname[n])
            writer.publish(tasks[n])
    finally:
        writer.close()
    sid = {n: str(t.sid) for n, t in tasks.items()}
    # Every task vanishes (query answers 404 from now on). The channels of "people" and
    # "rec-people" still hold people; the others closed with their last user.
    for n in names:
        live_agora.end_session(sid[n])
    live_agora.join(cname["people"], "1001", "1002")
    live_agora.join(cname["rec-people"], "1001")
    setup_calls = len(live_agora.calls)

    bodies = [
        # maxIdleTime fired: a fatal error and the idle leave; the session_exit was lost.
        fatal_cb(cname["lost-exit"], sid["lost-exit"]),
        leave_cb(cname["lost-exit"], sid["lost-exit"], 4),
        # The normal exit arrives before the ambiguous signal...
        exit_cb(cname["exit-first"], sid["exit-first"], 0),
        fatal_cb(cname["exit-first"], sid["exit-first"]),
        # ...or after it.
        leave_cb(cname["exit-last"], sid["exit-last"], 16),
        exit_cb(cname["exit-last"], sid["exit-last"], 0),
        # Undocumented leave bits, exit lost.
        leave_cb(cname["unknown-bits"], sid["unknown-bits"], 2 | 32),
        # Vanished while people are in the channel: NCS retries and the redundant notice.
        fatal_cb(cname["people"], sid["people"], notice_id=f"n-{tag}"),
        fatal_cb(cname["people"], sid["people"], notice_id=f"n-{tag}"),
        fatal_cb(cname["people"], sid["people"]),
    ]
    table = Table(topics.sessions)
    client = live_agora.client()
    action = RestartAction(
        client, sessions=(sessions := TableSessions(
            table, lambda: SessionWriter({"bootstrap_servers": kafka_bootstrap},
                                         topics.sessions))),
        profiles=RecordingRules(profiles=[PROFILE]),
        rules=RestartRules(failover_grace_s=GRACE_S),
        topics=topics, app_id=live_agora.app_id, clock=SystemClock(), env=ENV,
    )
    client_config = {"bootstrap_servers": kafka_bootstrap}
    publisher = EventPublisher(client_config)
    registry_writer = SessionWriter(client_config, topics.sessions)
    reconciler_client = live_agora.client()
    reconciler = Reconciler(
        reconciler_client,
        snapshot=lambda: {k: v for k, v in load_sessions(client_config, topics.sessions).items()
                          if v.get("cname") in (cname["rec-empty"], cname["rec-people"])},
        publish=publisher, events_topic=topics.events, grace_s=0,
        save=registry_writer.publish,
    )
    config = fast_config(kafka_bootstrap, topics, "restart", max_attempts=6, budget_s=60)
    try:
        with client, closing(sessions), \
                run_webhook(kafka_bootstrap, tmp_path, env=topics_env(topics)) as webhook, \
                running(action, config, tables=[table]):
            for body in bodies:
                response = httpx.post(webhook.ncs_url, content=body, headers=signed(body),
                                      timeout=10)
                assert response.status_code == 200, response.text
            reports = {r.cname: r for r in reconciler.tick()}
            assert reports[cname["rec-empty"]].ended
            assert reports[cname["rec-empty"]].verdict.row == "S6"
            assert reports[cname["rec-people"]].published
            assert reports[cname["rec-people"]].verdict.row == "S8"
            # Every post was acknowledged and the reconciler's event published, so the
            # topic's end is final. The webhook worker that took the NCS retry may remember
            # publishing it (then it is not published again) or not (another worker).
            end = end_offsets(kafka_bootstrap, topics.events)
            assert end[0] in (len(bodies), len(bodies) + 1)
            wait_until(
                lambda: committed_offsets(kafka_bootstrap, config.group_id, topics.events)
                == end,
                timeout_s=150, what="every callback and the synthetic failure handled",
            )
    finally:
        publisher.close()
        registry_writer.close()
        reconciler_client.close()

    calls = live_agora.calls[setup_calls:]
    starts = [c for c in calls if c.endpoint == "start"]
    assert sorted(c.body["cname"] for c in starts) == sorted(
        [cname["people"], cname["rec-people"]])
    assert {c.body["uid"] for c in starts} == {BACKUP_UID}
    running_now = {s.cname: s for s in live_agora.running()}
    assert set(running_now) == {cname["people"], cname["rec-people"]}

    registry = {r.key.decode(): r for r in read_to_end(kafka_bootstrap, topics.sessions)}
    key = {n: task_key(cname[n], "classes") for n in names}
    final = {n: parse_session(registry[key[n]].value, key[n]) for n in names}
    for n in ("lost-exit", "exit-first", "exit-last", "unknown-bits", "rec-empty"):
        assert (final[n].status, final[n].sid) == ("ended", sid[n]), n
        assert final[n].restarts == [], n
    for n in ("people", "rec-people"):
        assert (final[n].status, final[n].sid) == ("running", running_now[cname[n]].sid), n
        assert [(h.old_sid, h.new_sid) for h in final[n].restarts] == [
            (sid[n], running_now[cname[n]].sid)], n

    outcomes = [json.loads(r.value) for r in read_to_end(kafka_bootstrap, topics.actions)]
    restarts = [o for o in outcomes if o.get("handler") == "restart"]
    assert sorted(o["cname"] for o in restarts if o["outcome"] == "restarted") == sorted(
        [cname["people"], cname["rec-people"]])
    assert [o for o in restarts if o["alert"]] == []
    # Each task that ended with its channel says why, in its outcome.
    ended_why = {o["cname"]: o["detail"] for o in restarts if o["outcome"] == "not_needed"}
    assert ended_why[cname["lost-exit"]].startswith("S6: ")
    assert ended_why[cname["unknown-bits"]].startswith("S6: ")
    # A 404 alone restarted nothing: every vanished task without people asked the channel
    # once its wait was over.
    asked = {c.path.rsplit("/", 1)[1] for c in calls if c.endpoint == "channel_users"}
    assert {cname["lost-exit"], cname["unknown-bits"], cname["people"]} <= asked
