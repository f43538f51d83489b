"""The notify handler's guarantees against the real broker.

Every test fails if an event is lost, or a derived record or an alert is duplicated:
duplicates and reordering in the stream, a SIGKILL mid-stream, a sink answering 500 then
200, a sink failing for good (dead letter, then replay), SIGTERM's final commit, and alerts
from ``agora.actions`` records.

"Once at the sink" is counted the way the receiver counts: a Standard Webhooks receiver
drops a repeated ``webhook-id`` and PagerDuty merges a trigger into the open incident of
its ``dedup_key`` (``FakeSinks.receiver_view``). Where no crash happens, raw requests are
counted too. Every delivery's format is checked: the webhook signature is verified with
the secret, PagerDuty bodies against Events v2.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from support.figures import Figure
from support.rules_files import pagerduty_sink, slack_sink, webhook_sink
from support.runtime_helpers import (
    RunningRunner,
    committed_offsets,
    consume_all_uncommitted,
    fast_config,
    header,
    json_values,
    produce_raw,
    read_to_end,
    running,
    wait_until,
)

from handlers.config import parse_rules
from handlers.notify.action import NotifyAction
from handlers.runtime import dlq
from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.outcomes import ActionOutcome
from handlers.runtime.runner import RunnerExit
from handlers.testing.fake_sinks import Attempt, FakeSinks, verify_standard_webhook
from handlers.testing.fresh_topics import topics_env, unique_topics
from webhook.shared.clock import SystemClock
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames

pytestmark = pytest.mark.kafka

CLI = Path(sys.executable).with_name("agora-events")
T0 = 1_700_000_000_000
OPS_SECRET = "whsec_" + base64.b64encode(b"notify-guarantees-ops-signing-key").decode()
PD_KEY = "PDR0UT1NGKEY0123456789abcdefABCD"
RULES = webhook_sink("${OPS_SECRET}") + pagerduty_sink() + slack_sink() + """
[[alerts.rules]]
name = "fatal-error"
events = [1]
where = { errorLevel = 5 }
sinks = ["ops", "pd"]
severity = "critical"

[[alerts.rules]]
name = "restart-gave-up"
outcomes = ["restart gave up"]
sinks = ["pd", "chat"]
severity = "critical"

[[alerts.rules]]
name = "whiteboard-failed"
outcomes = ["whiteboard failed"]
sinks = ["ops"]
severity = "warning"
"""
FATAL = {"msgName": "cloud_recording_error", "module": 2, "errorLevel": 5, "errorCode": 52,
         "stat": 1, "errorMsg": "service start timeout"}
STARTED = {"msgName": "recorder_started", "status": 0}


# --- the stream ----------------------------------------------------------------------------


def sid_of(cname: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, cname).hex


def ncs(
    event_type: int, details: Mapping[str, Any], cname: str, *, sendts: int, notice_id: str,
    sid: str | None = None,
) -> bytes:
    """A Cloud Recording callback body."""
    return json.dumps({
        "noticeId": notice_id, "productId": 3, "eventType": event_type, "notifyMs": sendts + 40,
        "payload": {"cname": cname, "uid": "900001", "sid": sid or sid_of(cname),
                    "sequence": 0, "sendts": sendts, "serviceType": 1,
                    "details": dict(details)},
    }, separators=(",", ":")).encode()


def uploaded(*names: str) -> dict[str, Any]:
    return {"msgName": "uploaded", "status": 0,
            "fileList": [{"fileName": n, "trackType": "audio_and_video", "uid": "0",
                          "mixedAllUser": True, "isPlayable": True,
                          "sliceStartTime": T0 - 60_000} for n in names]}


def publish_callbacks(bootstrap: str, topic: str, bodies: Iterable[bytes]) -> dict[int, int]:
    """Each body as the webhook publishes it (key cname, headers); end offset per partition."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        futures = []
        for body in bodies:
            record = event_record(topic, body, parse_notification(body),
                                  int(time.time() * 1000), "v2")
            futures.append(producer.send(topic, key=record.key, value=record.value,
                                         headers=list(record.headers)))
        producer.flush(timeout=10)
        ends: dict[int, int] = {}
        for future in futures:
            meta = future.get(timeout=10)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        return ends
    finally:
        producer.close()


