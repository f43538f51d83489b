"""Fault scenario: a recorded NCS stream for many sessions, as NCS really delivers it, is
posted to the real webhook (gunicorn, real broker) and handled by a real handlers process
against the fake Agora.

The stream has what NCS does to callbacks: duplicates (the same body, same noticeId, up
to three times), reordering (shuffled within a window), and redundant copies (the same
failure signalled again under another noticeId, or by a second failure signal of the same
task). Besides the failures it carries everything SPEC 3.4 says is not one: normal exits,
benign recorder leaves, non-fatal errors, a fatal error that ``query`` shows alive,
failovers, our own stop, a stale sid, another product's event 11.

Exactly one restart per failed session, none for the healthy ones.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.figures import Figure
from support.handlers_process import HandlersProcess, handlers_env
from support.kafka_broker import consume_all
from support.runtime_helpers import committed_offsets, read_to_end, wait_until

from handlers.recording.session_registry import SessionRecord, SessionWriter
from handlers.testing.agora_recordings import BACKUP_UID, ENV, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.kafka_settings import TopicNames

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]

SEED = 3405691582
SESSIONS_PER_KIND = 3
REORDER_WINDOW = 8

EXIT = {"msgName": "session_exit"}
LEAVE = {"msgName": "recorder_leave"}
ERROR = {"msgName": "cloud_recording_error", "module": 0, "errorCode": 52, "stat": 0}


@dataclass
class Session:
    """One recorded session of the stream and what its events should lead to."""

    kind: str
    cname: str
    sid: str
    failed: bool
    bodies: list[bytes] = field(default_factory=list)


def body(cname: str, sid: str, event_type: int, details: dict[str, Any],
         product_id: int = 3) -> bytes:
    raw = callback_body(event_type=event_type, cname=cname, sid=sid, details=details)
    if product_id == 3:
        return raw
    value = json.loads(raw)
    value["productId"] = product_id
    return json.dumps(value, separators=(",", ":")).encode()


def started(cname: str, sid: str) -> bytes:
    return body(cname, sid, 40, {"msgName": "recorder_started", "status": 0})


# kind -> (failed?, events after recorder_started, what the fake says of the task)
Events = Callable[[str, str], list[bytes]]
KINDS: dict[str, tuple[bool, Events, str]] = {
    # failures
    "exit1": (True, lambda c, s: [body(c, s, 11, {**EXIT, "exitStatus": 1}),
                                  body(c, s, 11, {**EXIT, "exitStatus": 1})], "ended"),
    "leave0+exit1": (True, lambda c, s: [body(c, s, 41, {**LEAVE, "leaveCode": 0}),
                                         body(c, s, 11, {**EXIT, "exitStatus": 1})], "ended"),
    "fatal+exit1": (True, lambda c, s: [body(c, s, 1, {**ERROR, "errorLevel": 5}),
                                        body(c, s, 11, {**EXIT, "exitStatus": 1})], "status20"),
    "leave16": (True, lambda c, s: [body(c, s, 41, {**LEAVE, "leaveCode": 16}),
                                    body(c, s, 41, {**LEAVE, "leaveCode": 16})], "status20"),
    # not failures
    "exit0": (False, lambda c, s: [body(c, s, 11, {**EXIT, "exitStatus": 0})], "ended"),
    "leave-benign": (False, lambda c, s: [body(c, s, 41, {**LEAVE, "leaveCode": 4}),
                                          body(c, s, 41, {**LEAVE, "leaveCode": 2 | 8})],
                     "ended"),
    "fatal-alive": (False, lambda c, s: [body(c, s, 1, {**ERROR, "errorLevel": 5})], "running"),
    "error3": (False, lambda c, s: [body(c, s, 1, {**ERROR, "errorLevel": 3})], "running"),
    "failover": (False, lambda c, s: [body(c, s, 12, {"msgName": "session_failover",
                                                      "newUid": 4242})], "running"),
    "our-stop": (False, lambda c, s: [body(c, s, 11, {**EXIT, "exitStatus": 1})], "ended"),
    "stale-sid": (False, lambda c, s: [body(c, uuid.uuid4().hex, 11,
                                            {**EXIT, "exitStatus": 1})], "running"),
    "other-product": (False, lambda c, s: [body(c, s, 11, {**EXIT, "exitStatus": 1}, 1)],
                      "running"),
}



def register(live_agora: FakeAgora, bootstrap: str, topic: str, tag: str) -> list[Session]:
    """Sessions running at the fake and in the registry; then each task ends up the way
    its kind says (dead, exited abnormally per ``query``, or still running)."""
    sessions = []
    writer = SessionWriter({"bootstrap_servers": bootstrap}, topic)
    try:
        for kind, (failed, events, fate) in KINDS.items():
            for n in range(SESSIONS_PER_KIND):
                cname = f"rep-{tag}-{kind}-{n}"
                record: SessionRecord = start_session(live_agora, cname)
                if kind == "our-stop":
                    record = record.model_copy(update={"status": "stopping"})
                writer.publish(record)
                sid = str(record.sid)
                if fate == "ended":
                    live_agora.end_session(sid)
                elif fate == "status20":
                    live_agora.set_status(sid, 20)
                sessions.append(Session(kind, cname, sid, failed,
                                        [started(cname, sid), *events(cname, sid)]))
    finally:
        writer.close()
    return sessions


@dataclass
class Stream:
    bodies: list[bytes]
    duplicates: int
    redundant: int


def replay(sessions: list[Session], rng: random.Random) -> Stream:
    """Each session's events in order, sessions interleaved; failures signalled again
    under a new noticeId; NCS retries (same bytes); then shuffled within a window."""
    ordered: list[bytes] = []
    redundant = 0
    queues = [list(s.bodies) for s in sessions]
    for session, queue in zip(sessions, queues, strict=True):
        if session.failed:  # NCS's redundant channel: the last signal again, new noticeId
            value = json.loads(queue[-1])
            value["noticeId"] = str(uuid.uuid4())
            queue.append(json.dumps(value, separators=(",", ":")).encode())
            redundant += 1
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        ordered.append(queue.pop(0))
    with_retries: list[bytes] = []
    for raw in ordered:
        with_retries.extend([raw] * rng.choice([1, 1, 2, 3]))
    keyed = sorted(enumerate(with_retries), key=lambda p: p[0] + rng.uniform(0, REORDER_WINDOW))
    bodies = [raw for _, raw in keyed]
    return Stream(bodies, len(with_retries) - len(ordered), redundant)


def post_all(url: str, bodies: list[bytes]) -> int:
    with httpx.Client(timeout=10) as client:
        for raw in bodies:
            response = client.post(url, content=raw, headers=signed(raw))
            assert response.status_code == 200, response.text
    return len(bodies)


def test_replayed_stream_restarts_each_failed_session_once(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora, figure: Figure
) -> None:
    rng = random.Random(SEED)
    tag = uuid.uuid4().hex[:6]
    topics: TopicNames = unique_topics(kafka_bootstrap, partitions=3)
    sessions = register(live_agora, kafka_bootstrap, topics.sessions, tag)
    setup_calls = len(live_agora.calls)
    stream = replay(sessions, rng)
    group_prefix = f"replay-{tag}"
    # The registry's requests name their storage keys by reference: the operator allows them.
    rules = tmp_path / "rules.toml"
    rules.write_text(f"[recording]\nallow_references = {json.dumps(sorted(ENV))}\n")
    env = handlers_env(kafka_bootstrap, topics, group_prefix, {
        **ENV, "AGORA_EVENTS_CONFIG": str(rules),
        **live_agora.env(),
    })
    started_at = time.monotonic()
    # No names: the default set, as deployed (whiteboard is off without its credentials).
    with HandlersProcess((), env, tmp_path / "handlers.log") as handlers, \
            run_webhook(kafka_bootstrap, tmp_path, env=topics_env(topics)) as webhook:
        posted = post_all(webhook.ncs_url, stream.bodies)
        # Every post was acknowledged, so the topic holds all it will; the webhook may have
        # acknowledged an exact duplicate without publishing it again (webhook.dedup).
        on_topic = consume_all(kafka_bootstrap, topics.events, expected=posted, timeout_s=5)
        ends = dict.fromkeys(range(3), 0)
        for record in on_topic:
            ends[record.partition] = max(ends[record.partition], record.offset + 1)
        wait_until(
            lambda: committed_offsets(kafka_bootstrap, f"{group_prefix}.restart",
                                      topics.events) == {p: e or None for p, e in ends.items()},
            timeout_s=90, what="the restart handler committed every callback")
        assert handlers.terminate() == 0, handlers.log_text()[-3000:]
    elapsed = time.monotonic() - started_at

    calls = live_agora.calls[setup_calls:]
    by_cname: dict[str, Counter[str]] = {s.cname: Counter() for s in sessions}
    for call in calls:
        cname = (call.body or {}).get("cname")
        if call.endpoint in ("acquire", "start") and cname in by_cname:
            by_cname[cname][f"{call.endpoint}_{call.status}"] += 1
    new_tasks = Counter(s.cname for s in live_agora.sessions.values() if s.uid == BACKUP_UID)
    failed = {s.cname for s in sessions if s.failed}
    healthy = {s.cname for s in sessions if not s.failed}
    assert new_tasks == Counter(failed), "exactly one restart per failed session"
    assert {c: dict(by_cname[c]) for c in failed} == {
        c: {"acquire_200": 1, "start_200": 1} for c in failed}
    assert not any(by_cname[c] for c in healthy), "no acquire or start for a healthy session"

    outcomes = [json.loads(r.value) for r in read_to_end(kafka_bootstrap, topics.actions)]
    restarted = Counter(o["cname"] for o in outcomes
                        if o.get("handler") == "restart" and o.get("outcome") == "restarted")
    assert restarted == Counter(failed)
    alive = {o["cname"] for o in outcomes
             if o.get("handler") == "restart" and o.get("outcome") == "not_needed"}
    assert alive == {s.cname for s in sessions if s.kind == "fatal-alive"}, "query said alive"
    assert read_to_end(kafka_bootstrap, topics.dlq) == []
    notices = Counter(json.loads(r.value)["noticeId"] for r in on_topic)
    figure(
        "replayed NCS stream", seed=SEED, sessions=len(sessions), failed=len(failed),
        healthy=len(healthy), posted=posted, distinct_notices=len(notices),
        duplicate_posts=stream.duplicates, redundant_copies=stream.redundant,
        restarts=sum(new_tasks.values()), duplicate_restarts=sum(new_tasks.values()) - len(failed),
        restarts_of_healthy=sum(new_tasks[c] for c in healthy), seconds=round(elapsed, 1),
    )
