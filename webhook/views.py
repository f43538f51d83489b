"""HTTP edge: ``POST /ncs``, ``/healthz``, ``/readyz``, ``/metrics``.

Answers (what NCS does with them): 200 ``{}`` once the broker acknowledged (done); 200 without
publishing for a callback this worker already published within the freshness window (a
replay, or NCS retrying after a lost answer: webhook.dedup); 401 bad or missing signature
(nothing published); 403 signed but outside the freshness window; 413 body over the limit,
or a record the topic can never take (422 for another permanent refusal; a pointer is
quarantined, see webhook.delivery); 408 body not received within the read timeout; 503 +
``Retry-After`` when the broker cannot acknowledge within the budget (NCS retries). With the
disk spool on (``AGORA_WEBHOOK_SPOOL_DIR``), a callback the broker cannot take is fsynced to
the spool and answered 200; 503 then means the spool is full or the disk failed. Every error
body is JSON: ``{"error": code, "detail": text}``. Each refusal is an exception of
webhook.shared.refusals raised where it is found; :func:`register`'s one handler counts, logs and
answers it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask, Response, g, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import HTTPException

from webhook.dedup import MARGIN_MS, RecentNotices
from webhook.delivery import Delivered, Delivery, Rejected
from webhook.ingest import Accepted, Quarantined, ingest
from webhook.metrics import METRICS
from webhook.metrics import render as render_metrics
from webhook.publisher import Publisher
from webhook.read_deadline import ReadTimedOut, read_deadline, stop_reading
from webhook.settings import WebhookSettings
from webhook.shared import tracing
from webhook.shared.clock import Clock
from webhook.shared.refusals import (
    BodyReadTimeout,
    BodyTooLarge,
    RecordRejected,
    RecordTooLarge,
    Refusal,
    UnreadableBody,
)
from webhook.shared.signature import SignatureError
from webhook.spool import Spool

log = logging.getLogger("webhook.ncs")


@dataclass
class Ingress:
    settings: WebhookSettings
    publisher: Publisher
    clock: Clock
    spool: Spool | None = None
    read_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        # Decoding secrets once per worker keeps them off the request path.
        self.secrets = self.settings.secret_values()
        self.delivery = Delivery(
            self.publisher,
            self.spool,
            self.settings.publish_timeout_s,
            self.clock,
            self.settings.topics.quarantine,
        )
        self.recent = RecentNotices(
            self.settings.dedup_capacity, self.settings.freshness_tolerance_s * 1000 + MARGIN_MS
        )


def register(app: Flask, ingress: Ingress) -> None:
    settings = ingress.settings

    @app.post("/ncs")
    def ncs() -> tuple[Response, int]:
        started = time.perf_counter()
        try:
            return _handle()
        finally:
            METRICS.request_seconds.observe(time.perf_counter() - started)

    def _handle() -> tuple[Response, int]:
        body = _read_request_body()
        decision = ingest(  # raises SignatureError, StaleNotification
            body,
            request.headers,
            ingress.secrets,
            settings.topics,
            now_ms=ingress.clock.now_ms(),
            freshness_tolerance_ms=settings.freshness_tolerance_s * 1000,
        )
        METRICS.secret_match(decision.match.header, str(decision.match.secret_index)).inc()
        context = g.ncs_log_context = _log_context(decision)
        if not ingress.recent.claim(decision.replay_key, ingress.clock.now_ms()):
            METRICS.outcome("duplicate").inc()
            log.warning("callback already published; not again", extra=context)
            return _ok(), 200
        try:
            return _deliver(decision, context)
        except BaseException as exc:
            # NCS's retry must be published, unless the refusal is final (a rejected record).
            if not isinstance(exc, Refusal) or exc.asks_retry:
                ingress.recent.release(decision.replay_key)
            raise

    def _read_request_body() -> bytes:
        """The body, or the refusal for a body that cannot be read (see BodyTooLarge too)."""
        try:
            with read_deadline(ingress.read_timeout_s):
                return _read_body(settings.max_body_bytes)
        except ReadTimedOut:
            stop_reading(request.environ.get("gunicorn.socket"))
            raise BodyReadTimeout(
                f"body not received within {ingress.read_timeout_s} s"
            ) from None
        except (ParseException, NoMoreData) as exc:
            raise UnreadableBody(exc) from None

    def _deliver(
        decision: Accepted | Quarantined, context: dict[str, object]
    ) -> tuple[Response, int]:
        """Raises PublishUnavailable, SpoolFull, SpoolUnavailable (NCS retries) or a
        RecordTooLarge / RecordRejected refusal."""
        sent = time.perf_counter()
        record = decision.record
        if tracing.tracing_on():
            tracing.annotate(context)
            record = tracing.with_trace(record)
        delivered = ingress.delivery.deliver(record)
        if isinstance(delivered, Rejected):
            if delivered.size_related:
                raise RecordTooLarge(f"the event log cannot take it: {delivered.reason}")
            raise RecordRejected(f"the event log refused it: {delivered.reason}")
        METRICS.publish_seconds.observe(time.perf_counter() - sent)
        if delivered is Delivered.SPOOLED:
            METRICS.outcome("spooled").inc()
            log.warning("callback spooled", extra=context)
            if isinstance(decision, Accepted):
                METRICS.event_type(str(decision.notification.event_type)).inc()
        elif isinstance(decision, Accepted):
            METRICS.outcome("accepted").inc()
            METRICS.event_type(str(decision.notification.event_type)).inc()
            log.info("callback accepted", extra=context)
        else:
            METRICS.outcome("quarantined").inc()
            log.warning("callback quarantined", extra={**context, "reason": decision.reason})
        return _ok(), 200

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        broker = ingress.publisher.ready()
        spool = ingress.spool.status() if ingress.spool is not None else None
        body: dict[str, object] = {"status": "ready" if broker else "unavailable"}
        if spool is not None:
            body["spool"] = {
                "pendingBytes": spool.pending_bytes,
                "maxBytes": spool.max_bytes,
                "oldestSpooledAtMs": spool.oldest_spooled_at_ms,
            }
        if broker:
            return jsonify(body), 200
        if spool is not None and not spool.full:
            # Still taking callbacks safely: they wait on disk for the broker.
            body.update(status="degraded", detail="cannot publish to Kafka; spooling to disk")
            return jsonify(body), 200
        body["detail"] = "cannot publish to Kafka" + ("; the spool is full" if spool else "")
        return jsonify(body), 503

    @app.get("/metrics")
    def prometheus() -> Response:
        if ingress.spool is not None:
            _observe_spool(ingress.spool, ingress.clock)
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)

    @app.errorhandler(Refusal)
    def refused(refusal: Refusal) -> tuple[Response, int, dict[str, str]]:
        """The one place a refusal is counted, logged and answered."""
        METRICS.outcome(refusal.outcome).inc()
        fields = {**g.get("ncs_log_context", {}), **refusal.log_fields()}
        if isinstance(refusal, SignatureError):
            # Forged or misconfigured senders: counted by reason, logged with their address.
            METRICS.signature_failures.labels(refusal.reason.value).inc()
            fields["remote"] = request.remote_addr
        if refusal.log_level:
            log.log(refusal.log_level, refusal.log_message, extra=fields)
        headers = {"Retry-After": str(settings.retry_after_s)} if refusal.asks_retry else {}
        return jsonify(error=refusal.error, detail=refusal.detail), refusal.status, headers

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int, dict[str, str]]:
        if exc.code == 413:  # Werkzeug's answer to a declared Content-Length over the limit
            return refused(BodyTooLarge(f"body exceeds {settings.max_body_bytes} bytes"))
        detail = exc.description or exc.name
        return jsonify(error=exc.name.lower().replace(" ", "_"), detail=detail), exc.code or 500, {}


def _read_body(max_bytes: int) -> bytes:
    if request.content_length is not None:
        # Werkzeug answers 413 itself when the declared length is over the limit.
        return request.get_data(cache=False)
    # Chunked: Werkzeug's limited stream would silently cut the body at the limit (and the
    # signature would then fail); read one byte more to tell "too large" apart.
    body: bytes = request.environ["wsgi.input"].read(max_bytes + 1)
    if len(body) > max_bytes:
        raise BodyTooLarge(f"body exceeds {max_bytes} bytes")
    return body


def _ok() -> Response:
    """What ``jsonify({})`` answers, without a trip through the JSON provider per callback."""
    return Response(b"{}\n", mimetype="application/json")


def _observe_spool(spool: Spool, clock: Clock) -> None:
    status = spool.status()
    METRICS.spool_pending_bytes.set(status.pending_bytes)
    oldest = status.oldest_spooled_at_ms
    age_s = max(clock.now_ms() - oldest, 0) / 1000 if oldest is not None else 0.0
    METRICS.spool_oldest_age_seconds.set(age_s)


def _log_context(decision: object) -> dict[str, object]:
    if isinstance(decision, Accepted):
        n = decision.notification
        return {
            "noticeId": n.notice_id,
            "eventType": n.event_type,
            "cname": n.payload.cname,
            "sid": n.payload.sid,
        }
    return {"verifiedBy": getattr(getattr(decision, "match", None), "header", None)}
