"""Alert sinks against the fake receivers, which verify each documented format."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from handlers.action_contract import ActionFailed, TransientError
from handlers.config import AlertSink
from handlers.notify.alerts import Alert
from handlers.notify.sinks import (
    PagerDutySink,
    SinkConfigError,
    SlackSink,
    WebhookSink,
    sign,
    signing_key,
)
from handlers.testing.fake_sinks import FakeSinks, verify_standard_webhook
from webhook.shared.clock import SystemClock

# The Standard Webhooks specification's published test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
RAW_SECRET = "a-plain-shared-secret-of-32-bytes!"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One client for the module: building its TLS context is the slow part.
    with httpx.Client() as c:
        yield c


def alert(transition: str = "trigger", summary: str = "fatal-error: boom on cname c1") -> Alert:
    return Alert(
        transition=transition,  # type: ignore[arg-type]
        incident='["fatal-error","c1","s1"]',
        episode="n1",
        rule="fatal-error",
        severity="critical",
        summary=summary,
        cname="c1",
        sid="s1",
        component="cloud-recording",
        alert_class="cloud_recording_error",
        sinks=("x",),
        occurred_ms=1_700_000_000_000,
        details={"errorCode": 52},
    )


def webhook(
    url: str, secret: str | None, client: httpx.Client, timeout_s: float = 5
) -> WebhookSink:
    config = AlertSink(name="ops", kind="webhook", url=url, secret=secret, timeout_s=timeout_s)
    return WebhookSink(config, client, SystemClock())


# --- Standard Webhooks signing -------------------------------------------------------------


def test_signature_matches_the_specification_test_vector() -> None:
    assert sign(signing_key(SPEC_SECRET), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_fake_verifier_accepts_the_specification_test_vector() -> None:
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP),
               "webhook-signature": f"v1,bm9wZQ== {SPEC_SIGNATURE}"}
    assert verify_standard_webhook(SPEC_SECRET, headers, SPEC_BODY, SPEC_TIMESTAMP, 300) == []
    tampered = SPEC_BODY.replace(b"2", b"3")
    assert verify_standard_webhook(SPEC_SECRET, headers, tampered, SPEC_TIMESTAMP, 300) != []


def test_signing_key_forms() -> None:
    assert signing_key("plain") == b"plain"
    assert signing_key("whsec_" + base64.b64encode(b"k" * 24).decode()) == b"k" * 24
    for bad in ("whsec_not*base64", "whsec_", ""):
        with pytest.raises(SinkConfigError) as caught:
            signing_key(bad)
        assert "not*base64" not in str(caught.value)


def test_a_malformed_secret_fails_at_construction_naming_the_sink(client: httpx.Client) -> None:
    with pytest.raises(SinkConfigError, match="'ops'") as caught:
        webhook("http://127.0.0.1:9/x", "whsec_%%%secret%%%", client)
    assert "secret%%%" not in str(caught.value)


# --- webhook -------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [SPEC_SECRET, RAW_SECRET])
def test_webhook_delivery_verifies_at_the_receiver(
    fake_sinks: FakeSinks, client: httpx.Client, secret: str
) -> None:
    sink = webhook(fake_sinks.webhook_url("ops", secret), secret, client)
    sink.send(alert())
    [delivery] = fake_sinks.deliveries("ops")
    assert delivery.problems == ()
    assert delivery.headers["webhook-id"] == alert().message_id
    assert delivery.headers["content-type"] == "application/json"
    body = delivery.json
    assert body["type"] == "agora.alert.triggered"
    assert body["data"]["dedupKey"] == '["fatal-error","c1","s1"]'
    assert body["data"]["status"] == "triggered"
    assert body["data"]["details"] == {"errorCode": 52}


def test_the_receiver_refuses_a_signature_made_with_another_secret(
    fake_sinks: FakeSinks, client: httpx.Client
) -> None:
    url = fake_sinks.webhook_url("ops", SPEC_SECRET)
    with pytest.raises(ActionFailed, match="HTTP 401"):
        webhook(url, RAW_SECRET, client).send(alert())
    [attempt] = fake_sinks.attempts("ops")
    assert "no webhook-signature entry matches" in attempt.problems


def test_webhook_retries_reuse_the_id_with_a_fresh_signature(
    fake_sinks: FakeSinks, client: httpx.Client
) -> None:
    sink = webhook(fake_sinks.webhook_url("ops", SPEC_SECRET), SPEC_SECRET, client)
    fake_sinks.script("ops", 500)
    with pytest.raises(TransientError, match="HTTP 500"):
        sink.send(alert())
    sink.send(alert())
    first, second = fake_sinks.attempts("ops")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.accepted
    assert second.problems == ()
    resolved = alert("resolve")
    sink.send(resolved)
    assert fake_sinks.deliveries("ops")[-1].headers["webhook-id"] != first.headers["webhook-id"]
    assert fake_sinks.deliveries("ops")[-1].json["type"] == "agora.alert.resolved"


def test_webhook_without_secret_is_sent_unsigned(
    fake_sinks: FakeSinks, client: httpx.Client
) -> None:
    webhook(fake_sinks.webhook_url("ops", None), None, client).send(alert())
    [delivery] = fake_sinks.deliveries("ops")
    assert "webhook-signature" not in delivery.headers
    assert delivery.headers["webhook-id"]


# --- Slack ---------------------------------------------------------------------------------


def test_slack_delivery_has_text_and_blocks(fake_sinks: FakeSinks, client: httpx.Client) -> None:
    url = fake_sinks.slack_url("chat")
    sink = SlackSink(AlertSink(name="chat", kind="slack", url=url), client)
    sink.send(alert(summary="fatal <b> & co"))
    sink.send(alert("resolve"))
    trigger, resolve = fake_sinks.deliveries("chat")
    assert trigger.problems == ()
    assert resolve.problems == ()
    assert "fatal &lt;b&gt; &amp; co" in trigger.json["text"]
    assert trigger.json["blocks"][0]["type"] == "section"
    assert "CRITICAL" in trigger.json["text"]
    assert "RESOLVED" in resolve.json["text"]


def test_slack_wrong_url_is_permanent_and_the_url_stays_secret(
    fake_sinks: FakeSinks, client: httpx.Client
) -> None:
    good = fake_sinks.slack_url("chat")
    wrong = good.rsplit("/", 1)[0] + "/0000000000deadbeef"
    with pytest.raises(ActionFailed, match="HTTP 404") as caught:
        SlackSink(AlertSink(name="chat", kind="slack", url=wrong), client).send(alert())
    assert "deadbeef" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)


# --- PagerDuty -----------------------------------------------------------------------------


def pagerduty(url: str, client: httpx.Client) -> PagerDutySink:
    config = AlertSink(name="pd", kind="pagerduty", url=url, routing_key=ROUTING_KEY)
    return PagerDutySink(config, client)


def test_pagerduty_trigger_and_resolve_share_the_dedup_key(
    fake_sinks: FakeSinks, client: httpx.Client
) -> None:
    sink = pagerduty(fake_sinks.pagerduty_url("pd"), client)
    sink.send(alert())
    sink.send(alert("resolve"))
    trigger, resolve = fake_sinks.deliveries("pd")
    assert trigger.status == resolve.status == 202
    assert trigger.problems == ()
    assert resolve.problems == ()
    sent = trigger.json
    assert sent["event_action"] == "trigger"
    assert sent["routing_key"] == ROUTING_KEY
    payload = sent["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "c1"
    assert payload["class"] == "cloud_recording_error"
    assert payload["group"] == "fatal-error"
    assert payload["timestamp"].startswith("2023-11-14T22:13:20")
    assert payload["custom_details"]["details"] == {"errorCode": 52}
    assert resolve.json["event_action"] == "resolve"
    assert resolve.json["dedup_key"] == sent["dedup_key"] == alert().dedup_key
    assert "payload" not in resolve.json


def test_pagerduty_summary_is_cut_to_1024(fake_sinks: FakeSinks, client: httpx.Client) -> None:
    pagerduty(fake_sinks.pagerduty_url("pd"), client).send(alert(summary="x" * 5000))
    [delivery] = fake_sinks.deliveries("pd")
    assert len(delivery.json["payload"]["summary"]) == 1024


def test_pagerduty_default_url_is_the_events_v2_endpoint(client: httpx.Client) -> None:
    config = AlertSink(name="pd", kind="pagerduty", routing_key=ROUTING_KEY)
    sink = PagerDutySink(config, client)
    assert sink._url == "https://events.pagerduty.com/v2/enqueue"


# --- error classification ------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_retryable_statuses_are_transient(
    fake_sinks: FakeSinks, client: httpx.Client, status: int
) -> None:
    sink = pagerduty(fake_sinks.pagerduty_url("pd"), client)
    fake_sinks.script("pd", status)
    with pytest.raises(TransientError, match=f"HTTP {status}"):
        sink.send(alert())


def test_retry_after_is_passed_on(fake_sinks: FakeSinks, client: httpx.Client) -> None:
    sink = pagerduty(fake_sinks.pagerduty_url("pd"), client)
    fake_sinks.script("pd", 429, retry_after="7")
    with pytest.raises(TransientError) as caught:
        sink.send(alert())
    assert caught.value.retry_after_s == 7.0


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_other_client_errors_are_permanent(
    fake_sinks: FakeSinks, client: httpx.Client, status: int
) -> None:
    sink = pagerduty(fake_sinks.pagerduty_url("pd"), client)
    fake_sinks.script("pd", status)
    with pytest.raises(ActionFailed, match=f"'pd' \\(pagerduty\\): HTTP {status}") as caught:
        sink.send(alert())
    assert ROUTING_KEY not in str(caught.value)


def test_invalid_event_at_pagerduty_is_permanent(
    fake_sinks: FakeSinks, client: httpx.Client
) -> None:
    config = AlertSink(name="pd", kind="pagerduty", url=fake_sinks.pagerduty_url("pd"),
                       routing_key="too-short")
    with pytest.raises(ActionFailed, match="HTTP 400"):
        PagerDutySink(config, client).send(alert())
    [attempt] = fake_sinks.attempts("pd")
    assert "routing_key must be the 32-character integration key" in attempt.problems


def test_connection_refused_is_transient(client: httpx.Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError, match="ConnectError"):
        webhook(f"http://127.0.0.1:{port}/hook", RAW_SECRET, client).send(alert())


def test_timeout_is_transient(client: httpx.Client) -> None:
    # A listening socket that never answers: the connection is queued, the read times out.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with pytest.raises(TransientError, match=r"timed out after 0\.2 s") as caught:
            webhook(f"http://127.0.0.1:{port}/hook?token=abc", RAW_SECRET, client, 0.2).send(
                alert()
            )
    assert "token=abc" not in str(caught.value)


def test_rendered_bodies_hold_no_secret(fake_sinks: FakeSinks, client: httpx.Client) -> None:
    webhook(fake_sinks.webhook_url("ops", RAW_SECRET), RAW_SECRET, client).send(alert())
    SlackSink(AlertSink(name="chat", kind="slack", url=fake_sinks.slack_url("chat")),
              client).send(alert())
    traffic = fake_sinks.raw_traffic()
    assert RAW_SECRET.encode() not in traffic
    assert fake_sinks.slack_token("chat").encode() not in traffic
    assert json.loads(fake_sinks.deliveries("ops")[0].body)["data"]["cname"] == "c1"
