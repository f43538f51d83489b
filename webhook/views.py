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
body is JSON: ``{"error": code, "detail": text}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask, Response, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import HTTPException

from webhook import metrics, tracing
from webhook.clock import Clock
from webhook.dedup import MARGIN_MS, RecentNotices
from webhook.delivery import Delivered, Delivery, Rejected, SpoolUnavailable
from webhook.freshness import StaleNotification
from webhook.ingest import Accepted, Quarantined, ingest
from webhook.publisher import Publisher, PublishUnavailable
from webhook.read_deadline import ReadTimedOut, read_deadline, stop_reading
from webhook.settings import WebhookSettings
from webhook.signature import SignatureError
from webhook.spool import Spool, SpoolFull

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


def _error(
    status: int, code: str, detail: str, **headers: str
) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error=code, detail=detail), status, headers


def register(app: Flask, ingress: Ingress) -> None:
    settings = ingress.settings

    @app.post("/ncs")
    def ncs() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
        started = time.perf_counter()
        try:
            return _handle()
        finally:
            metrics.REQUEST_SECONDS.observe(time.perf_counter() - started)

    def _handle() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
        try:
            with read_deadline(ingress.read_timeout_s):
                body = _read_body(settings.max_body_bytes)
        except ReadTimedOut:
            metrics.REQUESTS.labels("read_timeout").inc()
            stop_reading(request.environ.get("gunicorn.socket"))
            return _error(
                408, "request_timeout", f"body not received within {ingress.read_timeout_s} s"
            )
        except BodyTooLarge:
            metrics.REQUESTS.labels("too_large").inc()
            return _error(
                413, "request_entity_too_large", f"body exceeds {settings.max_body_bytes} bytes"
            )
        except (ParseException, NoMoreData) as exc:
            # A broken chunked encoding, or the body ended early: the client's fault.
            metrics.REQUESTS.labels("bad_request").inc()
            log.warning("unreadable body", extra={"error": type(exc).__name__})
            return _error(400, "bad_request", f"unreadable body: {type(exc).__name__}")
        try:
            decision = ingest(
                body,
                request.headers,
                ingress.secrets,
                settings.topics,
                now_ms=ingress.clock.now_ms(),
                freshness_tolerance_ms=settings.freshness_tolerance_s * 1000,
            )
        except SignatureError as exc:
            metrics.REQUESTS.labels("unauthorized").inc()
            metrics.SIGNATURE_FAILURES.labels(exc.reason.value).inc()
            log.warning(
                "signature rejected",
                extra={
                    "reason": exc.reason.value,
                    "header": exc.header,
                    "remote": request.remote_addr,
                },
            )
            return _error(401, "invalid_signature", str(exc))
        except StaleNotification as exc:
            metrics.REQUESTS.labels("stale").inc()
            log.warning("stale notification", extra={"skew_ms": exc.skew_ms})
            return _error(403, "stale_notification", str(exc))

        metrics.SECRET_MATCHES.labels(decision.match.header, str(decision.match.secret_index)).inc()
        context = _log_context(decision)
        if not ingress.recent.claim(decision.replay_key, ingress.clock.now_ms()):
            metrics.REQUESTS.labels("duplicate").inc()
            log.warning("callback already published; not again", extra=context)
            return jsonify({}), 200
        try:
            return _deliver(decision, context)
        except BaseException:
            ingress.recent.release(decision.replay_key)
            raise

    def _deliver(
        decision: Accepted | Quarantined, context: dict[str, object]
    ) -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
        sent = time.perf_counter()
        retry_after = {"Retry-After": str(settings.retry_after_s)}
        try:
            tracing.annotate(context)
            delivered = ingress.delivery.deliver(tracing.with_trace(decision.record))
        except PublishUnavailable as exc:
            ingress.recent.release(decision.replay_key)  # NCS's retry must be published
            metrics.REQUESTS.labels("unavailable").inc()
            log.error("publish failed, asking NCS to retry", extra={**context, "error": str(exc)})
            return _error(
                503,
                "broker_unavailable",
                "the event log did not acknowledge in time",
                **retry_after,
            )
        except SpoolFull as exc:
            ingress.recent.release(decision.replay_key)
            metrics.REQUESTS.labels("spool_full").inc()
            log.error("spool full, asking NCS to retry", extra={**context, "error": str(exc)})
            return _error(
                503, "spool_full", "the broker is unavailable and the spool is full", **retry_after
            )
        except SpoolUnavailable as exc:
            ingress.recent.release(decision.replay_key)
            metrics.REQUESTS.labels("unavailable").inc()
            log.error(
                "spool write failed, asking NCS to retry", extra={**context, "error": str(exc)}
            )
            return _error(
                503, "spool_unavailable", "the broker and the spool are unavailable", **retry_after
            )
        if isinstance(delivered, Rejected):
            metrics.REQUESTS.labels("rejected").inc()
            if delivered.size_related:
                return _error(
                    413, "record_too_large", f"the event log cannot take it: {delivered.reason}"
                )
            return _error(422, "record_rejected", f"the event log refused it: {delivered.reason}")
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - sent)
        if delivered is Delivered.SPOOLED:
            metrics.REQUESTS.labels("spooled").inc()
            log.warning("callback spooled", extra=context)
            if isinstance(decision, Accepted):
                metrics.EVENTS.labels(str(decision.notification.event_type)).inc()
        elif isinstance(decision, Accepted):
            metrics.REQUESTS.labels("accepted").inc()
            metrics.EVENTS.labels(str(decision.notification.event_type)).inc()
            log.info("callback accepted", extra=context)
        else:
            metrics.REQUESTS.labels("quarantined").inc()
            log.warning("callback quarantined", extra={**context, "reason": decision.reason})
        return jsonify({}), 200

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
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        if code == 413:
            metrics.REQUESTS.labels("too_large").inc()
            detail = f"body exceeds {settings.max_body_bytes} bytes"
        else:
            detail = exc.description or exc.name
        return jsonify(error=exc.name.lower().replace(" ", "_"), detail=detail), code


class BodyTooLarge(Exception):
    """A body without Content-Length (chunked) ran past the limit."""


def _read_body(max_bytes: int) -> bytes:
    if request.content_length is not None:
        # Werkzeug answers 413 itself when the declared length is over the limit.
        return request.get_data(cache=False)
    # Chunked: Werkzeug's limited stream would silently cut the body at the limit (and the
    # signature would then fail); read one byte more to tell "too large" apart.
    body: bytes = request.environ["wsgi.input"].read(max_bytes + 1)
    if len(body) > max_bytes:
        raise BodyTooLarge
    return body


def _observe_spool(spool: Spool, clock: Clock) -> None:
    status = spool.status()
    metrics.SPOOL_PENDING_BYTES.set(status.pending_bytes)
    oldest = status.oldest_spooled_at_ms
    age_s = max(clock.now_ms() - oldest, 0) / 1000 if oldest is not None else 0.0
    metrics.SPOOL_OLDEST_AGE_SECONDS.set(age_s)


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