def publish_records(bootstrap: str, records: Iterable[KafkaRecord]) -> list[int]:
    """Records as built (e.g. outcome records); their offsets."""
    return [produce_raw(bootstrap, r.topic, r.key, r.value, list(r.headers))[1] for r in records]


def json_record(topic: str, cname: str, value: Mapping[str, Any]) -> KafkaRecord:
    """An outcome record the way actions write their own (``Output.json``: key cname)."""
    return KafkaRecord(topic=topic, key=cname.encode(), value=json.dumps(value).encode(),
                       headers=(("schema-version", b"1"),))


# --- checks at the sinks -------------------------------------------------------------------


@pytest.fixture
def env(fake_sinks: FakeSinks) -> dict[str, str]:
    """Registers the sinks at the fake (once: a new registration resets its script)."""
    return {
        "OPS_URL": fake_sinks.webhook_url("ops", OPS_SECRET),
        "OPS_SECRET": OPS_SECRET,
        "PD_URL": fake_sinks.pagerduty_url("pd"),
        "PD_KEY": PD_KEY,
        "SLACK_URL": fake_sinks.slack_url("chat"),
    }


def check_webhook(attempt: Attempt) -> dict[str, Any]:
    """Verified with the secret (independently of the sender); returns the alert data."""
    assert attempt.problems == (), attempt.problems
    assert verify_standard_webhook(OPS_SECRET, attempt.headers, attempt.body, time.time(),
                                   300) == []
    assert attempt.headers["webhook-id"].startswith("alert_")
    body = attempt.json
    data: dict[str, Any] = body["data"]
    assert body["type"] == f"agora.alert.{data['status']}"
    assert data["dedupKey"] == data["incident"]
    return data


def check_pagerduty(attempt: Attempt) -> dict[str, Any]:
    """Events v2: routing key, dedup key, and a complete payload for a trigger."""
    assert attempt.problems == (), attempt.problems
    event: dict[str, Any] = attempt.json
    assert event["routing_key"] == PD_KEY
    assert event["event_action"] in ("trigger", "resolve")
    assert event["dedup_key"]
    if event["event_action"] == "trigger":
        payload = event["payload"]
        assert payload["severity"] == "critical"
        assert payload["source"] == payload["custom_details"]["cname"]
        assert payload["summary"].startswith(f"{payload['group']}: ")
        assert payload["custom_details"]["dedupKey"] == event["dedup_key"]
    return event


def webhook_alerts(fake: FakeSinks, name: str) -> list[tuple[str, str, str]]:
    """(cname, rule, status) of each alert the webhook receiver acted on."""
    return [(d["cname"], d["rule"], d["status"])
            for d in map(check_webhook, fake.receiver_view(name))]


def pagerduty_alerts(fake: FakeSinks, name: str) -> dict[str, list[str]]:
    """event_action sequence per dedup_key of what PagerDuty acted on."""
    for attempt in fake.deliveries(name):
        check_pagerduty(attempt)
    acted: dict[str, list[str]] = defaultdict(list)
    for attempt in fake.receiver_view(name):
        acted[attempt.json["dedup_key"]].append(attempt.json["event_action"])
    return dict(acted)


def repeats(fake: FakeSinks, name: str) -> int:
    """Accepted requests the receiver dropped as repeats of an earlier one."""
    return len(fake.deliveries(name)) - len(fake.receiver_view(name))


# --- in-process and subprocess handlers ----------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def notify_action(env: Mapping[str, str], names: TopicNames, client: httpx.Client
                  ) -> NotifyAction:
    rules = parse_rules(RULES, env)
    return NotifyAction(alerts=rules.alerts, topics=names, client=client, clock=SystemClock())


def handled(run: RunningRunner) -> float:
    """Records the in-thread runner finished (skipped records of its own excluded)."""
    return sum(run.sample("agora_handler_outcomes_total", action="notify", outcome=o)
               for o in ("ok", "ignored", "failed", "dead_lettered"))


