from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.runtime.health import HealthServer, Liveness
from handlers.runtime.metrics import RuntimeMetrics


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_loop_that_stops_beating_is_stale(tmp_path: Path) -> None:
    ticks = Ticks()
    health = tmp_path / "alive"
    liveness = Liveness(stale_after_s=30, health_file=health, monotonic=ticks)
    liveness.register("restart")
    liveness.register("notify")
    liveness.beat("restart")
    assert health.exists()
    ticks.now += 31
    liveness.beat("restart")
    assert liveness.stale() == ["notify"]
    stamp = health.stat().st_mtime_ns
    os.utime(health, ns=(0, 0))
    liveness.beat("restart")  # not touched while any loop is stale
    assert health.stat().st_mtime_ns == 0
    liveness.beat("notify")
    assert liveness.stale() == []
    assert health.stat().st_mtime_ns >= stamp


def test_a_loop_stopped_on_purpose_is_not_stale() -> None:
    ticks = Ticks()
    liveness = Liveness(stale_after_s=5, monotonic=ticks)
    liveness.register("echo")
    liveness.stopped("echo")
    ticks.now += 60
    assert liveness.stale() == []


@pytest.fixture
def served() -> Iterator[tuple[str, Ticks, Liveness, RuntimeMetrics]]:
    ticks = Ticks()
    liveness = Liveness(stale_after_s=10, monotonic=ticks)
    metrics = RuntimeMetrics()
    server = HealthServer(metrics.registry, liveness, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{server.port}", ticks, liveness, metrics
    finally:
        server.close()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_healthz_reports_stale_loops(served: tuple[str, Ticks, Liveness, RuntimeMetrics]) -> None:
    base, ticks, liveness, _ = served
    liveness.register("restart")
    assert get(base + "/healthz") == (200, b'{"status": "ok"}')
    ticks.now += 11
    status, body = get(base + "/healthz")
    assert status == 503
    assert json.loads(body) == {"status": "stale", "stale": ["restart"]}


def test_metrics_and_unknown_paths(served: tuple[str, Ticks, Liveness, RuntimeMetrics]) -> None:
    base, _, _, metrics = served
    metrics.outcomes.labels(action="echo", outcome="ok").inc(3)
    status, body = get(base + "/metrics")
    assert status == 200
    assert b'agora_handler_outcomes_total{action="echo",outcome="ok"} 3.0' in body
    assert get(base + "/nope")[0] == 404
