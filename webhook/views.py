"""HTTP edge: ``POST /ncs``, ``/healthz``, ``/readyz``, ``/metrics``.

Answers (what NCS does with them): 200 ``{}`` once the broker acknowledged (done); 401 bad
or missing signature (nothing published); 403 signed but outside the freshness window; 413
body over the limit; 503 + ``Retry-After`` when the broker cannot acknowledge within the
budget (NCS retries). Every error body is JSON: ``{"error": code, "detail": text}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from webhook import metrics
from webhook.clock import Clock
from webhook.freshness import StaleNotification
from webhook.ingest import Accepted, ingest
from webhook.publisher import Publisher, PublishUnavailable
from webhook.settings import WebhookSettings
from webhook.signature import SignatureError

log = logging.getLogger("webhook.ncs")


@dataclass
class Ingress:
    settings: WebhookSettings
    publisher: Publisher
    clock: Clock

    def __post_init__(self) -> None:
        # Decoding secrets once per worker keeps them off the request path.
        self.secrets = self.settings.secret_values()


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
        body = request.get_data(cache=False)
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
        sent = time.perf_counter()
        try:
            ingress.publisher.publish(decision.record, settings.publish_timeout_s)
        except PublishUnavailable as exc:
            metrics.REQUESTS.labels("unavailable").inc()
            log.error("publish failed, asking NCS to retry", extra={**context, "error": str(exc)})
            return _error(
                503,
                "broker_unavailable",
                "the event log did not acknowledge in time",
                **{"Retry-After": str(settings.retry_after_s)},
            )
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - sent)
        if isinstance(decision, Accepted):
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
        if ingress.publisher.ready():
            return jsonify(status="ready"), 200
        return jsonify(status="unavailable", detail="cannot publish to Kafka"), 503

    @app.get("/metrics")
    def prometheus() -> Response:
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
