"""What several benches share: a Kafka broker, percentiles, registered recordings that die
at the fake Agora, and the restart action that restarts them under the real runtime."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from handlers.config import RecordingRules, RestartRules
from handlers.recording.client import CloudRecordingClient
from handlers.recording.restart import RestartAction
from handlers.recording.session_registry import SessionWriter, TableSessions
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.runner import ActionRunner, RunnerConfig
from handlers.runtime.state import Table
from handlers.testing.agora_recordings import ENV, PROFILE, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.ncs_callbacks import callback_body, signed
from webhook.shared.clock import SystemClock
from webhook.shared.kafka_settings import TopicNames

ROOT = Path(__file__).resolve().parent.parent
BROKER_GIVEN = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
"""Whether the benches use a broker named by KAFKA_BOOTSTRAP_SERVERS (else they start one)."""


@contextmanager
def kafka_broker(tmp: Path) -> Iterator[str]:
    """``$KAFKA_BOOTSTRAP_SERVERS`` if set, else a single-node broker in ``tmp``, stopped
    at the end of the block."""
    if BROKER_GIVEN:
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    script = [sys.executable, str(ROOT / "docker" / "kafka_local.py")]
    out = subprocess.run(
        [*script, "up", "--port", "0", "--dir", str(tmp / "kafka"), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    info = json.loads(out.strip().splitlines()[-1])
    try:
        yield info["bootstrap"]
    finally:
        subprocess.run([*script, "down", "--dir", str(tmp / "kafka")], check=False,
                       capture_output=True)


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    if len(ordered) < 2:
        return f"n={len(ordered)} values={ordered}"
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return (f"n={len(ordered)} p50={cuts[49]:.1f} p90={cuts[89]:.1f} p99={cuts[98]:.1f} "
            f"max={ordered[-1]:.1f}")


def failed_recordings(fake: FakeAgora, bootstrap: str, sessions_topic: str,
                      cnames: Iterable[str]) -> dict[str, bytes]:
    """Start each channel's recording at the fake, register it, then let it die; returns
    the ``session_exit`` (exitStatus 1) callback body of each channel."""
    writer = SessionWriter({"bootstrap_servers": bootstrap}, sessions_topic)
    failures: dict[str, bytes] = {}
    try:
        for cname in cnames:
            record = start_session(fake, cname)
            writer.publish(record)
            fake.end_session(str(record.sid))
            failures[record.cname] = callback_body(
                event_type=11, cname=record.cname, sid=str(record.sid),
                details={"msgName": "session_exit", "exitStatus": 1})
    finally:
        writer.close()
    return failures


def restart_action(client: CloudRecordingClient, table: Table, bootstrap: str,
                   topics: TopicNames, app_id: str) -> RestartAction:
    """The restart action with the benches' profile, reading the registry from ``table``."""
    action = RestartAction(
        client, sessions=TableSessions(table, lambda: SessionWriter(
            {"bootstrap_servers": bootstrap}, topics.sessions, warm=True)),
        profiles=RecordingRules(profiles=[PROFILE]), rules=RestartRules(), topics=topics,
        app_id=app_id, clock=SystemClock(), env=ENV,
    )
    action.prepare()  # as ``agora-events handlers`` does before its runners start
    return action


@contextmanager
def running_action(action: RestartAction, table: Table, bootstrap: str, topics: TopicNames,
                   group: str, retry: RetryPolicy, **options: Any) -> Iterator[None]:
    """``action`` under the real runtime in a thread for the block (``options``: more of
    :class:`RunnerConfig`, e.g. ``concurrency``)."""
    config = RunnerConfig(
        group_id=group, transactional_id=f"{group}.0", topics=topics, retry=retry,
        client_config={"bootstrap_servers": bootstrap.split(",")}, **options,
    )
    stop = threading.Event()
    runner = ActionRunner(action, config, metrics=RuntimeMetrics(), stop=stop, tables=[table])
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)


def warm_up(http: httpx.Client, ncs_url: str, tag: str) -> None:
    """One callback through the webhook, then a pause: the runner joins its group and
    reads its tables before anything is measured."""
    warm = callback_body(event_type=40, cname=f"warm-{tag}")
    http.post(ncs_url, content=warm, headers=signed(warm))
    time.sleep(5)  # a benchmark, not a test: let the consumer settle
