"""HTTP clients for the alert sinks: a generic webhook signed the Standard Webhooks way, a
Slack incoming webhook, and PagerDuty Events v2.

Every sink turns the remote answer into the runtime's error contract: 2xx is delivered;
429, 408, 5xx, timeouts and connection errors raise :class:`TransientError` (retried with
backoff, then dead-lettered); any other status raises :class:`ActionFailed`. Sink URLs
(Slack's carries its token), routing keys and signing secrets never appear in an error
message: errors name the sink and the status only.

Webhook signing secret: a value starting with ``whsec_`` is the Standard Webhooks form and
the rest is the base64 key (what the standard's libraries expect); any other value is used
as raw UTF-8 key bytes, for receivers that take a plain shared secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from handlers.action_contract import ActionFailed, TransientError
from handlers.config import AlertSink
from handlers.notify.alerts import Alert
from webhook.shared.clock import Clock

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker, not a secret
USER_AGENT = "agora-events-notify"

# PagerDuty truncates nothing for us: longer summaries are refused.
_PD_SUMMARY_MAX = 1024
# Slack refuses section texts longer than 3000 characters.
_SLACK_SECTION_MAX = 3000

# httpx logs every request URL at INFO, and a Slack URL is a credential.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class SinkConfigError(ValueError):
    """A sink's configuration cannot work (e.g. a malformed ``whsec_`` secret)."""


class Sink(Protocol):
    """Delivers one alert transition or raises TransientError / ActionFailed."""

    name: str

    def send(self, alert: Alert) -> None: ...


# --- Standard Webhooks ---------------------------------------------------------------------


def signing_key(secret: str) -> bytes:
    """Key bytes for *secret*: base64-decoded after ``whsec_``, else the raw UTF-8 bytes.

    Raises :class:`SinkConfigError` (without the value) when the ``whsec_`` part is not
    base64 or is empty.
    """
    if not secret.startswith(SECRET_PREFIX):
        if not secret:
            raise SinkConfigError("signing secret is empty")
        return secret.encode()
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SinkConfigError("signing secret after 'whsec_' is not valid base64") from None
    if not key:
        raise SinkConfigError("signing secret after 'whsec_' is empty")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# --- shared HTTP handling ------------------------------------------------------------------


def _retry_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None  # an HTTP date: let the runtime's own backoff decide
    return max(seconds, 0.0)


def _json_bytes(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _post(
    client: httpx.Client,
    sink: AlertSink,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
) -> None:
    """POST and classify the answer. Messages name the sink, never the URL."""
    where = f"alert sink {sink.name!r} ({sink.kind})"
    try:
        response = client.post(
            url,
            content=body,
            headers={"content-type": "application/json", "user-agent": USER_AGENT, **headers},
            timeout=sink.timeout_s,
        )
    except httpx.TimeoutException:
        raise TransientError(f"{where}: timed out after {sink.timeout_s:g} s") from None
    except httpx.TransportError as exc:
        raise TransientError(f"{where}: {type(exc).__name__}") from None
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (408, 429) or status >= 500:
        raise TransientError(f"{where}: HTTP {status}", _retry_after(response.headers))
    raise ActionFailed(f"{where}: HTTP {status} (not retried)")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def webhook_body(alert: Alert, now_ms: int) -> dict[str, Any]:
    """The generic webhook's body (documented in docs/contracts/openapi-handlers.json)."""
    kind = "triggered" if alert.transition == "trigger" else "resolved"
    return {"type": f"agora.alert.{kind}", "timestamp": _iso(now_ms), "data": alert.describe()}


# --- sinks ---------------------------------------------------------------------------------


class WebhookSink:
    """Generic webhook with a Standard Webhooks signature.

    Body: ``{"type": "agora.alert.triggered"|"agora.alert.resolved", "timestamp": <ISO>,
    "data": Alert.describe()}``. Headers: ``webhook-id`` (same on every retry of the
    transition), ``webhook-timestamp`` (seconds, fresh per attempt) and, when a secret is
    configured, ``webhook-signature``.
    """

    def __init__(self, config: AlertSink, client: httpx.Client, clock: Clock) -> None:
        if config.kind != "webhook" or not config.url:
            raise SinkConfigError(f"sink {config.name!r} is not a webhook sink with a url")
        self.name = config.name
        self._config = config
        self._url = config.url
        self._client = client
        self._clock = clock
        try:
            self._key = signing_key(config.secret) if config.secret is not None else None
        except SinkConfigError as exc:
            raise SinkConfigError(f"sink {config.name!r}: {exc}") from None

    def render(self, alert: Alert, now_ms: int) -> bytes:
        return _json_bytes(webhook_body(alert, now_ms))

    def send(self, alert: Alert) -> None:
        now_ms = self._clock.now_ms()
        timestamp = now_ms // 1000
        body = self.render(alert, now_ms)
        headers = {"webhook-id": alert.message_id, "webhook-timestamp": str(timestamp)}
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, alert.message_id, timestamp, body)
        _post(self._client, self._config, self._url, body, headers)