def start_notify(
    bootstrap: str, names: TopicNames, prefix: str, env: Mapping[str, str], tmp_path: Path
) -> subprocess.Popen[bytes]:
    """``agora-events handlers notify`` with a rules file whose secrets come from the env."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    process_env = {
        **os.environ,
        **topics_env(names),
        **env,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGORA_EVENTS_CONFIG": str(rules),
        "AGORA_HANDLERS_GROUP_PREFIX": prefix,
        "AGORA_HANDLERS_METRICS_PORT": "0",
    }
    with (tmp_path / "notify.log").open("ab") as stderr:
        return subprocess.Popen(
            [str(CLI), "handlers", "--instance-id", "one",
             # The killed member's partitions wait this long before the restart gets them.
             "--session-timeout-ms", "6000", "notify"],
            env=process_env, stdout=subprocess.DEVNULL, stderr=stderr,
        )


def all_committed(bootstrap: str, group: str, topic: str, ends: Mapping[int, int]) -> bool:
    committed = committed_offsets(bootstrap, group, topic)
    return all(committed.get(p) == end for p, end in ends.items())


def file_ids(bootstrap: str, topic: str) -> Counter[str]:
    return Counter(json.loads(r.value)["id"] for r in read_to_end(bootstrap, topic))


# --- 1. duplicates and reordering ----------------------------------------------------------


def test_duplicates_and_reordering_give_each_record_and_alert_once(
    kafka_bootstrap: str, fake_sinks: FakeSinks, env: dict[str, str], client: httpx.Client
) -> None:
    names = unique_topics(kafka_bootstrap, partitions=2)
    a, b, c = "dup-a", "dup-b", "dup-c"
    mp4, m3u8 = f"{sid_of(a)}_{a}_0.mp4", f"{sid_of(a)}_{a}.m3u8"
    up_a = ncs(31, uploaded(mp4, m3u8), a, sendts=T0 - 5000, notice_id="a-up")
    fatal_a = ncs(1, FATAL, a, sendts=T0, notice_id="a-fatal")
    # A: NCS retries (same bytes), redundant notices (new noticeId, same facts), the
    # recovery, then a late retry of the failure that must not reopen the incident.
    stream_a = [
        fatal_a, up_a, fatal_a, ncs(31, uploaded(m3u8), a, sendts=T0 - 5000, notice_id="a-up2"),
        up_a, ncs(1, FATAL, a, sendts=T0 + 20, notice_id="a-fatal2"),
        ncs(40, STARTED, a, sendts=T0 + 60_000, notice_id="a-start"), fatal_a,
    ]
    # B: the recovery overtakes the failure: stale news, no alert.
    fatal_b = ncs(1, FATAL, b, sendts=T0, notice_id="b-fatal")
    playlist_b = ncs(4, {"msgName": "cloud_recording_file_infos",
                         "fileList": f"{sid_of(b)}_{b}.m3u8"}, b, sendts=T0, notice_id="b-pl")
    stream_b = [ncs(40, STARTED, b, sendts=T0 + 60_000, notice_id="b-start"), fatal_b,
                playlist_b, fatal_b, playlist_b]
    # C: the incident stays open through every copy.
    fatal_c = ncs(1, FATAL, c, sendts=T0, notice_id="c-fatal")
    shot_c = ncs(45, {"msgName": "recorder_snapshot_file", "fileName": f"shots/{c}.jpg"}, c,
                 sendts=T0 + 5, notice_id="c-shot")
    stream_c = [fatal_c, fatal_c, shot_c, fatal_c, shot_c,
                ncs(1, FATAL, c, sendts=T0 + 9, notice_id="c-fatal2")]
    bodies = [body for group in zip(stream_a, stream_b, stream_c, strict=False)
              for body in group] + stream_a[len(stream_b):] + stream_c[len(stream_b):]
    assert len(bodies) == len(stream_a) + len(stream_b) + len(stream_c)
    publish_callbacks(kafka_bootstrap, names.events, bodies)

    action = notify_action(env, names, client)
    with running(action, fast_config(kafka_bootstrap, names, "notify")) as run:
        wait_until(lambda: handled(run) == len(bodies), what="every callback handled")
        assert run.stop() is RunnerExit.STOPPED

    records = read_to_end(kafka_bootstrap, names.files)
    assert Counter(r.key.decode() for r in records) == {a: 2, b: 1, c: 1}
    assert {json.loads(r.value)["fileName"] for r in records} == {
        mp4, m3u8, f"{sid_of(b)}_{b}.m3u8", f"shots/{c}.jpg"}
    assert max(file_ids(kafka_bootstrap, names.files).values()) == 1

    expected = [(a, "fatal-error", "triggered"), (c, "fatal-error", "triggered"),
                (a, "fatal-error", "resolved")]
    assert sorted(webhook_alerts(fake_sinks, "ops")) == sorted(expected)
    # Nothing crashed or failed: every alert was also requested exactly once.
    assert len(fake_sinks.attempts("ops")) == len(fake_sinks.attempts("pd")) == 3
    pages = pagerduty_alerts(fake_sinks, "pd")
    assert sorted(pages.values()) == [["trigger"], ["trigger", "resolve"]]
    assert fake_sinks.attempts("chat") == []


# --- 2. SIGKILL mid-stream, then a restart -------------------------------------------------


def test_sigkill_mid_stream_then_restart_loses_nothing_and_repeats_no_alert(
    kafka_bootstrap: str, fake_sinks: FakeSinks, env: dict[str, str], tmp_path: Path,
    figure: Figure,
) -> None:
    names = unique_topics(kafka_bootstrap, partitions=2)
    prefix = f"nt-{uuid.uuid4().hex[:8]}"
    channels = [f"kill-{i:02d}" for i in range(6)]
    bodies: list[bytes] = []
    expected_files: set[tuple[str, str]] = set()
    for i, cname in enumerate(channels):
        files = [f"{sid_of(cname)}_{cname}_0.mp4", f"{sid_of(cname)}_{cname}.m3u8"]
        expected_files |= {(cname, f) for f in files}
        upload = ncs(31, uploaded(*files), cname, sendts=T0 - 5000, notice_id=f"{cname}-up")
        fatal = ncs(1, FATAL, cname, sendts=T0 + i, notice_id=f"{cname}-fatal")
        bodies += [upload, fatal, upload, fatal,
                   ncs(1, FATAL, cname, sendts=T0 + i + 1, notice_id=f"{cname}-fatal2"),
                   ncs(40, STARTED, cname, sendts=T0 + 60_000, notice_id=f"{cname}-start")]
    ends = publish_callbacks(kafka_bootstrap, names.events, bodies)
    # Slow sinks stretch the stream; the kill lands once the first incident was resolved,
    # while its trigger went out moments before (the worst moment for PagerDuty: a
    # trigger sent again after the resolve would open a new incident).
    fake_sinks.slow("ops", 0.05)
    fake_sinks.slow("pd", 0.05)

    def resolves() -> int:
        return sum(a.json["event_action"] == "resolve" for a in fake_sinks.deliveries("pd"))

    # Two channels at a time: concurrency on, and the channels' resolves still come apart.
    env = {**env, "AGORA_HANDLERS_CONCURRENCY": "2"}  # see the repeats below
    first = start_notify(kafka_bootstrap, names, prefix, env, tmp_path)
    try:
        wait_until(lambda: resolves() >= 1, timeout_s=60, what="a first resolve")
        first.kill()
        first.wait(timeout=10)
    finally:
        first.kill()
    at_kill = len(fake_sinks.deliveries("pd"))
    assert resolves() < len(channels), "the kill should land mid-stream"

    second = start_notify(kafka_bootstrap, names, prefix, env, tmp_path)
    try:
        wait_until(lambda: all_committed(kafka_bootstrap, f"{prefix}.notify", names.events,
                                         ends),
                   timeout_s=60, what="every callback committed after the restart")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, (tmp_path / "notify.log").read_text()
    finally:
        second.kill()

    records = read_to_end(kafka_bootstrap, names.files)
    assert {(r.key.decode(), json.loads(r.value)["fileName"]) for r in records} == expected_files
    assert len(records) == len(expected_files)
    # Whatever else the log holds belongs to the transaction the restart aborted.
    everything = consume_all_uncommitted(kafka_bootstrap, names.files, len(records))
    assert {json.loads(r.value)["id"] for r in everything} == set(file_ids(kafka_bootstrap,
                                                                            names.files))

    hooks = webhook_alerts(fake_sinks, "ops")
    assert Counter(hooks) == Counter(
        {(cname, "fatal-error", status): 1 for cname in channels
         for status in ("triggered", "resolved")})
    for cname in channels:  # never a trigger acted on after its resolve
        statuses = [s for c, _, s in hooks if c == cname]
        assert statuses == ["triggered", "resolved"], (cname, statuses)
    pages = pagerduty_alerts(fake_sinks, "pd")
    assert len(pages) == len(channels)
    assert all(actions == ["trigger", "resolve"] for actions in pages.values()), pages
    # Alerting records are committed one by one per channel: only the records in hand at
    # the kill (one per channel, two channels at a time: one alert per sink each) can be
    # requested twice, with the same identifiers.
    assert repeats(fake_sinks, "ops") <= 2
    assert repeats(fake_sinks, "pd") <= 2
    figure("notify SIGKILL mid-stream", callbacks=len(bodies),
           pd_delivered_at_kill=at_kill, ops_requests=len(fake_sinks.deliveries("ops")),
           ops_repeats_dropped_by_webhook_id=repeats(fake_sinks, "ops"),
           pd_requests=len(fake_sinks.deliveries("pd")),
           pd_repeats_merged_by_dedup_key=repeats(fake_sinks, "pd"))


# --- 3. a sink that answers 500, then 200 --------------------------------------------------


def test_a_sink_failing_then_recovering_is_retried_and_delivered_once(
    kafka_bootstrap: str, fake_sinks: FakeSinks, env: dict[str, str], client: httpx.Client
) -> None:
    names = unique_topics(kafka_bootstrap)
    cname = "flaky"
    action = notify_action(env, names, client)
    fake_sinks.script("ops", 500)
    fake_sinks.script("pd", 500, 502)
    publish_callbacks(kafka_bootstrap, names.events,
                      [ncs(1, FATAL, cname, sendts=T0, notice_id="flaky-fatal")])
    with running(action, fast_config(kafka_bootstrap, names, "notify")) as run:
        wait_until(lambda: handled(run) == 1, what="the callback handled")
        assert run.stop() is RunnerExit.STOPPED

    # ops: 500, then accepted; pd: 500, 502, then accepted. ops is not called again on
    # the attempt that only pd needed.
    hooks = fake_sinks.attempts("ops")
    assert [h.status for h in hooks] == [500, 204]
    assert len({h.headers["webhook-id"] for h in hooks}) == 1
    for hook in hooks:  # every attempt is signed afresh and verifies
        check_webhook(hook)
    assert [p.status for p in fake_sinks.attempts("pd")] == [500, 502, 202]
    assert {check_pagerduty(p)["dedup_key"] for p in fake_sinks.attempts("pd")} == {
        json.dumps(["fatal-error", cname, sid_of(cname)], separators=(",", ":"))}

    outcomes = json_values(read_to_end(kafka_bootstrap, names.actions))
    runtime = [o["outcome"] for o in outcomes if o.get("action") == "notify"]
    # (A transaction the broker aborts would hide a "retrying"; the "ok" is always there.)
    assert runtime[-1:] == ["ok"]
    assert set(runtime[:-1]) == {"retrying"}
    [notified] = [o for o in outcomes if o.get("handler") == "notify"]
    assert notified["outcome"] == "notified"
    assert notified["alerts"][0]["delivered"] == ["ops", "pd"]


# --- 4. a sink that keeps failing: DLQ, then replay ----------------------------------------


def dlq_cli(bootstrap: str, names: TopicNames, prefix: str, *args: str) -> str:
    env = {**os.environ, **topics_env(names), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "AGORA_HANDLERS_GROUP_PREFIX": prefix}
    result = subprocess.run([str(CLI), "dlq", *args], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_dead_sink_dead_letters_and_a_replay_delivers_once(
    kafka_bootstrap: str, fake_sinks: FakeSinks, env: dict[str, str], client: httpx.Client
) -> None:
    names = unique_topics(kafka_bootstrap)
    prefix = f"nt-{uuid.uuid4().hex[:8]}"
    cname = "dead-sink"
    fatal = ncs(1, FATAL, cname, sendts=T0, notice_id="dead-fatal")
    upload = ncs(31, uploaded(f"{sid_of(cname)}_{cname}_0.mp4"), cname, sendts=T0 + 1,
                 notice_id="dead-up")
    # Another handler's dead letter: a replay for notify leaves it pending.
    other = dlq.dead_letter(dlq_topic=names.dlq, source_topic=names.events, partition=0,
                            offset=99, key=b"elsewhere", value=b"{}", headers=[],
                            handler="restart", error="TransientError: 503", attempts=6,
                            at_ms=T0)
    publish_records(kafka_bootstrap, [other])
    fake_sinks.fail_always("ops", 500)
    # The failure and an NCS retry of it: both die while ops is down.
    publish_callbacks(kafka_bootstrap, names.events, [fatal, fatal, upload])

    action = notify_action(env, names, client)
    config = fast_config(kafka_bootstrap, names, "notify", max_attempts=3)
    with running(action, config) as run:
        wait_until(lambda: committed_offsets(kafka_bootstrap, config.group_id, names.events)
                   == {0: 3}, what="the callbacks handled and committed")
        dead = [r for r in read_to_end(kafka_bootstrap, names.dlq)
                if header(r, dlq.DLQ_HANDLER) == "notify"]
        assert [(r.value, r.key) for r in dead] == [(fatal, cname.encode())] * 2
        for offset, record in enumerate(dead):
            assert header(record, dlq.DLQ_TOPIC) == names.events
            assert header(record, dlq.DLQ_PARTITION) == "0"
            assert header(record, dlq.DLQ_OFFSET) == str(offset)
            assert header(record, dlq.DLQ_ATTEMPTS) == "3"
            assert header(record, "noticeId") == "dead-fatal"
            error = header(record, dlq.DLQ_ERROR) or ""
            assert "alert sink 'ops' (webhook): HTTP 500" in error
            assert fake_sinks.base_url not in error
            assert OPS_SECRET not in error
        # The upload behind them was not held back for good.
        assert len(read_to_end(kafka_bootstrap, names.files)) == 1
        assert fake_sinks.deliveries("ops") == []
        ops_attempts = len(fake_sinks.attempts("ops"))
        assert ops_attempts == 6  # 3 per dead letter

        out = dlq_cli(kafka_bootstrap, names, prefix, "replay", "--dry-run", "--handler",
                      "notify")
        assert "dry run: 2 dead letter(s) would be replayed; nothing was written" in out
        assert len(read_to_end(kafka_bootstrap, names.events)) == 3  # nothing was written
        fake_sinks.heal("ops")
        assert len(fake_sinks.attempts("ops")) == ops_attempts

        out = dlq_cli(kafka_bootstrap, names, prefix, "replay", "--handler", "notify")
        assert "replayed 2 dead letter(s)" in out
        wait_until(lambda: handled(run) == 5, what="the replayed copies handled")
        assert run.stop() is RunnerExit.STOPPED

    [hook] = fake_sinks.deliveries("ops")
    assert check_webhook(hook)["status"] == "triggered"
    # pd took the trigger before ops died; the copies do not page again.
    assert [check_pagerduty(p)["event_action"] for p in fake_sinks.attempts("pd")] == ["trigger"]
    assert "replayed 0 dead letter(s)" in dlq_cli(kafka_bootstrap, names, prefix, "replay",
                                                   "--handler", "notify")
    listed = [json.loads(line)
              for line in dlq_cli(kafka_bootstrap, names, prefix, "list", "--json").splitlines()]
    assert {(d["handler"], d["pending"]) for d in listed} == {("notify", False),
                                                              ("restart", True)}


# --- 5. SIGTERM ----------------------------------------------------------------------------


def test_sigterm_commits_exactly_after_the_last_handled_callback(
    kafka_bootstrap: str, fake_sinks: FakeSinks, env: dict[str, str], tmp_path: Path
) -> None:
    names = unique_topics(kafka_bootstrap)
    prefix = f"nt-{uuid.uuid4().hex[:8]}"
    bodies: list[bytes] = []
    for i in range(80):
        cname, sid = f"term-{i % 4}", uuid.uuid4().hex
        if i % 2:
            bodies.append(ncs(31, uploaded(f"{sid}_{cname}_0.mp4"), cname, sid=sid,
                              sendts=T0 + i, notice_id=f"n{i}"))
        else:  # a new session's failure each time: one alert each
            bodies.append(ncs(1, FATAL, cname, sid=sid, sendts=T0 + i, notice_id=f"n{i}"))
    publish_callbacks(kafka_bootstrap, names.events, bodies)
    fake_sinks.slow("ops", 0.05)

    process = start_notify(kafka_bootstrap, names, prefix, env, tmp_path)
    try:
        wait_until(lambda: len(fake_sinks.deliveries("ops")) >= 8, timeout_s=60,
                   what="8 alerts delivered")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "notify.log").read_text()
    finally:
        process.kill()

    outcomes = json_values(read_to_end(kafka_bootstrap, names.actions))
    done = [int(o["source"].rsplit("/", 1)[1]) for o in outcomes
            if o.get("action") == "notify"]
    count = len(done)
    assert 8 <= count < len(bodies), "the stop should land mid-stream"
    assert len(set(done)) == count, "each callback handled once"
    # Channels run concurrently, each in order: a channel's handled callbacks are the
    # first of its own; the commit stops right after the contiguous handled prefix.
    for channel in range(4):
        mine = [i for i in done if i % 4 == channel]
        assert mine == list(range(channel, len(bodies), 4))[: len(mine)]
    prefix_len = next(i for i in range(len(bodies)) if i not in set(done))
    assert committed_offsets(kafka_bootstrap, f"{prefix}.notify", names.events) == {
        0: prefix_len}
    # Exactly the handled callbacks had their effects: files, and alerts at the sink.
    files = [json.loads(r.value)["noticeId"] for r in read_to_end(kafka_bootstrap, names.files)]
    assert sorted(files) == sorted(f"n{i}" for i in done if i % 2)
    alerted = [check_webhook(h)["details"]["noticeId"] for h in fake_sinks.attempts("ops")]
    assert sorted(alerted) == sorted(f"n{i}" for i in done if not i % 2)
    assert "SIGTERM received" in (tmp_path / "notify.log").read_text()


# --- 6. alerts from agora.actions ----------------------------------------------------------


def restart_outcome(topics: TopicNames, cname: str, outcome: str, at_ms: int) -> KafkaRecord:
    """The restart action's own outcome record (handlers/recording/restart.py)."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at_ms / 1000)) + ".000Z"
    return json_record(topics.actions, cname, {
        "schema_version": "1", "handler": "restart", "action": "restart", "outcome": outcome,
        "alert": outcome == "gave_up", "cname": cname, "sid": sid_of(cname),
        "reason": "session_exit", "noticeId": f"{cname}-exit", "eventType": 11,
        "synthetic": False, "at": iso,
        **({"error": "3 restarts within 600 s"} if outcome == "gave_up" else {}),
    })


