"""The reconciler: the pure verdict, ticks against the fake Agora with an injected clock,
and the synthetic failure flowing through the restart action."""

from __future__ import annotations

import json
import threading

import pytest
from support.restart_env import MemoryState, Published, clock, make_action, reconciler
from support.runtime_helpers import wait_until

from handlers.action_contract import Received
from handlers.recording.commands import RestartCommand
from handlers.recording.reconciler import (
    Alive,
    Missing,
    QueryFailed,
    judge,
    synthetic_notice_id,
)
from handlers.recording.session_registry import MemorySessions
from handlers.recording.signals import Signal, classify
from handlers.testing.agora_faults import upstream_timeout_62
from handlers.testing.agora_recordings import BACKUP_UID, registered, start_session
from handlers.testing.fake_agora import FakeAgora
from webhook.shared.events import parse_notification

T0 = 1_700_000_000_000


@pytest.mark.parametrize(("observation", "since", "now", "kind", "since_after"), [
    (Alive(5), None, T0, "ok", None),
    (Alive(4), T0 - 5000, T0, "ok", None),
    (Alive(20), None, T0, "failed", None),
    (Missing(), None, T0, "wait", T0),
    (Missing(), T0 - 89_000, T0, "wait", T0 - 89_000),
    (Missing(), T0 - 90_000, T0, "ask_channel", T0 - 90_000),
    (QueryFailed("HTTP 500"), T0 - 10_000, T0, "unknown", T0 - 10_000),
    (QueryFailed("HTTP 500"), None, T0, "unknown", None),
], ids=["running", "404-then-running", "status-20", "first-404", "404-in-grace",
        "404-past-grace", "error-keeps-404", "error"])
def test_judge(observation: Alive | Missing | QueryFailed, since: int | None, now: int,
               kind: str, since_after: int | None) -> None:
    verdict = judge(observation, now, since, grace_s=90)
    assert (verdict.kind, verdict.missing_since_ms) == (kind, since_after)


def test_running_sessions_are_left_alone(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    stopped = registered("class-2", sid="sid-2", status="stopped")
    published = Published()
    reports = reconciler(fake_agora, MemorySessions(record, stopped), published).tick()
    assert [(r.cname, r.verdict.kind) for r in reports] == [("class-1", "ok")]
    assert published.records == []
    assert len(fake_agora.calls_to("query")) == 1  # the stopped session is not queried


def test_a_silent_death_is_reported_once_after_the_grace(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    fake_agora.end_session(str(record.sid))
    fake_agora.join("class-1", "1001")  # people are still in the channel
    published = Published()
    rec = reconciler(fake_agora, MemorySessions(record), published)
    assert [r.verdict.kind for r in rec.tick()] == ["wait"]
    clock(fake_agora).advance(60)
    assert [r.verdict.kind for r in rec.tick()] == ["wait"]
    clock(fake_agora).advance(30)
    reports = rec.tick()
    assert [(r.verdict.kind, r.published) for r in reports] == [("failed", True)]
    clock(fake_agora).advance(120)
    assert [(r.verdict.kind, r.published) for r in rec.tick()] == [("failed", False)]
    assert len(published.records) == 1

    event = published.records[0]
    assert event.topic == "t.events"
    assert event.key == b"class-1"
    assert event.header("synthetic") == "reconciler"
    assert event.header("eventType") == "11"
    assert event.header("sid") == record.sid
    body = json.loads(event.value)
    assert body["synthetic"] is True
    assert body["noticeId"] == synthetic_notice_id("class-1", str(record.sid))
    assert body["payload"]["details"]["exitStatus"] == 1
    assert body["payload"]["details"]["reason"].startswith("S8: ")


def test_a_failover_that_completes_inside_the_grace_is_not_reported(
    fake_agora: FakeAgora,
) -> None:
    record = start_session(fake_agora)
    fake_agora.failover(str(record.sid), window_s=50)
    published = Published()
    rec = reconciler(fake_agora, MemorySessions(record), published)
    assert [r.verdict.kind for r in rec.tick()] == ["wait"]
    clock(fake_agora).advance(60)
    assert [r.verdict.kind for r in rec.tick()] == ["ok"]
    clock(fake_agora).advance(60)
    fake_agora.end_session(str(record.sid))
    assert [r.verdict.kind for r in rec.tick()] == ["wait"]  # the grace starts again
    assert published.records == []


def test_status_20_is_reported_at_once(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    fake_agora.set_status(str(record.sid), 20)
    published = Published()
    reports = reconciler(fake_agora, MemorySessions(record), published).tick()
    assert [(r.verdict.kind, r.published) for r in reports] == [("failed", True)]
    assert "status 20" in json.loads(published.records[0].value)["payload"]["details"]["reason"]


def test_query_errors_change_nothing(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    fake_agora.fail_next("query", upstream_timeout_62("query"))
    published = Published()
    reports = reconciler(fake_agora, MemorySessions(record), published).tick()
    assert [r.verdict.kind for r in reports] == ["unknown"]
    assert published.records == []


def test_malformed_records_are_skipped(fake_agora: FakeAgora) -> None:
    sessions = MemorySessions()
    sessions.put_raw("bad-1", {"sid": "x"})
    assert reconciler(fake_agora, sessions, Published()).tick() == []


def test_the_synthetic_failure_restarts_the_session(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    sessions = MemorySessions(record)
    fake_agora.set_status(str(record.sid), 20)
    published = Published()
    reconciler(fake_agora, sessions, published).tick()
    body = published.records[0].value
    notification = parse_notification(body)
    assert classify(notification, record).signal is Signal.FAILURE
    event = Received(notification=notification, raw=body, topic="t.events", partition=0,
                     offset=0, headers={}, key="class-1")
    state = MemoryState()
    action = make_action(fake_agora, sessions)
    command = action.decide(event, state)
    assert isinstance(command, RestartCommand)
    assert command.failure.synthetic
    action.run(command)
    assert len([s for s in fake_agora.running() if s.uid == BACKUP_UID]) == 1


def test_run_ticks_until_stopped(fake_agora: FakeAgora) -> None:
    record = start_session(fake_agora)
    rec = reconciler(fake_agora, MemorySessions(record), Published())
    stop = threading.Event()
    thread = threading.Thread(target=rec.run, args=(stop, 0.01), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(fake_agora.calls_to("query")) >= 3, timeout_s=10,
                   what="three ticks")
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert len(fake_agora.calls_to("query")) >= 3


def test_a_task_that_ended_with_its_channel_is_marked_ended_not_reported(
    fake_agora: FakeAgora,
) -> None:
    record = start_session(fake_agora)
    fake_agora.end_session(str(record.sid))  # maxIdleTime fired; its exit was lost
    sessions = MemorySessions(record)
    published = Published()
    rec = reconciler(fake_agora, sessions, published, save=sessions.put)
    assert [r.verdict.kind for r in rec.tick()] == ["wait"]
    clock(fake_agora).advance(90)
    (report,) = rec.tick()
    assert (report.verdict.kind, report.verdict.row, report.ended) == ("ended", "S6", True)
    stored = sessions.only("class-1")
    assert stored is not None
    assert (stored.status, stored.sid) == ("ended", record.sid)
    assert published.records == []
    assert rec.tick() == []  # no longer queried
    assert len(fake_agora.calls_to("channel_users")) == 1
