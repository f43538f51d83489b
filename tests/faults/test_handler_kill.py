"""Fault scenario: the handlers process (restart + whiteboard + notify) is SIGKILLed at
seeded random points while it works through a stream of recording failures, whiteboard
triggers and alert-raising events, and started again each time.

Afterwards every failure has exactly one new recording task at the fake Agora, every
trigger exactly one capture and every incident exactly one alert. What a crash may
legitimately repeat is counted and printed, never hidden:

- a second ``acquire`` (the crash came between acquire and start: that resourceId was
  never started) and a ``start`` sent again on the same resourceId, which Agora answers
  with code 7 and the sid of the task it already started (the crash came after the
  start, before the restart was committed): neither starts a second recording;
- an alert delivery repeated with the same ``webhook-id`` (Standard Webhooks receivers
  drop those: it is the same message);
- a screenshot-list request repeated because the killed process never had the first
  answer durably (no capture note was written for it): the answer died with the process.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from support.figures import Figure
from support.handlers_process import HandlersProcess, handlers_env
from support.rules_files import classes_profile, webhook_sink, write_rules
from support.runtime_helpers import committed_offsets, read_to_end, wait_until

from handlers.recording.session_registry import SessionWriter, parse_session
from handlers.settings import HandlerSettings
from handlers.testing.agora_recordings import BACKUP_UID, ENV, UID, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard
from handlers.testing.fresh_topics import unique_topics
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

SEED = 20240611
CHANNELS = 20
ALERT_CHANNELS = 10
HOOK_SECRET = "fault-hook-signing-secret"
SCENES = ("/lesson/1", "/lesson/2")
NAMES = ("restart", "whiteboard", "notify")
NOTE_PREFIX = "whiteboard/note/capture/"

RULES = """
[restart]
max_restarts = 3
window_s = 600

[[alerts.rules]]
name = "fatal-error"
events = [1]
where = { errorLevel = 5 }
sinks = ["ops"]
"""


@dataclass(frozen=True)
class Channel:
    cname: str
    sid: str
    room: str



@pytest.fixture
def whiteboard() -> Iterator[FakeWhiteboard]:
    with FakeWhiteboard() as server:
        yield server


def produce(bootstrap: str, topic: str, bodies: list[bytes]) -> None:
    """As the webhook publishes them: key cname, NCS headers, the original bytes."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for body in bodies:
            record = event_record(topic, body, parse_notification(body),
                                  int(time.time() * 1000), "v2")
            producer.send(topic, key=record.key, value=record.value,
                          headers=list(record.headers))
        producer.flush(timeout=30)
    finally:
        producer.close()


def register(live_agora: FakeAgora, bootstrap: str, topics: TopicNames, prefix: str,
             wb: FakeWhiteboard) -> list[Channel]:
    """Channels whose recording runs at the live_agora, registered with a whiteboard room each;
    then every task dies (its failure callback is in the stream)."""
    writer = SessionWriter({"bootstrap_servers": bootstrap}, topics.sessions)
    channels = []
    try:
        for i in range(CHANNELS):
            cname, room = f"{prefix}-{i:02d}", uuid.uuid4().hex
            wb.add_room(room, scenes=SCENES)
            started = start_session(live_agora, cname)
            link = {"room_uuid": room, "path": "/lesson", "region": "us-sv", "on_events": [11]}
            writer.publish(parse_session({**started.to_json(), "whiteboard": link}))
            channels.append(Channel(cname, str(started.sid), room))
    finally:
        writer.close()
    for channel in channels:
        live_agora.end_session(channel.sid)
    return channels


