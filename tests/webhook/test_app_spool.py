"""The HTTP edge with the disk spool on: what NCS is told and what reaches the topic."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from handlers.testing.ncs_callbacks import SECRET, callback_body, signed
from webhook.app import create_app
from webhook.drainer import SpoolDrainer
from webhook.publisher import InMemoryPublisher
from webhook.settings import WebhookSettings
from webhook.shared.clock import FakeClock
from webhook.shared.kafka_settings import TopicNames
from webhook.spool import Spool


@pytest.fixture
def now_ms() -> int:
    """The app's clock: the real time when the test starts, since callbacks carry the real
    time and must fall inside the freshness window however late in a run the test comes."""
    return int(time.time() * 1000)


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


def spool_settings(directory: Path, **overrides: object) -> WebhookSettings:
    return WebhookSettings(
        AGORA_NCS_SECRET=SECRET,
        AGORA_WEBHOOK_SPOOL_DIR=str(directory),
        topics=TopicNames(),
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
def client(tmp_path: Path, publisher: InMemoryPublisher, now_ms: int) -> Iterator[FlaskClient]:
    # No drainer thread: the tests drain explicitly, so every step is deterministic.
    app = create_app(
        spool_settings(tmp_path), publisher, FakeClock(now_ms), False, start_drainer=False
    )
    yield app.test_client()
    close_spool(app)


def close_spool(app: Flask) -> None:
    app.extensions["agora_events.spool"].close()


def post(client: FlaskClient, n: int, cname: str = "class-1") -> int:
    body = callback_body(cname=cname, notice_id=f"notice-{n}", sequence=n)
    return client.post("/ncs", data=body, headers=signed(body)).status_code


def drain(directory: Path, publisher: InMemoryPublisher) -> None:
    with Spool(directory, max_bytes=1 << 30) as spool:
        drainer = SpoolDrainer(spool, publisher, 1, ("agora.ncs.events", "agora.ncs.quarantine"))
        while drainer.drain_once()[1]:
            pass


def notice_ids(publisher: InMemoryPublisher) -> list[str | None]:
    return [r.header("noticeId") for r in publisher.records]


def test_an_unavailable_broker_still_gets_200_and_nothing_is_lost(
    client: FlaskClient, publisher: InMemoryPublisher, tmp_path: Path
) -> None:
    publisher.available = False
    assert [post(client, n) for n in range(3)] == [200, 200, 200]
    assert publisher.records == []
    publisher.available = True
    drain(tmp_path, publisher)
    assert notice_ids(publisher) == ["notice-0", "notice-1", "notice-2"]


def test_new_callbacks_queue_behind_spooled_ones_to_keep_order(
    client: FlaskClient, publisher: InMemoryPublisher, tmp_path: Path
) -> None:
    publisher.available = False
    assert post(client, 0) == 200
    publisher.available = True  # the broker is back before the drainer ran
    assert post(client, 1) == 200
    assert publisher.records == []  # 1 did not overtake 0
    drain(tmp_path, publisher)
    assert post(client, 2) == 200  # spool empty again: straight to the broker
    assert notice_ids(publisher) == ["notice-0", "notice-1", "notice-2"]


def test_readiness_and_metrics_show_the_spool(
    client: FlaskClient, publisher: InMemoryPublisher, tmp_path: Path, now_ms: int
) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["spool"]["pendingBytes"] == 0
    publisher.available = False
    post(client, 0)
    degraded = client.get("/readyz")
    assert degraded.status_code == 200
    body = degraded.get_json()
    assert body["status"] == "degraded"
    assert body["spool"]["pendingBytes"] > 0
    assert body["spool"]["oldestSpooledAtMs"] == now_ms
    text = client.get("/metrics").get_data(as_text=True)
    assert 'agora_webhook_requests_total{outcome="spooled"}' in text
    pending = next(
        line for line in text.splitlines() if line.startswith("agora_webhook_spool_pending_bytes ")
    )
    assert float(pending.split()[1]) == body["spool"]["pendingBytes"]


def test_a_full_spool_answers_503_with_retry_after(
    tmp_path: Path, publisher: InMemoryPublisher, now_ms: int
) -> None:
    settings = spool_settings(tmp_path, AGORA_WEBHOOK_SPOOL_MAX_BYTES=2200)
    app = create_app(settings, publisher, FakeClock(now_ms), False, start_drainer=False)
    client = app.test_client()
    publisher.available = False
    try:
        statuses = [post(client, n) for n in range(5)]
        assert statuses[0] == 200
        assert 503 in statuses
        body = callback_body()
        refused = client.post("/ncs", data=body, headers=signed(body))
        assert refused.status_code == 503
        assert refused.get_json()["error"] == "spool_full"
        assert refused.headers["Retry-After"] == "1"
        assert client.get("/readyz").status_code == 503
        publisher.available = True
        drain(tmp_path, publisher)
    finally:
        close_spool(app)
    # Exactly the callbacks answered 200 were published, in order.
    accepted = [f"notice-{n}" for n, status in enumerate(statuses) if status == 200]
    assert notice_ids(publisher) == accepted


def test_signature_checks_come_before_the_spool(
    client: FlaskClient, publisher: InMemoryPublisher, tmp_path: Path
) -> None:
    publisher.available = False
    body = callback_body()
    forged = client.post("/ncs", data=body, headers=signed(body, secret="not-the-secret"))
    assert forged.status_code == 401
    with Spool(tmp_path, max_bytes=1 << 20) as spool:
        assert not spool.has_pending()


def test_an_unparseable_signed_body_is_spooled_for_quarantine(
    client: FlaskClient, publisher: InMemoryPublisher, tmp_path: Path
) -> None:
    publisher.available = False
    body = b'{"noticeId": "broken"'
    assert client.post("/ncs", data=body, headers=signed(body)).status_code == 200
    publisher.available = True
    drain(tmp_path, publisher)
    [record] = publisher.records
    assert record.topic == "agora.ncs.quarantine"
    assert record.value == body
    assert json.loads(client.get("/readyz").get_data())["status"] == "ready"
