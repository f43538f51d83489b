"""The HTTP edge with an in-memory publisher: every answer NCS can get, and what is published."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from flask.testing import FlaskClient

from handlers.testing.ncs_callbacks import SECRET, callback_body, signed
from webhook.app import create_app
from webhook.publisher import InMemoryPublisher
from webhook.settings import WebhookSettings
from webhook.shared.clock import FakeClock
from webhook.shared.kafka_settings import TopicNames


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


@pytest.fixture
def clock() -> FakeClock:
    # Now: callbacks carry the real time and the freshness window is on by default.
    return FakeClock(now_ms=int(time.time() * 1000))


def make_client(publisher: InMemoryPublisher, clock: FakeClock, **overrides: object) -> FlaskClient:
    settings = WebhookSettings(
        AGORA_NCS_SECRET=f"old-ncs-secret-0123456,{SECRET}",
        topics=TopicNames(),
        **overrides,  # type: ignore[arg-type]
    )
    app = create_app(settings, publisher, clock, configure_logging=False)
    return app.test_client()


@pytest.fixture
def client(publisher: InMemoryPublisher, clock: FakeClock) -> FlaskClient:
    return make_client(publisher, clock)


def test_valid_callback_is_published_unchanged_with_key_and_headers(
    client: FlaskClient, publisher: InMemoryPublisher, clock: FakeClock
) -> None:
    body = callback_body(
        event_type=11, cname="class-7", details={"msgName": "session_exit", "exitStatus": 1}
    )
    response = client.post("/ncs", data=body, headers=signed(body))
    assert response.status_code == 200
    assert response.get_json() == {}
    [record] = publisher.records
    assert record.topic == "agora.ncs.events"
    assert record.value == body
    assert record.key == b"class-7"
    sent = json.loads(body)
    assert record.header("noticeId") == sent["noticeId"]
    assert record.header("productId") == "3"
    assert record.header("eventType") == "11"
    assert record.header("sid") == sent["payload"]["sid"]
    assert record.header("received-at") == str(clock.now_ms())
    assert record.header("schema-version") == "1"


def test_unknown_event_type_is_published_like_any_other(
    client: FlaskClient, publisher: InMemoryPublisher
) -> None:
    body = callback_body(event_type=4242, details={"msgName": "from_the_future", "x": [1]})
    assert client.post("/ncs", data=body, headers=signed(body)).status_code == 200
    assert publisher.records[0].header("eventType") == "4242"


def test_missing_signature_is_401_and_publishes_nothing(
    client: FlaskClient, publisher: InMemoryPublisher
) -> None:
    body = callback_body()
    response = client.post("/ncs", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_signature"
    assert publisher.records == []


def test_wrong_signature_is_401_and_publishes_nothing(
    client: FlaskClient, publisher: InMemoryPublisher
) -> None:
    body = callback_body()
    response = client.post("/ncs", data=body, headers=signed(body, secret="not-ours"))
    assert response.status_code == 401
    assert publisher.records == []


def test_body_changed_after_signing_is_401(
    client: FlaskClient, publisher: InMemoryPublisher
) -> None:
    body = callback_body()
    headers = signed(body)
    response = client.post("/ncs", data=body.replace(b"class-101", b"class-102"), headers=headers)
    assert response.status_code == 401
    assert publisher.records == []


def test_oversized_body_is_413(publisher: InMemoryPublisher, clock: FakeClock) -> None:
    client = make_client(publisher, clock, AGORA_WEBHOOK_MAX_BODY_BYTES=1024)
    body = callback_body(details={"msgName": "x", "pad": "a" * 2000})
    response = client.post("/ncs", data=body, headers=signed(body))
    assert response.status_code == 413
    assert "1024" in response.get_json()["detail"]
    assert publisher.records == []


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b'{"noticeId": "n1"', b'{"noticeId":"n1","productId":3}', b"[]"],
    ids=["not-json", "truncated", "missing-fields", "array"],
)
def test_signed_but_invalid_body_is_quarantined_with_200(
    client: FlaskClient, publisher: InMemoryPublisher, body: bytes
) -> None:
    response = client.post("/ncs", data=body, headers=signed(body))
    assert response.status_code == 200
    [record] = publisher.records
    assert record.topic == "agora.ncs.quarantine"
    assert record.value == body
    assert record.header("quarantine-reason")


def test_broker_unavailable_is_503_with_retry_after(
    client: FlaskClient, publisher: InMemoryPublisher
) -> None:
    publisher.available = False
    body = callback_body()
    response = client.post("/ncs", data=body, headers=signed(body))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"] == "broker_unavailable"


def test_stale_notification_is_refused_when_the_guard_is_on(
    publisher: InMemoryPublisher, clock: FakeClock
) -> None:
    client = make_client(publisher, clock, AGORA_WEBHOOK_FRESHNESS_TOLERANCE_S=300)
    fresh = callback_body(notify_ms=clock.now_ms() - 1000)
    stale = callback_body(notify_ms=clock.now_ms() - 301_000)
    assert client.post("/ncs", data=fresh, headers=signed(fresh)).status_code == 200
    assert client.post("/ncs", data=stale, headers=signed(stale)).status_code == 403
    assert len(publisher.records) == 1


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.get("/ncs")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_health_readiness_and_metrics(client: FlaskClient, publisher: InMemoryPublisher) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    publisher.available = False
    assert client.get("/readyz").status_code == 503
    body = callback_body()
    client.post("/ncs", data=body, headers=signed(body))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'agora_webhook_requests_total{outcome="unavailable"}' in text


def test_secret_rotation_counts_which_secret_matched(client: FlaskClient) -> None:
    body = callback_body()
    client.post("/ncs", data=body, headers=signed(body, secret="old-ncs-secret-0123456"))
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'agora_webhook_secret_matches_total{header="Agora-Signature-V2",secret_index="0"}' in text
    )


def test_logs_carry_context_and_never_the_secret(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = callback_body(cname="class-log")
    with caplog.at_level(logging.INFO, logger="webhook.ncs"):
        client.post("/ncs", data=body, headers=signed(body))
        client.post("/ncs", data=body, headers=signed(body, secret="wrong"))
    accepted = next(r for r in caplog.records if r.getMessage() == "callback accepted")
    assert accepted.__dict__["cname"] == "class-log"
    assert accepted.__dict__["noticeId"] == json.loads(body)["noticeId"]
    for record in caplog.records:
        assert SECRET not in json.dumps(record.__dict__, default=str)


def test_a_chunked_body_over_the_limit_is_413_not_a_signature_failure(
    publisher: InMemoryPublisher, clock: FakeClock
) -> None:
    client = make_client(publisher, clock, AGORA_WEBHOOK_MAX_BODY_BYTES=1000)
    body = callback_body(details={"msgName": "x", "pad": "p" * 2000})
    # No Content-Length: the way a chunked request reaches the application.
    response = client.post("/ncs", input_stream=io.BytesIO(body), headers=signed(body))
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    assert publisher.records == []


def test_a_chunked_body_within_the_limit_is_read_whole(
    publisher: InMemoryPublisher, clock: FakeClock
) -> None:
    client = make_client(publisher, clock)
    body = callback_body()
    response = client.post("/ncs", input_stream=io.BytesIO(body), headers=signed(body))
    assert response.status_code == 200
    assert [r.value for r in publisher.records] == [body]
