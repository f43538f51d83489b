"""Fake alert sinks: a real threaded HTTP server on 127.0.0.1 that checks each documented
format the way the real receiver would, and records every attempt.

- ``/webhook/<name>``: Standard Webhooks receiver. Requires ``webhook-id``,
  ``webhook-timestamp`` (within the tolerance of the fake's clock) and, when the endpoint
  has a secret, a ``webhook-signature`` list with a ``v1,<base64>`` entry matching
  HMAC-SHA256 of ``id.timestamp.body`` (secret ``whsec_<base64>`` or raw bytes). The
  check is written here independently of the code under test. 401 on a signature
  problem, 400 on a body problem, 204 when accepted.
- ``/slack/<name>/<token>``: Slack incoming webhook. JSON with a non-empty ``text`` and,
  when present, ``blocks`` as a list of objects with a ``type``. 200 ``ok``; 400
  ``invalid_payload`` otherwise; 404 ``no_service`` for a wrong token.
- ``/pagerduty/<name>/v2/enqueue``: PagerDuty Events API v2. ``routing_key`` (32
  characters), ``event_action`` (trigger, acknowledge, resolve), ``dedup_key`` (<= 255,
  required unless trigger), and for a trigger a ``payload`` with ``summary`` (1..1024),
  ``source``, ``severity`` (critical, error, warning, info). 202 like PagerDuty, with
  ``dedup_key`` in the answer; 400 ``invalid event`` with ``errors`` otherwise.

Endpoints can be scripted to answer given statuses first (``script``) or always
(``fail_always``), or to answer slowly (``slow``, standing for a remote's latency);
scripted answers are recorded like any other attempt.

What a receiver makes of the deliveries (``receiver_view``): a Standard Webhooks receiver
drops a repeated ``webhook-id``; PagerDuty merges a trigger into the open incident of its
``dedup_key`` and ignores a resolve of a resolved one, but opens a new incident for a
trigger that follows a resolve.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PD_SEVERITIES = frozenset({"critical", "error", "warning", "info"})
PD_ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})


@dataclass(frozen=True)
class Attempt:
    """One request to a fake sink, with the answer it got."""

    name: str
    kind: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int
    problems: tuple[str, ...]
    delay_s: float = 0.0

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Endpoint:
    kind: str
    secret: str | None = None
    token: str = ""
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    always: int | None = None
    delay_s: float = 0.0


def verify_standard_webhook(
    secret: str, headers: dict[str, str], body: bytes, now_s: float, tolerance_s: float
) -> list[str]:
    """Problems with a Standard Webhooks delivery (empty when it verifies)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id:
        return ["webhook-id missing"]
    if not timestamp or not timestamp.isdigit():
        return ["webhook-timestamp missing or not integer seconds"]
    if abs(now_s - int(timestamp)) > tolerance_s:
        return ["webhook-timestamp outside tolerance"]
    if not signatures:
        return ["webhook-signature missing"]
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_"):], validate=True)
        except binascii.Error:
            return ["endpoint secret is not base64 (test setup)"]
    else:
        key = secret.encode()
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            presented = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(presented, expected):
            return []
    return ["no webhook-signature entry matches"]


def _json_object(body: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        value = json.loads(body)
    except ValueError:
        return None, ["body is not JSON"]
    if not isinstance(value, dict):
        return None, ["body is not a JSON object"]
    return value, []


def check_webhook_body(body: bytes) -> list[str]:
    value, problems = _json_object(body)
    if value is None:
        return problems
    problems += [f"{k} missing" for k in ("type", "timestamp", "data") if k not in value]
    if "data" in value and not isinstance(value["data"], dict):
        problems.append("data is not an object")
    return problems


def check_slack_body(body: bytes) -> list[str]:
    value, problems = _json_object(body)
    if value is None:
        return problems
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text missing or empty")
    blocks = value.get("blocks")
    if blocks is not None:
        if not isinstance(blocks, list) or not blocks:
            problems.append("blocks is not a non-empty list")
        elif not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks):
            problems.append("every block needs a type")
    return problems