def _slack_escape(text: str) -> str:
    # Slack mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSink:
    """Slack incoming webhook: ``text`` (notification fallback) plus Block Kit ``blocks``."""

    def __init__(self, config: AlertSink, client: httpx.Client) -> None:
        if config.kind != "slack" or not config.url:
            raise SinkConfigError(f"sink {config.name!r} is not a slack sink with a url")
        self.name = config.name
        self._config = config
        self._url = config.url
        self._client = client

    @staticmethod
    def render(alert: Alert) -> dict[str, Any]:
        if alert.transition == "trigger":
            headline = f":rotating_light: *{alert.severity.upper()}* {alert.summary}"
        else:
            headline = f":white_check_mark: *RESOLVED* {alert.summary}"
        headline = _slack_escape(headline)[:_SLACK_SECTION_MAX]
        facts = [f"rule `{alert.rule}`", f"cname `{alert.cname}`"]
        if alert.sid:
            facts.append(f"sid `{alert.sid}`")
        facts.append(f"incident `{alert.dedup_key}`")
        context = _slack_escape(" · ".join(facts))[:_SLACK_SECTION_MAX]
        return {
            "text": headline,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }

    def send(self, alert: Alert) -> None:
        _post(self._client, self._config, self._url, _json_bytes(self.render(alert)), {})


class PagerDutySink:
    """PagerDuty Events API v2: trigger with the incident's ``dedup_key``, resolve with the
    same key. PagerDuty answers 202 when it accepted the event."""

    def __init__(self, config: AlertSink, client: httpx.Client) -> None:
        if config.kind != "pagerduty" or not config.routing_key:
            raise SinkConfigError(f"sink {config.name!r} is not a pagerduty sink with a key")
        self.name = config.name
        self._config = config
        self._url = config.url or PAGERDUTY_EVENTS_URL
        self._routing_key = config.routing_key
        self._client = client

    def render(self, alert: Alert) -> dict[str, Any]:
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "dedup_key": alert.dedup_key,
            "client": USER_AGENT,
        }
        if alert.transition == "resolve":
            event["event_action"] = "resolve"
            return event
        payload: dict[str, Any] = {
            "summary": alert.summary[:_PD_SUMMARY_MAX],
            "source": alert.cname,
            "severity": alert.severity,
            "component": alert.component,
            "group": alert.rule,
            "class": alert.alert_class,
            "custom_details": alert.describe(),
        }
        if alert.occurred_ms is not None:
            payload["timestamp"] = _iso(alert.occurred_ms)
        event["event_action"] = "trigger"
        event["payload"] = payload
        return event

    def send(self, alert: Alert) -> None:
        _post(self._client, self._config, self._url, _json_bytes(self.render(alert)), {})


def build_sinks(
    configs: list[AlertSink], client: httpx.Client, clock: Clock
) -> dict[str, Sink]:
    """One client per configured sink, by name. Raises :class:`SinkConfigError` at start-up
    for a sink that could never deliver."""
    sinks: dict[str, Sink] = {}
    for config in configs:
        if config.kind == "webhook":
            sinks[config.name] = WebhookSink(config, client, clock)
        elif config.kind == "slack":
            sinks[config.name] = SlackSink(config, client)
        else:
            sinks[config.name] = PagerDutySink(config, client)
    return sinks
