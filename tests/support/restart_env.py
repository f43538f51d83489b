"""Helpers for the restart tests: events as the runtime hands them over, an in-memory
action state, and the restart action wired to all of them (the profile and the tasks
started on the fake Agora come from :mod:`handlers.testing.agora_recordings`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from handlers.action_contract import Effects, Received
from handlers.config import RecordingRules, RestartRules
from handlers.recording.client import CloudRecordingClient
from handlers.recording.commands import RestartCommand
from handlers.recording.reconciler import Reconciler
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import MemorySessions, SessionRecord
from handlers.testing.agora_recordings import ENV, PROFILE, UID, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.clock import FakeClock
from webhook.shared.event_records import Record
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames

TOPICS = TopicNames(sessions="t.sessions", actions="t.actions", events="t.events")

OPEN_CLIENTS: list[CloudRecordingClient] = []
"""Clients made by :func:`make_action`; ``close_clients`` (autouse in tests/handlers/recording)
closes them after each test."""


def close_clients() -> None:
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()


def received(
    event_type: int,
    cname: str = "class-1",
    sid: str = "sid-1",
    details: Mapping[str, Any] | None = None,
    *,
    uid: str = UID,
    notice_id: str | None = None,
    at_ms: int | None = None,
    product_id: int = 3,
    extra: Mapping[str, Any] | None = None,
) -> Received:
    """One event as the runtime passes it to ``decide`` (``at_ms`` is notifyMs and sendts)."""
    body = json.loads(callback_body(event_type=event_type, cname=cname, sid=sid,
                                    details=dict(details or {}), notice_id=notice_id,
                                    notify_ms=at_ms))
    body["productId"] = product_id
    body["payload"]["uid"] = uid
    if at_ms is not None:
        body["payload"]["sendts"] = at_ms
    body.update(extra or {})
    raw = json.dumps(body).encode()
    return Received(notification=parse_notification(raw), raw=raw, topic="t.events",
                    partition=0, offset=0, headers={}, key=cname)


def exit_event(cname: str = "class-1", sid: str = "sid-1", status: int = 1,
               **kwargs: Any) -> Received:
    return received(11, cname, sid, {"msgName": "session_exit", "exitStatus": status}, **kwargs)


class MemoryState:
    """The action's state as the runtime keeps it: a dict that effects update."""

    def __init__(self) -> None:
        self.entries: dict[str, Mapping[str, Any]] = {}

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self.entries.get(key)

    def apply(self, effects: Effects) -> None:
        for key, value in effects.state.items():
            if value is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = json.loads(json.dumps(value))


def apply_outputs(effects: Effects, sessions: MemorySessions, topics: TopicNames = TOPICS
                  ) -> list[dict[str, Any]]:
    """Apply registry outputs to ``sessions`` like the runtime's table would; returns the
    outcome records (actions topic) as JSON."""
    outcomes = []
    for output in effects.outputs:
        value = json.loads(output.value)
        if output.topic == topics.sessions:
            assert output.key is not None
            sessions.put_raw(output.key, value)
        elif output.topic == topics.actions:
            outcomes.append(value)
    return outcomes


def make_action(
    fake: FakeAgora,
    sessions: MemorySessions,
    *,
    rules: RestartRules | None = None,
    certificate: str | None = None,
    env: Mapping[str, str] = ENV,
    profiles: RecordingRules | None = None,
) -> RestartAction:
    from pydantic import SecretStr

    clock = fake.clock
    assert isinstance(clock, FakeClock)
    client = fake.client()
    OPEN_CLIENTS.append(client)
    return RestartAction(
        client, sessions=sessions,
        profiles=profiles if profiles is not None else RecordingRules(profiles=[PROFILE]),
        rules=rules or RestartRules(), topics=TOPICS, app_id=fake.app_id,
        app_certificate=SecretStr(certificate) if certificate else None,
        clock=clock, env=env,
    )


def clock(fake: FakeAgora) -> FakeClock:
    assert isinstance(fake.clock, FakeClock)
    return fake.clock


def clock_ms(action: RestartAction) -> int:
    return action._clock.now_ms()


def decide(action: RestartAction, record: SessionRecord, state: MemoryState,
           **kwargs: Any) -> RestartCommand:
    """The command for a failure (session_exit 1, now) of ``record``'s task."""
    assert record.sid is not None
    command = action.decide(exit_event(sid=record.sid, at_ms=clock_ms(action), **kwargs), state)
    assert isinstance(command, RestartCommand)
    return command


def failed_session(fake: FakeAgora, sessions: MemorySessions | None = None,
                   ) -> tuple[SessionRecord, MemorySessions]:
    """A task started and registered, then dead (its sid is gone at Agora)."""
    record = start_session(fake)
    assert record.sid is not None
    fake.end_session(record.sid)
    store = sessions if sessions is not None else MemorySessions()
    store.put(record)
    return record, store


def commit(effects: Effects, state: MemoryState, sessions: MemorySessions,
           ) -> list[dict[str, Any]]:
    """What the runtime does with effects: state and registry updated, outcomes returned."""
    state.apply(effects)
    return apply_outputs(effects, sessions)


def calls_after_setup(fake: FakeAgora, endpoint: str) -> list[Any]:
    """Calls to ``endpoint`` after :func:`start_session`'s one acquire and one start."""
    return fake.calls_to(endpoint)[1:]


def live_tasks(fake: FakeAgora, uid: str) -> list[str]:
    """Sids of the fake's running tasks recording with ``uid``."""
    return [s.sid for s in fake.running() if s.uid == uid]


def gave_up_counts(action: RestartAction) -> dict[str, float]:
    """``agora_restart_gave_up_total`` of ``action``, by reason (zeros left out)."""
    counts = {}
    for family in action.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "agora_restart_gave_up_total" and sample.value:
                counts[sample.labels["reason"]] = sample.value
    return counts


class Published:
    """A reconciler's ``publish``: keeps the records."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def __call__(self, record: Record) -> None:
        self.records.append(record)


def reconciler(fake: FakeAgora, sessions: MemorySessions, published: Published,
               grace_s: float = 90, **options: Any) -> Reconciler:
    """A reconciler over ``sessions`` on ``fake``'s clock (``options``: pruning)."""
    client = fake.client()
    OPEN_CLIENTS.append(client)
    return Reconciler(client, snapshot=lambda: dict(sessions.items()), publish=published,
                      events_topic="t.events", grace_s=grace_s, clock=fake.clock, **options)
