"""Helpers for the handler-runtime tests: topics, event records, a runner in a thread,
committed offsets, and small actions with scripted behaviour.

The factories at the bottom (``slow_echo_factory``) are also loaded by
``agora-events handlers --plugin`` in subprocess tests (PYTHONPATH includes tests/).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from handlers.action_catalog import ActionContext
from handlers.action_contract import (
    ActionFailed,
    Effects,
    InvalidEvent,
    Output,
    Received,
    StateView,
    TransientError,
)
from handlers.runtime.client_protocols import ClientFactory
from handlers.runtime.guard import GuardPolicy
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.runner import ActionRunner, RunnerConfig, RunnerExit
from handlers.runtime.state import Table
from handlers.testing.ncs_callbacks import callback_body
from webhook.shared.event_records import Record, event_record
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames


@dataclass(frozen=True)
class SentEvent:
    cname: str
    notice_id: str
    body: bytes
    partition: int
    offset: int


def event_records(
    topic: str, cnames: Iterable[str], event_type: int = 40
) -> Iterator[tuple[str, str, bytes, Record]]:
    """(cname, noticeId, body, record) of one callback per cname, as the webhook
    publishes it (key, headers, original bytes)."""
    for cname in cnames:
        notice_id = uuid.uuid4().hex
        body = callback_body(event_type=event_type, cname=cname, notice_id=notice_id)
        record = event_record(topic, body, parse_notification(body), int(time.time() * 1000), "v2")
        yield cname, notice_id, body, record


def produce_events(
    bootstrap: str,
    topic: str,
    cnames: Iterable[str],
    event_type: int = 40,
) -> list[SentEvent]:
    """One callback per cname, as the webhook publishes it (key, headers, original bytes)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    sent: list[tuple[str, str, bytes, Any]] = []
    try:
        for cname, notice_id, body, record in event_records(topic, cnames, event_type):
            future = producer.send(
                topic, key=record.key, value=record.value, headers=list(record.headers)
            )
            sent.append((cname, notice_id, body, future))
        producer.flush()
        events = []
        for cname, notice_id, body, future in sent:
            meta = future.get(timeout=10)
            events.append(SentEvent(cname, notice_id, body, meta.partition, meta.offset))
        return events
    finally:
        producer.close()


