"""End to end on the real broker: two tasks started by hand on one channel with two
profiles, changed at runtime with ``recording update`` / ``recording layout``, then both
fail: each restart starts with the change in force (the registry folded it into the
start request)."""

from __future__ import annotations

import json
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from support.rules_files import classes_profile
from support.runtime_helpers import committed_offsets, fast_config, running, wait_until

from handlers.config import RestartRules
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import SessionWriter, TableSessions, raw_rules
from handlers.runtime.state import Table
from handlers.testing.agora_recordings import ENV
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.cli import main
from webhook.shared.clock import SystemClock

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]

RULES = classes_profile() + """
[[recording.profiles]]
name = "composite"
cnames = ["class-*"]
mode = "mix"
uid = "800001"
backup_uid = "800002"
[recording.profiles.client_request]
recordingFileConfig = { avFileType = ["hls"] }
[recording.profiles.client_request.storageConfig]
vendor = 1
region = 0
bucket = "rec"
accessKey = "${S3_KEY}"
secretKey = "${S3_SECRET}"
[recording.profiles.client_request.recordingConfig]
channelType = 0
[recording.profiles.client_request.recordingConfig.transcodingConfig]
width = 640
height = 360
fps = 15
bitrate = 500
mixedVideoLayout = 1
backgroundColor = "#000000"
"""

SUBSCRIBE = {"streamSubscribe": {"audioUidList": {"subscribeAudioUids": ["1001"]},
                                 "videoUidList": {"unsubscribeVideoUids": ["1002"]}}}
LAYOUT = {"mixedVideoLayout": 2, "maxResolutionUid": "1001", "backgroundColor": "#FF0000"}



def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["recording", *args], env=env)


def exit_1(cname: str, sid: str, uid: str) -> bytes:
    body = json.loads(callback_body(event_type=11, cname=cname, sid=sid,
                                    details={"msgName": "session_exit", "exitStatus": 1}))
    body["payload"]["uid"] = uid
    return json.dumps(body, separators=(",", ":")).encode()


def test_updates_made_before_a_failure_are_in_force_after_the_restart(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora,
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    topics = unique_topics(kafka_bootstrap)
    env = {**live_agora.env(), "AGORA_EVENTS_CONFIG": str(rules),
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, **topics_env(topics), **ENV}
    cname = f"class-{uuid.uuid4().hex[:6]}"
    for profile in ("classes", "composite"):
        started = invoke(["start", "--profile", profile, "--cname", cname], env)
        assert started.exit_code == 0, started.output
    assert sorted(s.uid for s in live_agora.running()) == ["800001", "900001"]

    # Two tasks on the channel: the operator must say which one.
    ambiguous = invoke(["update", "--cname", cname, "--request", json.dumps(SUBSCRIBE)], env)
    assert ambiguous.exit_code == 2
    assert "has 2 tasks" in ambiguous.stderr
    updated = invoke(["update", "--cname", cname, "--profile", "classes",
                      "--request", json.dumps(SUBSCRIBE)], env)
    assert updated.exit_code == 0, updated.output
    laid_out = invoke(["layout", "--cname", cname, "--uid", "800001",
                       "--request", json.dumps(LAYOUT)], env)
    assert laid_out.exit_code == 0, laid_out.output
    refused = invoke(["layout", "--cname", cname, "--profile", "composite",
                      "--request", json.dumps({"mixedVideoLayout": 7})], env)
    assert refused.exit_code != 0
    before = {s.uid: s for s in live_agora.running()}
    assert before["900001"].updates == [SUBSCRIBE]
    assert before["800001"].layout == LAYOUT

    for session in before.values():
        live_agora.end_session(session.sid)
    setup_calls = len(live_agora.calls)
    table = Table(topics.sessions)
    client = live_agora.client()
    action = RestartAction(
        client, sessions=(sessions := TableSessions(
            table, lambda: SessionWriter({"bootstrap_servers": kafka_bootstrap},
                                         topics.sessions))),
        profiles=raw_rules(rules).recording, rules=RestartRules(), topics=topics,
        app_id=live_agora.app_id, clock=SystemClock(), env=ENV,
    )
    config = fast_config(kafka_bootstrap, topics, "restart")
    with client, closing(sessions), \
            run_webhook(kafka_bootstrap, tmp_path, env=topics_env(topics)) as webhook, \
            running(action, config, tables=[table]):
        for uid, session in before.items():
            body = exit_1(cname, session.sid, uid)
            response = httpx.post(webhook.ncs_url, content=body, headers=signed(body),
                                  timeout=10)
            assert response.status_code == 200, response.text
        wait_until(lambda: committed_offsets(kafka_bootstrap, config.group_id, topics.events)
                   == {0: 2}, timeout_s=90, what="both failures handled")

    starts = {c.body["uid"]: c.body["clientRequest"]
              for c in live_agora.calls[setup_calls:] if c.endpoint == "start"}
    assert sorted(starts) == ["800002", "900002"]
    individual = starts["900002"]["recordingConfig"]
    assert individual["subscribeAudioUids"] == ["1001"]
    assert individual["unsubscribeVideoUids"] == ["1002"]
    transcoding = starts["800002"]["recordingConfig"]["transcodingConfig"]
    assert {k: transcoding.get(k) for k in LAYOUT} == LAYOUT
    assert (transcoding["width"], transcoding["height"]) == (640, 360)  # the rest is kept
    after = {s.uid for s in live_agora.running() if s.cname == cname}
    assert after == {"800002", "900002"}

    # Each task is stopped and queried on its own.
    queried = invoke(["query", "--cname", cname, "--uid", "800002"], env)
    assert queried.exit_code == 0, queried.output
    assert json.loads(queried.stdout)["task"] == "composite"
    stopped = invoke(["stop", "--cname", cname, "--profile", "classes"], env)
    assert stopped.exit_code == 0, stopped.output
    assert {s.uid for s in live_agora.running() if s.cname == cname} == {"800002"}
    listed = invoke(["list", "--json"], env)
    statuses = {json.loads(line)["task"]: json.loads(line)["status"]
                for line in listed.stdout.splitlines()}
    assert statuses == {"classes": "stopped", "composite": "running"}
