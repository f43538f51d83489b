"""Replay protection at the edge, fast: the freshness window and the de-duplication memory."""

from __future__ import annotations

import json
import time

import pytest
from flask.testing import FlaskClient

from handlers.testing.ncs_callbacks import callback_body, signed
from webhook.app import create_app
from webhook.dedup import RecentNotices, body_key
from webhook.freshness import DEFAULT_TOLERANCE_S, loose_notify_ms
from webhook.publisher import InMemoryPublisher
from webhook.settings import WebhookSettings
from webhook.shared.clock import FakeClock
from webhook.shared.kafka_settings import TopicNames

TWO_YEARS_MS = 2 * 365 * 24 * 3600 * 1000


def _client(publisher: InMemoryPublisher, clock: FakeClock, **overrides: object) -> FlaskClient:
    settings = WebhookSettings(
        AGORA_NCS_SECRET="test-ncs-secret-0123456789", topics=TopicNames(), **overrides  # type: ignore[arg-type]
    )
    return create_app(settings, publisher, clock, configure_logging=False).test_client()


def _signed(body: bytes) -> dict[str, str]:
    return signed(body, "test-ncs-secret-0123456789")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now_ms=time.time_ns() // 1_000_000)


def test_the_window_is_on_by_default_and_covers_the_retry_horizon() -> None:
    settings = WebhookSettings(AGORA_NCS_SECRET="test-ncs-secret-0123456789")
    assert settings.freshness_tolerance_s == DEFAULT_TOLERANCE_S
    # Four attempts of at most 10 s each, with unpublished back-off between them: minutes,
    # not hours. The window must cover them with room for clock skew.
    assert DEFAULT_TOLERANCE_S >= 300
    assert settings.dedup_capacity > 0


def test_a_two_year_old_signed_body_is_refused_every_time(clock: FakeClock) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher, clock)
    old = callback_body(event_type=1, notify_ms=clock.now_ms() - TWO_YEARS_MS)
    answers = [client.post("/ncs", data=old, headers=_signed(old)) for _ in range(3)]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert answers[0].get_json()["error"] == "stale_notification"
    assert publisher.records == []


def test_a_fresh_body_replayed_three_times_is_published_once(clock: FakeClock) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher, clock)
    body = callback_body(event_type=1, notify_ms=clock.now_ms())
    statuses = [client.post("/ncs", data=body, headers=_signed(body)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(publisher.records) == 1


def test_a_genuine_retry_after_a_lost_answer_is_acknowledged_not_republished(
    clock: FakeClock,
) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher, clock)
    first = callback_body(notice_id="n-1", notify_ms=clock.now_ms())
    assert client.post("/ncs", data=first, headers=_signed(first)).status_code == 200
    clock.advance(30)
    # NCS's retry: same noticeId and payload, fresh notifyMs.
    data = json.loads(first)
    data["notifyMs"] = clock.now_ms()
    retry = json.dumps(data, separators=(",", ":")).encode()
    assert client.post("/ncs", data=retry, headers=_signed(retry)).status_code == 200
    assert len(publisher.records) == 1


def test_a_retry_after_a_503_is_published(clock: FakeClock) -> None:
    publisher = InMemoryPublisher()
    publisher.available = False
    client = _client(publisher, clock)
    body = callback_body(notify_ms=clock.now_ms())
    assert client.post("/ncs", data=body, headers=_signed(body)).status_code == 503
    publisher.available = True
    clock.advance(2)
    assert client.post("/ncs", data=body, headers=_signed(body)).status_code == 200
    assert len(publisher.records) == 1


def test_distinct_notifications_sharing_a_notice_id_are_both_kept(clock: FakeClock) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher, clock)
    a = callback_body(notice_id="same", cname="class-a", notify_ms=clock.now_ms())
    b = callback_body(notice_id="same", cname="class-b", notify_ms=clock.now_ms())
    for body in (a, b):
        assert client.post("/ncs", data=body, headers=_signed(body)).status_code == 200
    assert len(publisher.records) == 2


def test_a_signed_non_envelope_with_an_old_notify_ms_is_refused(clock: FakeClock) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher, clock)
    # Not an envelope (no payload), so it would be quarantined, but it is two years old.
    body = json.dumps({"noticeId": "x", "notifyMs": clock.now_ms() - TWO_YEARS_MS}).encode()
    response = client.post("/ncs", data=body, headers=_signed(body))
    assert response.status_code == 403
    assert publisher.records == []


def test_a_signed_body_without_any_timestamp_is_quarantined_once(clock: FakeClock) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher, clock)
    body = b"not json at all"
    statuses = [client.post("/ncs", data=body, headers=_signed(body)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert [r.topic for r in publisher.records] == ["agora.ncs.quarantine"]


def test_the_window_can_still_be_turned_off(clock: FakeClock) -> None:
    publisher = InMemoryPublisher()
    client = _client(publisher, clock, AGORA_WEBHOOK_FRESHNESS_TOLERANCE_S=0)
    old = callback_body(notify_ms=clock.now_ms() - TWO_YEARS_MS)
    assert client.post("/ncs", data=old, headers=_signed(old)).status_code == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"notifyMs": 5}', 5),
        (b'{"notifyMs": "17"}', 17),
        (b'{"notifyMs": true}', None),
        (b'{"notifyMs": 1.5}', None),
        (b"[1]", None),
        (b"{", None),
        (b"[" * 100_000, None),
    ],
)
def test_loose_notify_ms(body: bytes, expected: int | None) -> None:
    assert loose_notify_ms(body) == expected


def test_memory_forgets_after_its_ttl_and_stays_within_capacity() -> None:
    recent = RecentNotices(capacity=3, ttl_ms=1000)
    assert recent.claim("a", 0)
    assert not recent.claim("a", 999)
    assert recent.claim("a", 1000)  # expired, then claimed again
    for key in "bcde":
        assert recent.claim(key, 1001)
    assert len(recent) == 3
    assert recent.evicted == 2
    recent.release("e")
    assert recent.claim("e", 1002)
    assert body_key(b"x") != body_key(b"y")