def produce_raw(
    bootstrap: str,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
    timestamp_ms: int | None = None,
) -> tuple[int, int]:
    """Send one record as is (dated ``timestamp_ms``, default now); returns (partition,
    offset)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        meta = producer.send(topic, key=key, value=value, headers=headers or [],
                             timestamp_ms=timestamp_ms).get(timeout=10)
        return meta.partition, meta.offset
    finally:
        producer.close()


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic`` in order (none if it does not exist)."""
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offset per partition of ``topic`` (None: nothing committed)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {tp.partition: consumer.committed(tp) for tp in _partitions(consumer, topic)}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset per partition of ``topic``, as of the call."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        ends = consumer.end_offsets(_partitions(consumer, topic))
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` every 50 ms until true; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s:g}s")
        time.sleep(0.05)


def read_to_end(
    bootstrap: str, topic: str, isolation_level: str = "read_committed", timeout_s: float = 15
) -> list[Any]:
    """Every record of ``topic`` up to its end offsets as of the call, partition order."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level=isolation_level,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout_s:g}s")
            for tp, batch in consumer.poll(timeout_ms=200).items():
                records.extend(r for r in batch if r.offset < end[tp])
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def consume_all_uncommitted(bootstrap: str, topic: str, expected: int) -> list[Any]:
    """Like :func:`read_to_end` with ``read_uncommitted``: open and aborted transactions too."""
    del expected  # reads to the end offsets instead
    return read_to_end(bootstrap, topic, "read_uncommitted")


def json_values(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


def header(record: Any, name: str) -> str | None:
    """Last header ``name`` of a consumed record, decoded."""
    found = None
    for key, value in record.headers or ():
        if key == name:
            found = value.decode()
    return found


# --- a runner in a thread -----------------------------------------------------------------


def fast_config(
    bootstrap: str,
    names: TopicNames,
    action: str,
    *,
    max_attempts: int = 4,
    budget_s: float = 30.0,
    base_delay_s: float = 0.05,
    guard: GuardPolicy | None = None,
    group_id: str | None = None,
    transactional_id: str | None = None,
    **overrides: Any,
) -> RunnerConfig:
    """A runner configuration with short retry delays, for tests."""
    tag = uuid.uuid4().hex[:8]
    return RunnerConfig(
        group_id=group_id or f"rt-{tag}.{action}",
        transactional_id=transactional_id or f"rt-{tag}.{action}.test",
        topics=names,
        retry=RetryPolicy(
            max_attempts=max_attempts, budget_s=budget_s, base_delay_s=base_delay_s,
            max_delay_s=max(base_delay_s, 0.5),
        ),
        client_config={"bootstrap_servers": bootstrap},
        guard=guard or GuardPolicy(max_consecutive=1000, min_window_events=10_000),
        max_poll_interval_ms=60_000,
        poll_timeout_s=0.1,
        batch_time_s=0.2,
        startup_timeout_s=30.0,
        **overrides,
    )


@dataclass
class RunningRunner:
    runner: ActionRunner
    thread: threading.Thread
    metrics: RuntimeMetrics

    def stop(self, timeout_s: float = 30.0) -> RunnerExit | None:
        self.runner.stop.set()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "runner did not stop"
        return self.runner.exit

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@contextmanager
def running(
    action: Any, config: RunnerConfig, tables: Iterable[Table] = (),
    clients: ClientFactory | None = None,
) -> Iterator[RunningRunner]:
    """Run ``action`` in a thread for the duration of the block, then stop it
    (``clients``: the runner's client factory, default kafka-python's)."""
    metrics = RuntimeMetrics()
    runner = ActionRunner(
        action, config, metrics=metrics, stop=threading.Event(), tables=list(tables),
        clients=clients,
    )
    thread = threading.Thread(target=runner.run, name=f"test-{action.name}", daemon=True)
    thread.start()
    handle = RunningRunner(runner, thread, metrics)
    try:
        yield handle
    finally:
        if thread.is_alive():
            handle.stop()


# --- scripted actions -------------------------------------------------------------------


@dataclass(frozen=True)
class Cmd:
    cname: str
    notice_id: str


@dataclass
class ScriptedAction:
    """Accepts every event; ``script`` maps cname -> behaviour of ``run`` per attempt.

    Behaviours: ``"ok"``, ``"transient"``, ``"invalid"``, ``"failed"``, ``"boom"``
    (RuntimeError). The last behaviour of a cname's list repeats. Every call of ``run`` is
    recorded in ``calls`` (thread-safe), outputs go to ``output_topic`` when set.
    """

    name: str = "scripted"
    script: Mapping[str, list[str]] = field(default_factory=dict)
    output_topic: str | None = None
    state_key: bool = False
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    seen_state: list[tuple[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counts: dict[str, int] = field(default_factory=dict)

    def decide(self, event: Received, state: StateView) -> Cmd:
        cname = event.key or ""
        if self.state_key:
            self.seen_state.append((cname, state.get(cname)))
        return Cmd(cname=cname, notice_id=event.notification.notice_id)

    def handled(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(c, n) for c, n, result in self.calls if result in ("ok", "failed")]

    def run(self, command: Cmd) -> Effects:
        with self._lock:
            index = self._counts.get(command.notice_id, 0)
            self._counts[command.notice_id] = index + 1
            plan = self.script.get(command.cname, ["ok"])
            behaviour = plan[min(index, len(plan) - 1)]
            self.calls.append((command.cname, command.notice_id, behaviour))
        outputs: tuple[Output, ...] = ()
        if self.output_topic:
            outputs = (
                Output.json(self.output_topic, command.cname, {"noticeId": command.notice_id}),
            )
        state: dict[str, Any] = {}
        if self.state_key:
            state = {command.cname: {"last": command.notice_id}}
        if behaviour == "transient":
            raise TransientError("remote said 503")
        if behaviour == "invalid":
            raise InvalidEvent("details.status is missing")
        if behaviour == "failed":
            raise ActionFailed("remote said 404", Effects(outputs=outputs))
        if behaviour == "boom":
            raise RuntimeError("a bug")
        return Effects(outputs=outputs, state=state)


class SlowEcho:
    """Sleeps ``delay_s`` per record, then publishes the noticeId to the files topic."""

    def __init__(self, name: str, topic: str, delay_s: float) -> None:
        self.name = name
        self._topic = topic
        self._delay_s = delay_s

    def decide(self, event: Received, state: StateView) -> Cmd:
        return Cmd(cname=event.key or "", notice_id=event.notification.notice_id)

    def run(self, command: Cmd) -> Effects:
        time.sleep(self._delay_s)  # stands for a remote call
        return Effects(
            outputs=(Output.json(self._topic, command.cname, {"noticeId": command.notice_id}),)
        )


def slow_echo_factory(context: ActionContext) -> SlowEcho:
    """``--plugin slow=support.runtime_helpers:slow_echo_factory`` in subprocess tests."""
    return SlowEcho("slow", context.settings.topics.files, delay_s=0.02)