def check_pagerduty_body(body: bytes) -> list[str]:
    value, problems = _json_object(body)
    if value is None:
        return problems
    key = value.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        problems.append("routing_key must be the 32-character integration key")
    action = value.get("event_action")
    if action not in PD_ACTIONS:
        problems.append("event_action must be trigger, acknowledge or resolve")
    dedup = value.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        problems.append("dedup_key must be a string of 1..255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        problems.append("dedup_key is required to acknowledge or resolve")
    if action == "trigger":
        payload = value.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "payload is required to trigger"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not 1 <= len(summary) <= 1024:
            problems.append("payload.summary must be 1..1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            problems.append("payload.source is required")
        if payload.get("severity") not in PD_SEVERITIES:
            problems.append("payload.severity must be critical, error, warning or info")
        for name in ("component", "group", "class"):
            if name in payload and not isinstance(payload[name], str):
                problems.append(f"payload.{name} must be a string")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            problems.append("payload.custom_details must be an object")
        if "timestamp" in payload:
            try:
                datetime.fromisoformat(str(payload["timestamp"]))
            except ValueError:
                problems.append("payload.timestamp must be ISO 8601")
    return problems


class FakeSinks:
    """Start with ``with FakeSinks() as fake:`` or the tests' ``fake_sinks`` fixture; register
    endpoints with ``webhook_url``/``slack_url``/``pagerduty_url`` (each returns the URL)."""

    def __init__(
        self, *, tolerance_s: float = 300.0, now_s: Callable[[], float] = time.time
    ) -> None:
        self.tolerance_s = tolerance_s
        self._now_s = now_s
        self._endpoints: dict[str, _Endpoint] = {}
        self._attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown (once per test) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeSinks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # --- registration and scripting ---------------------------------------------------------

    def webhook_url(self, name: str, secret: str | None) -> str:
        self._endpoints[name] = _Endpoint("webhook", secret=secret)
        return f"{self.base_url}/webhook/{name}"

    def slack_url(self, name: str) -> str:
        endpoint = _Endpoint("slack", token=secrets.token_hex(12))
        self._endpoints[name] = endpoint
        return f"{self.base_url}/slack/{name}/{endpoint.token}"

    def slack_token(self, name: str) -> str:
        return self._endpoints[name].token

    def pagerduty_url(self, name: str) -> str:
        self._endpoints[name] = _Endpoint("pagerduty")
        return f"{self.base_url}/pagerduty/{name}/v2/enqueue"

    def script(self, name: str, *statuses: int, retry_after: str | None = None) -> None:
        """Answer the next requests to ``name`` with these statuses, then normally."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._endpoints[name].script.extend((s, headers) for s in statuses)

    def fail_always(self, name: str, status: int = 500) -> None:
        with self._lock:
            self._endpoints[name].always = status

    def slow(self, name: str, delay_s: float) -> None:
        """Answer every request to ``name`` after ``delay_s`` (the request is recorded first)."""
        with self._lock:
            self._endpoints[name].delay_s = delay_s

    def heal(self, name: str) -> None:
        with self._lock:
            self._endpoints[name].always = None
            self._endpoints[name].script.clear()

    # --- what happened ------------------------------------------------------------------

    def attempts(self, name: str | None = None) -> list[Attempt]:
        with self._lock:
            return [a for a in self._attempts if name is None or a.name == name]

    def deliveries(self, name: str | None = None) -> list[Attempt]:
        """Attempts that were accepted (2xx)."""
        return [a for a in self.attempts(name) if a.accepted]

    def receiver_view(self, name: str) -> list[Attempt]:
        """Accepted deliveries the receiver acts on, in arrival order (see the module doc).

        Webhook: the first delivery of each ``webhook-id``. PagerDuty: a trigger while its
        ``dedup_key`` has no open incident, a resolve while it has one. Slack has no
        idempotency key: every delivery counts.
        """
        seen: set[str] = set()
        open_keys: set[str] = set()
        acted: list[Attempt] = []
        for attempt in self.deliveries(name):
            if attempt.kind == "webhook":
                message_id = attempt.headers.get("webhook-id", "")
                if message_id in seen:
                    continue
                seen.add(message_id)
            elif attempt.kind == "pagerduty":
                event = attempt.json
                key, action = event.get("dedup_key"), event.get("event_action")
                if action == "trigger":
                    if key in open_keys:
                        continue
                    open_keys.add(key)
                elif action == "resolve":
                    if key not in open_keys:
                        continue
                    open_keys.discard(key)
            acted.append(attempt)
        return acted

    def raw_traffic(self) -> bytes:
        """Every body received, for checking what left the process."""
        return b"\n".join(a.body for a in self.attempts())

    # --- serving ----------------------------------------------------------------------------

    def _answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, Attempt | None]:
        parts = path.strip("/").split("/")
        kind = parts[0] if parts else ""
        name = parts[1] if len(parts) > 1 else ""
        endpoint = self._endpoints.get(name)
        if endpoint is None or endpoint.kind != kind:
            return 404, {}, b"no such endpoint", None
        if kind == "slack" and (len(parts) != 3 or parts[2] != endpoint.token):
            return 404, {}, b"no_service", None
        if kind == "pagerduty" and parts[2:] != ["v2", "enqueue"]:
            return 404, {}, b"not found", None

        if kind == "webhook":
            problems = check_webhook_body(body)
            if endpoint.secret is not None:
                problems = verify_standard_webhook(
                    endpoint.secret, headers, body, self._now_s(), self.tolerance_s
                ) + problems
        elif kind == "slack":
            problems = check_slack_body(body)
        else:
            problems = check_pagerduty_body(body)

        with self._lock:
            scripted = endpoint.script.popleft() if endpoint.script else None
            always = endpoint.always
            delay_s = endpoint.delay_s
        extra: dict[str, str] = {}
        if scripted is not None:
            status, extra = scripted
            answer = b'{"status":"scripted"}'
        elif always is not None:
            status, answer = always, b'{"status":"failing"}'
        elif problems:
            signature_problem = kind == "webhook" and any("webhook-" in p for p in problems)
            status = 401 if signature_problem else 400
            if kind == "slack":
                answer = b"invalid_payload"
            else:
                answer = json.dumps(
                    {"status": "invalid event", "message": "Event object is invalid",
                     "errors": problems}
                ).encode()
        elif kind == "webhook":
            status, answer = 204, b""
        elif kind == "slack":
            status, answer = 200, b"ok"
        else:
            dedup = json.loads(body).get("dedup_key") or secrets.token_hex(16)
            status = 202
            answer = json.dumps(
                {"status": "success", "message": "Event processed", "dedup_key": dedup}
            ).encode()
        attempt = Attempt(name, kind, headers, body, status, tuple(problems), delay_s)
        return status, extra, answer, attempt

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, answer, attempt = fake._answer(self.path, headers, body)
                if attempt is not None:
                    with fake._lock:
                        fake._attempts.append(attempt)
                    if attempt.delay_s:
                        time.sleep(attempt.delay_s)  # a slow remote: the sender waits
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if answer:
                    self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler
