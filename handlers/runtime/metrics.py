"""Prometheus metrics of the handler runtime, one set per process, labelled by action.

=========================================  ==============================================
``agora_handler_consumed_total``           records taken from the events topic
``agora_handler_outcomes_total``           outcomes by ``outcome`` (ok, failed, ignored,
                                           retrying, dead_lettered)
``agora_handler_skipped_total``            DLQ replays meant for another handler
``agora_handler_retries_total``            transient failures that were parked for retry
``agora_handler_dead_letters_total``       records sent to the DLQ, by ``reason``
                                           (invalid, exhausted)
``agora_handler_parked_keys``              keys waiting for a retry
``agora_handler_parked_records``           records held behind parked keys (head included)
``agora_handler_paused_partitions``        partitions paused because of that backlog
``agora_handler_lag``                      per partition: end offset - committed offset
``agora_handler_action_seconds``           time of one decide+run attempt
``agora_handler_transactions_total``       transactions by ``result`` (committed, aborted)
``agora_handler_last_loop_timestamp_seconds``  Unix time of the last poll-loop turn
``agora_handler_up``                       1 while the action's loop runs
=========================================  ==============================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RuntimeMetrics:
    """The metric families, registered in ``registry`` (a fresh one unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "agora_handler_consumed", "Records taken from the events topic.", ["action"],
            registry=r,
        )
        self.outcomes = Counter(
            "agora_handler_outcomes", "Outcomes of handled records.", ["action", "outcome"],
            registry=r,
        )
        self.skipped = Counter(
            "agora_handler_skipped", "DLQ replays addressed to another handler.", ["action"],
            registry=r,
        )
        self.retries = Counter(
            "agora_handler_retries", "Transient failures parked for a retry.", ["action"],
            registry=r,
        )
        self.dead_letters = Counter(
            "agora_handler_dead_letters", "Records sent to the DLQ.", ["action", "reason"],
            registry=r,
        )
        self.parked_keys = Gauge(
            "agora_handler_parked_keys", "Keys waiting for a retry.", ["action"], registry=r
        )
        self.parked_records = Gauge(
            "agora_handler_parked_records", "Records held behind parked keys.", ["action"],
            registry=r,
        )
        self.paused_partitions = Gauge(
            "agora_handler_paused_partitions", "Partitions paused for backlog.", ["action"],
            registry=r,
        )
        self.lag = Gauge(
            "agora_handler_lag", "End offset minus committed offset.",
            ["action", "topic", "partition"], registry=r,
        )
        self.action_seconds = Histogram(
            "agora_handler_action_seconds", "Time of one decide+run attempt.", ["action"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.transactions = Counter(
            "agora_handler_transactions", "Kafka transactions by result.", ["action", "result"],
            registry=r,
        )
        self.last_loop = Gauge(
            "agora_handler_last_loop_timestamp_seconds", "Unix time of the last loop turn.",
            ["action"], registry=r,
        )
        self.up = Gauge(
            "agora_handler_up", "1 while the action's loop runs.", ["action"], registry=r
        )