def whiteboard_failed(topics: TopicNames, cname: str, at_ms: int) -> list[KafkaRecord]:
    """What one failed capture writes: the runtime's outcome and the action's own record."""
    runtime = ActionOutcome(
        action="whiteboard", outcome="failed", cname=cname, notice_id=f"{cname}-exit",
        event_type=11, sid=sid_of(cname), attempts=1, error="ActionFailed: HTTP 403",
        duration_ms=3.0, at=at_ms, source=f"{topics.events}/0/7",
    ).to_record(topics.actions)
    own = json_record(topics.actions, cname, {
        "schema_version": "1", "handler": "whiteboard", "action": "screenshot-list",
        "outcome": "failed", "alert": True, "cname": cname, "sid": sid_of(cname),
        "noticeId": f"{cname}-exit", "eventType": 11, "status": 403, "error": "forbidden",
        "at": at_ms,
    })
    return [own, runtime]


def test_action_outcomes_alert_once_even_when_duplicated(
    kafka_bootstrap: str, fake_sinks: FakeSinks, env: dict[str, str], client: httpx.Client
) -> None:
    names = unique_topics(kafka_bootstrap)
    x, y = "outcome-x", "outcome-y"
    gave_up = restart_outcome(names, x, "gave_up", T0)
    failed_y = whiteboard_failed(names, y, T0)
    fine = ActionOutcome(action="restart", outcome="ok", cname=y, attempts=1, duration_ms=1.0,
                         at=T0, source=f"{names.events}/0/8").to_record(names.actions)
    records = [gave_up, *failed_y, gave_up, fine, *failed_y,
               restart_outcome(names, x, "gave_up", T0 + 500),  # a redundant one
               restart_outcome(names, x, "restarted", T0 + 9000)]
    publish_records(kafka_bootstrap, records)

    action = notify_action(env, names, client)
    with running(action, fast_config(kafka_bootstrap, names, "notify")) as run:
        wait_until(lambda: handled(run) == len(records), what="every outcome record handled")
        assert run.stop() is RunnerExit.STOPPED

    # restart gave up on x: paged and posted once, resolved by the restart's success.
    assert list(pagerduty_alerts(fake_sinks, "pd").values()) == [["trigger", "resolve"]]
    [trigger, resolve] = fake_sinks.attempts("pd")
    assert trigger.json["payload"]["summary"].startswith(
        f"restart-gave-up: restart gave_up on cname {x}")
    assert resolve.json["dedup_key"] == trigger.json["dedup_key"]
    chat = fake_sinks.attempts("chat")
    assert [c.problems for c in chat] == [(), ()]
    assert "CRITICAL" in chat[0].json["text"]
    assert "RESOLVED" in chat[1].json["text"]
    # whiteboard failed on y: one alert for four records of the same incident.
    [hook] = fake_sinks.attempts("ops")
    data = check_webhook(hook)
    assert (data["cname"], data["rule"], data["status"]) == (y, "whiteboard-failed",
                                                             "triggered")
    assert data["details"]["status"] == 403