def stream(channels: list[Channel], alert_cnames: list[str], rng: random.Random) -> list[bytes]:
    """Failures (session_exit exitStatus 1, each also a whiteboard trigger) and fatal
    errors on other channels (each one alert; half of them sent twice by NCS's redundant
    channel), interleaved."""
    failures = [
        callback_body(event_type=11, cname=c.cname, sid=c.sid,
                      details={"msgName": "session_exit", "exitStatus": 1})
        for c in channels
    ]
    fatal = {"msgName": "cloud_recording_error", "module": 2, "errorLevel": 5,
             "errorCode": 52, "stat": 0}
    alerts = []
    for i, cname in enumerate(alert_cnames):
        sid = uuid.uuid4().hex
        alerts.append(callback_body(event_type=1, cname=cname, sid=sid, details=fatal))
        if i % 2 == 0:
            alerts.append(callback_body(event_type=1, cname=cname, sid=sid, details=fatal))
    bodies = failures + alerts
    rng.shuffle(bodies)
    return bodies


def chunks(items: list[bytes], count: int) -> list[list[bytes]]:
    """``items`` in ``count`` consecutive parts of (nearly) equal size."""
    return [items[i * len(items) // count:(i + 1) * len(items) // count] for i in range(count)]


class SideEffects:
    """Counts every call the handlers made to the fake services (for the kill points)."""

    def __init__(self, live_agora: FakeAgora, wb: FakeWhiteboard, sinks: FakeSinks) -> None:
        self._fake, self._wb, self._sinks = live_agora, wb, sinks

    def total(self) -> int:
        return len(self._fake.calls) + len(self._wb.calls) + len(self._sinks.attempts())

    def agora(self, endpoint: str) -> int:
        return len(self._fake.calls_to(endpoint))


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)  # kill points need a fine grain
    return True


def kill_at_random_point(handlers: HandlersProcess, effects: SideEffects,
                         rng: random.Random) -> str:
    """Wait until this incarnation works (its first call to a fake), then SIGKILL it at a
    point the seeded ``rng`` picks: a random delay into the work, or right as the next
    acquire or start reaches Agora (its answer in flight)."""
    before = effects.total()
    assert wait_for(lambda: effects.total() > before, 60), \
        f"the handlers made no call after starting:\n{handlers.log_text()[-3000:]}"
    point = rng.choice(["busy", "acquire", "start"])
    if point == "busy":
        time.sleep(rng.uniform(0.0, 0.6))
    else:
        seen = effects.agora(point)
        if not wait_for(lambda: effects.agora(point) > seen, 3.0):
            point = "idle"  # nothing of that kind was left in this part of the stream
    handlers.kill()
    return point


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def all_done(bootstrap: str, topics: TopicNames, group_prefix: str) -> bool:
    """Every group committed the events topic to its end, and notify also every committed
    record of agora.actions (the outcomes of the other two)."""
    ends = end_offsets(bootstrap, topics.events)
    for name in NAMES:
        if committed_offsets(bootstrap, f"{group_prefix}.{name}", topics.events) != ends:
            return False
    actions = read_to_end(bootstrap, topics.actions)
    last = max((r.offset + 1 for r in actions), default=0)
    committed = committed_offsets(bootstrap, f"{group_prefix}.notify", topics.actions)
    return last > 0 and (committed.get(0) or 0) >= last


@dataclass
class Notes:
    written: Counter[str]
    """Answers noted per cname (tombstones not counted)."""
    open: set[str]
    """cnames whose note was not deleted."""


def capture_notes(bootstrap: str, state_topic: str) -> Notes:
    """The whiteboard handler's capture notes on the state topic."""
    written: Counter[str] = Counter()
    last: dict[str, bool] = {}
    for record in read_to_end(bootstrap, state_topic):
        key = record.key.decode()
        if key.startswith(NOTE_PREFIX):
            cname = json.loads(key[len(NOTE_PREFIX):])[0]
            written[cname] += record.value is not None
            last[cname] = record.value is not None
    return Notes(written, {cname for cname, present in last.items() if present})


def check_recordings(live_agora: FakeAgora, setup_calls: int, channels: list[Channel],
                     bootstrap: str, topics: TopicNames) -> dict[str, int]:
    """One new task per failure, the registry pointing at it, one ``restarted`` outcome;
    returns the figures."""
    cnames = {c.cname for c in channels}
    answers: dict[str, Counter[str]] = {c: Counter() for c in cnames}
    for call in live_agora.calls[setup_calls:]:
        cname = (call.body or {}).get("cname")
        if call.endpoint in ("acquire", "start") and cname in answers:
            answer = call.endpoint if call.status == 200 else f"{call.endpoint}_{call.status}"
            answers[cname][answer] += 1
    new_tasks = {s.cname: s.sid for s in live_agora.sessions.values()
                 if s.cname in cnames and s.uid == BACKUP_UID}
    started = Counter(s.cname for s in live_agora.sessions.values()
                      if s.cname in cnames and s.uid == BACKUP_UID)
    assert started == Counter(cnames), "one new recording per failure"
    assert all(a["start"] == 1 for a in answers.values()), answers
    # A start beyond the first is answered 7 (201): the task it names is ours already.
    assert set().union(*answers.values()) <= {"acquire", "start", "start_201"}, answers
    assert not [s for s in live_agora.sessions.values()
                if s.cname in cnames and s.uid == UID and not s.ended], "failed tasks stay dead"

    registry = {r.key.decode(): parse_session(r.value, r.key.decode())
                for r in read_to_end(bootstrap, topics.sessions)}
    by_cname = {record.cname: record for record in registry.values()}  # one task each
    assert len(by_cname) == len(registry)
    for channel in channels:
        record = by_cname[channel.cname]
        new_sid = new_tasks[channel.cname]
        assert (record.sid, record.uid, record.status, record.pending) == (
            new_sid, BACKUP_UID, "running", None)
        assert [(h.old_sid, h.new_sid) for h in record.restarts] == [(channel.sid, new_sid)]

    outcomes = [json.loads(r.value) for r in read_to_end(bootstrap, topics.actions)]
    restarted = Counter(o["cname"] for o in outcomes
                        if o.get("handler") == "restart" and o.get("outcome") == "restarted")
    assert restarted == Counter(cnames), "one restarted outcome per failure"
    return {
        "acquires": sum(a["acquire"] for a in answers.values()),
        "starts": sum(started.values()),
        "starts_resent_answered_7": sum(a["start_201"] for a in answers.values()),
        "duplicates": sum(started.values()) - len(cnames),
    }


def check_captures(whiteboard: FakeWhiteboard, channels: list[Channel], kills: int,
                   bootstrap: str, topics: TopicNames) -> dict[str, int]:
    """One screenshots record per trigger; a screenshot-list call repeated only when its
    answer was never noted (lost in flight with a killed process)."""
    requests = Counter(c.room for c in whiteboard.calls_to("screenshot-list"))
    shots = [json.loads(r.value) for r in read_to_end(bootstrap, topics.screenshots)]
    assert sorted((s["cname"], s["sid"]) for s in shots) == sorted(
        (c.cname, c.sid) for c in channels), "one screenshots record per trigger"
    assert set(requests) == {c.room for c in channels}
    notes = capture_notes(bootstrap, topics.state)
    assert {c.cname: notes.written[c.cname] for c in channels} == {
        c.cname: 1 for c in channels}, "each answer noted once, and reused after a crash"
    assert notes.open == set(), "every note is deleted once its capture is published"
    lost = {c.cname: requests[c.room] - 1 for c in channels if requests[c.room] > 1}
    # One call per channel at a time (its key runs in order): a kill catches at most one
    # call of a channel in flight, and at most AGORA_HANDLERS_CONCURRENCY calls overall.
    assert all(n <= kills for n in lost.values()), lost
    assert sum(lost.values()) <= kills * HandlerSettings().concurrency, lost
    return {"triggers": len(channels), "screenshot_requests": sum(requests.values()),
            "screenshot_calls_lost_in_flight": sum(lost.values())}


def check_alerts(sinks: FakeSinks, alert_cnames: list[str]) -> dict[str, int]:
    """One alert message per incident; the same message delivered again after a crash
    keeps its ``webhook-id``."""
    delivered = sinks.deliveries("ops")
    assert all(a.problems == () for a in delivered), "signed the Standard Webhooks way"
    assert {a.json["type"] for a in delivered} == {"agora.alert.triggered"}
    messages = {a.headers["webhook-id"]: a.json["data"]["incident"] for a in delivered}
    per_incident = Counter(messages.values())
    assert len(per_incident) == len(alert_cnames), per_incident
    assert set(per_incident.values()) == {1}, f"an incident alerted twice: {per_incident}"
    assert {a.json["data"]["cname"] for a in delivered} == set(alert_cnames)
    return {"incidents": len(per_incident), "alert_deliveries": len(delivered),
            "alert_redeliveries_same_id": len(delivered) - len(messages)}


def handlers_for(tmp_path: Path, bootstrap: str, topics: TopicNames, group_prefix: str,
                 prefix: str, live_agora: FakeAgora, whiteboard: FakeWhiteboard,
                 sinks: FakeSinks) -> HandlersProcess:
    config = write_rules(tmp_path, classes_profile([f"{prefix}-*"]), RULES,
                        webhook_sink("${OPS_SECRET}"))
    env = handlers_env(bootstrap, topics, group_prefix, {
        **ENV,
        "AGORA_EVENTS_CONFIG": str(config),
        **live_agora.env(),
        "WHITEBOARD_API_BASE": whiteboard.url, "WHITEBOARD_TOKEN": FAKE_TOKEN,
        "WHITEBOARD_REGION": "us-sv",
        "OPS_URL": sinks.webhook_url("ops", HOOK_SECRET), "OPS_SECRET": HOOK_SECRET,
    })
    return HandlersProcess(NAMES, env, tmp_path / "handlers.log")


def test_handlers_killed_mid_stream_act_once_per_failure(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora, whiteboard: FakeWhiteboard,
    fake_sinks: FakeSinks, figure: Figure,
) -> None:
    rng = random.Random(SEED)
    tag = uuid.uuid4().hex[:6]
    prefix, group_prefix = f"class-{tag}", f"faults-{tag}"
    topics = unique_topics(kafka_bootstrap, partitions=3)
    channels = register(live_agora, kafka_bootstrap, topics, prefix, whiteboard)
    setup_calls = len(live_agora.calls)
    alert_cnames = [f"alert-{tag}-{i:02d}" for i in range(ALERT_CHANNELS)]
    kills = rng.randint(3, 5)
    parts = chunks(stream(channels, alert_cnames, rng), kills + 1)
    effects = SideEffects(live_agora, whiteboard, fake_sinks)
    points: list[str] = []
    started_at = time.monotonic()
    with handlers_for(tmp_path, kafka_bootstrap, topics, group_prefix, prefix, live_agora,
                      whiteboard, fake_sinks) as handlers:
        for number, part in enumerate(parts):
            # Later parts arrive while the process is down: a backlog when it is back.
            produce(kafka_bootstrap, topics.events, part)
            if number:
                handlers.start()
            if number < kills:
                points.append(kill_at_random_point(handlers, effects, rng))
        wait_until(lambda: all_done(kafka_bootstrap, topics, group_prefix), timeout_s=120,
                   what="every record handled by every handler")
        assert handlers.terminate() == 0, handlers.log_text()[-3000:]
    elapsed = time.monotonic() - started_at

    assert handlers.kills == kills
    assert read_to_end(kafka_bootstrap, topics.dlq) == [], "nothing dead-lettered"
    figure(
        "handlers SIGKILLed mid-stream", seed=SEED, kills=kills, points="/".join(points),
        failures=len(channels),
        **check_recordings(live_agora, setup_calls, channels, kafka_bootstrap, topics),
        **check_captures(whiteboard, channels, kills, kafka_bootstrap, topics),
        **check_alerts(fake_sinks, alert_cnames),
        seconds=round(elapsed, 1),
    )
