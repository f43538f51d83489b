"""Prometheus metrics of the webhook, declared the way every metrics module of the project
declares them: one class whose families live in the registry it is given.

The webhook process uses one instance, :data:`METRICS`, in the default registry. Under
gunicorn every worker writes to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates them
(set by webhook.serve).
"""

from __future__ import annotations

import os
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_Family = TypeVar("_Family", Counter, Gauge, Histogram)


class Children(Generic[_Family]):
    """The labelled children of one family, each looked up once per process.

    ``labels()`` takes the family's lock and rebuilds the label tuple on every call, which
    costs as much as the increment itself; a child stays valid for the life of the process
    (the multiprocess value notices a fork by itself).
    """

    def __init__(self, family: _Family) -> None:
        self._family: _Family = family
        self._children: dict[tuple[str, ...], _Family] = {}

    def __call__(self, *values: str) -> _Family:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._family.labels(*values)
        return child


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WebhookMetrics:
    """The webhook's metric families, registered in ``registry`` (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "agora_webhook_requests",
            "Callbacks answered, by outcome (accepted, quarantined, spooled, unauthorized, "
            "stale, too_large, unavailable, spool_full, bad_request, duplicate, read_timeout, "
            "rejected).",
            ["outcome"], registry=r,
        )
        self.signature_failures = Counter(
            "agora_webhook_signature_failures", "Callbacks refused for their signature.",
            ["reason"], registry=r,
        )
        self.secret_matches = Counter(
            "agora_webhook_secret_matches",
            "Verified callbacks by signature header and by position of the secret that matched "
            "(watch it during secret rotation).",
            ["header", "secret_index"], registry=r,
        )
        self.publish_seconds = Histogram(
            "agora_webhook_publish_seconds", "Time from send to the broker's acknowledgement.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.request_seconds = Histogram(
            "agora_webhook_request_seconds", "Time to answer POST /ncs.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.events = Counter(
            "agora_webhook_events", "Accepted callbacks by Agora event type.", ["event_type"],
            registry=r,
        )
        self.spooled = Counter(
            "agora_webhook_spooled",
            "Records written to the disk spool because the broker was unavailable.", registry=r,
        )
        self.spool_drained = Counter(
            "agora_webhook_spool_drained",
            "Spooled records the broker acknowledged and the spool released.", registry=r,
        )
        self.spool_rejected = Counter(
            "agora_webhook_spool_rejected",
            "Spooled frames that can never be published (unreadable, or a topic the webhook "
            "does not write), moved to spool.rejected.", registry=r,
        )
        self.rejected = Counter(
            "agora_webhook_rejected_records",
            "Records the topic can never take (too large, invalid), quarantined as a pointer.",
            registry=r,
        )
        # Read from the spool files when /metrics is scraped, so any worker reports the same truth.
        self.spool_pending_bytes = Gauge(
            "agora_webhook_spool_pending_bytes",
            "Bytes in the disk spool still waiting for the broker.",
            multiprocess_mode="mostrecent", registry=r,
        )
        self.spool_oldest_age_seconds = Gauge(
            "agora_webhook_spool_oldest_age_seconds",
            "Age of the oldest record waiting in the disk spool (0 when empty).",
            multiprocess_mode="mostrecent", registry=r,
        )
        # The request path goes through these instead of ``labels()``.
        self.outcome = Children(self.requests)
        self.event_type = Children(self.events)
        self.secret_match = Children(self.secret_matches)


METRICS = WebhookMetrics(REGISTRY)
"""The webhook process's metrics (the default registry also holds the process collectors)."""


def render() -> tuple[bytes, str]:
    """The exposition text: aggregated across workers when running under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(METRICS.registry), CONTENT_TYPE_LATEST
