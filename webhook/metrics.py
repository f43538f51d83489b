"""Prometheus metrics of the webhook. Under gunicorn every worker writes to
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates them (set by webhook.serve)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "agora_webhook_requests",
    "Callbacks answered, by outcome (accepted, quarantined, spooled, unauthorized, stale, "
    "too_large, unavailable, spool_full, bad_request, duplicate, read_timeout, rejected).",
    ["outcome"],
)
SIGNATURE_FAILURES = Counter(
    "agora_webhook_signature_failures", "Callbacks refused for their signature.", ["reason"]
)
SECRET_MATCHES = Counter(
    "agora_webhook_secret_matches",
    "Verified callbacks by signature header and by position of the secret that matched "
    "(watch it during secret rotation).",
    ["header", "secret_index"],
)
PUBLISH_SECONDS = Histogram(
    "agora_webhook_publish_seconds",
    "Time from send to the broker's acknowledgement.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REQUEST_SECONDS = Histogram(
    "agora_webhook_request_seconds",
    "Time to answer POST /ncs.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS = Counter("agora_webhook_events", "Accepted callbacks by Agora event type.", ["event_type"])
SPOOLED = Counter(
    "agora_webhook_spooled", "Records written to the disk spool because the broker was unavailable."
)
SPOOL_DRAINED = Counter(
    "agora_webhook_spool_drained", "Spooled records the broker acknowledged and the spool released."
)
SPOOL_REJECTED = Counter(
    "agora_webhook_spool_rejected",
    "Spooled frames that can never be published (unreadable, or a topic the webhook does not "
    "write), moved to spool.rejected.",
)
REJECTED = Counter(
    "agora_webhook_rejected_records",
    "Records the topic can never take (too large, invalid), quarantined as a pointer.",
)
# Read from the spool files when /metrics is scraped, so any worker reports the same truth.
SPOOL_PENDING_BYTES = Gauge(
    "agora_webhook_spool_pending_bytes",
    "Bytes in the disk spool still waiting for the broker.",
    multiprocess_mode="mostrecent",
)
SPOOL_OLDEST_AGE_SECONDS = Gauge(
    "agora_webhook_spool_oldest_age_seconds",
    "Age of the oldest record waiting in the disk spool (0 when empty).",
    multiprocess_mode="mostrecent",
)


def render() -> tuple[bytes, str]:
    """The exposition text: aggregated across workers when running under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
