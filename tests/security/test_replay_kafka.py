"""Attack 3 against the real webhook (gunicorn) and a real broker: captured callbacks replayed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from support.kafka_broker import consume_all

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook

pytestmark = pytest.mark.kafka

TWO_YEARS_MS = 2 * 365 * 24 * 3600 * 1000


def test_replayed_callbacks_are_refused_or_published_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events, quarantine])
    now = time.time_ns() // 1_000_000
    ancient = callback_body(event_type=1, cname="old", notify_ms=now - TWO_YEARS_MS)
    ancient_odd = json.dumps({"noticeId": "x", "notifyMs": now - TWO_YEARS_MS}).encode()
    fresh = callback_body(event_type=1, cname="fresh", notify_ms=now)
    env = {"AGORA_TOPIC_EVENTS": events, "AGORA_TOPIC_QUARANTINE": quarantine}
    # One worker: the de-duplication memory is per worker (docs/security.md), and this test
    # pins the exact count; with W workers a replay is published at most W times.
    with (
        run_webhook(kafka_bootstrap, tmp_path, env=env, workers=1) as server,
        httpx.Client(timeout=10) as http,
    ):
        def post(body: bytes) -> int:
            return http.post(server.ncs_url, content=body, headers=signed(body)).status_code

        assert [post(ancient) for _ in range(3)] == [403, 403, 403]
        assert [post(ancient_odd) for _ in range(3)] == [403, 403, 403]
        assert [post(fresh) for _ in range(3)] == [200, 200, 200]
        # NCS's own retry of the same notification (fresh notifyMs) is acknowledged.
        retry = json.loads(fresh)
        retry["notifyMs"] = time.time_ns() // 1_000_000
        retried = json.dumps(retry, separators=(",", ":")).encode()
        assert post(retried) == 200
        metrics = http.get(f"{server.url}/metrics").text
    records = consume_all(kafka_bootstrap, events, expected=2, timeout_s=10)
    assert [r.value for r in records] == [fresh]
    assert consume_all(kafka_bootstrap, quarantine, expected=1, timeout_s=2) == []
    assert 'agora_webhook_requests_total{outcome="duplicate"} 3.0' in metrics
    assert 'agora_webhook_requests_total{outcome="stale"} 6.0' in metrics