def test_an_event_waiting_for_a_retry_keeps_an_outcome_incident_of_its_channel(
    kafka_bootstrap: str, fake_sinks: FakeSinks, env: dict[str, str], client: httpx.Client
) -> None:
    """The two inputs are ordered separately: while a callback of channel x waits for pd,
    an outcome record of x opens an incident. The callback's retry must not forget it, or
    the outcome's next duplicate alerts again."""
    names = unique_topics(kafka_bootstrap)
    x = "parked-x"
    fake_sinks.fail_always("pd", 503)
    publish_callbacks(kafka_bootstrap, names.events,
                      [ncs(1, FATAL, x, sendts=T0, notice_id="parked-fatal")])
    action = notify_action(env, names, client)
    config = fast_config(kafka_bootstrap, names, "notify", max_attempts=200, budget_s=60)
    with running(action, config) as run:
        wait_until(lambda: len(fake_sinks.attempts("pd")) >= 1, what="the callback parked")
        [failure, _] = whiteboard_failed(names, x, T0 + 1000)
        publish_records(kafka_bootstrap, [failure])
        wait_until(lambda: any(d["rule"] == "whiteboard-failed"
                               for d in map(check_webhook, fake_sinks.deliveries("ops"))),
                   what="the outcome alerted")
        fake_sinks.heal("pd")
        wait_until(lambda: len(fake_sinks.deliveries("pd")) == 1, what="the callback retried")
        publish_records(kafka_bootstrap, [failure])  # the same record again
        wait_until(lambda: handled(run) == 3, what="the duplicate handled")
        assert run.stop() is RunnerExit.STOPPED

    assert sorted(webhook_alerts(fake_sinks, "ops")) == [
        (x, "fatal-error", "triggered"), (x, "whiteboard-failed", "triggered")]
    assert len(fake_sinks.deliveries("ops")) == 2
