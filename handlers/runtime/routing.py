"""Where one record's result goes: staged effects and an outcome, a parked retry, or the
DLQ. Runs on the loop thread, for results decided there or returned by a worker."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Hashable
from typing import Any

from handlers.action_contract import Effects
from handlers.runtime import dlq
from handlers.runtime.commits import CommitBatch
from handlers.runtime.dispatch import Handled, Invalid, Result, Transient, Work
from handlers.runtime.guard import BadDeployGuard, Trip
from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.keyed import KeyedScheduler
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.offsets import OffsetTracker
from handlers.runtime.outcomes import OutcomeKind, outcome_record
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.state import StateStore
from webhook.shared.clock import Clock
from webhook.shared.kafka_settings import TopicNames

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 1_000_000
"""Largest output (key + value) accepted from an action: under kafka-python's 1 MiB
``max_request_size`` and the broker's default ``message.max.bytes``."""


class ResultRouter:
    """Routes results; ``trip`` is set when the bad-deploy guard refused a dead letter
    (the record then stays unfinished and the runner stops)."""

    def __init__(
        self,
        name: str,
        *,
        scheduler: KeyedScheduler[Hashable, Work],
        tracker: OffsetTracker,
        commits: Callable[[], CommitBatch],
        state: StateStore,
        guard: BadDeployGuard,
        retry: RetryPolicy,
        topics: TopicNames,
        publish_ignored: bool,
        metrics: RuntimeMetrics,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.name = name
        self._scheduler = scheduler
        self._tracker = tracker
        self._commits = commits
        self._state = state
        self._guard = guard
        self._retry = retry
        self._topics = topics
        self._publish_ignored = publish_ignored
        self._metrics = metrics
        self._clock = clock
        self._rng = rng
        self.trip: Trip | None = None
        self._seconds = metrics.action_seconds.labels(action=name)
        self._outcomes: dict[str, Any] = {}

    def route(
        self, key: Hashable, work: Work, result: Result, started: float, elapsed: float
    ) -> None:
        self._seconds.observe(elapsed)
        commits = self._commits()
        if isinstance(result, Handled):
            try:
                staged = self._stage_effects(result.effects)
            except (TypeError, ValueError) as exc:
                result = Transient(f"invalid effects: {dlq.describe_error(exc)}")
            else:
                commits.stage(staged)
                if result.kind != "ignored":
                    self._guard.record_success(started)
                if result.kind != "ignored" or self._publish_ignored:
                    self._stage_outcome(work, result.kind, elapsed, error=result.error)
                else:
                    self._metrics.outcomes.labels(action=self.name, outcome="ignored").inc()
                self._finish(key, work, commit_now=result.effects.commit_now)
                if result.kind == "failed":
                    log.warning("action failed: %s", result.error, extra=work.log_context)
                return
        if isinstance(result, Invalid):
            self._dead_letter(key, work, result.error, reason="invalid", elapsed=elapsed)
            return
        work.failures += 1
        if work.first_failure_at is None:
            work.first_failure_at = started
        now = self._clock.monotonic()
        due = self._retry.next_retry(
            work.failures, work.first_failure_at, now, result.retry_after_s, self._rng.random()
        )
        if due is None:
            self._dead_letter(key, work, result.error, reason="exhausted", elapsed=elapsed)
            return
        self._scheduler.park(key, due)
        self._metrics.retries.labels(action=self.name).inc()
        self._stage_outcome(work, "retrying", elapsed, error=result.error, retry_in_s=due - now)
        log.warning(
            "transient failure, retrying in %.2fs (attempt %d): %s",
            due - now, work.attempts, result.error, extra=work.log_context,
        )

    def _stage_effects(self, effects: Effects) -> list[KafkaRecord]:
        records = []
        for output in effects.outputs:
            if not isinstance(output.value, bytes):
                raise TypeError(f"output to {output.topic!r}: value must be bytes")
            record = KafkaRecord.from_output(output)
            size = len(record.value or b"") + len(record.key or b"")
            if size > MAX_OUTPUT_BYTES:
                # It could never be produced, and would abort every transaction holding it.
                raise ValueError(
                    f"output to {output.topic!r} is {size} bytes (max {MAX_OUTPUT_BYTES})"
                )
            records.append(record)
        if effects.state:
            records.extend(self._state.stage(effects.state))
        return records

    def _dead_letter(
        self, key: Hashable, work: Work, error: str, *, reason: str, elapsed: float
    ) -> None:
        trip = self._guard.allow_dead_letter(key, self._clock.monotonic())
        if trip is not None:
            self.trip = trip  # the record stays unfinished: it is not committed
            return
        self._commits().stage([
            dlq.dead_letter(
                dlq_topic=self._topics.dlq,
                source_topic=work.partition[0],
                partition=work.partition[1],
                offset=work.offset,
                key=work.key,
                value=work.value,
                headers=work.headers,
                handler=self.name,
                error=error,
                attempts=work.attempts,
                at_ms=self._clock.now_ms(),
            )
        ])
        self._metrics.dead_letters.labels(action=self.name, reason=reason).inc()
        self._stage_outcome(work, "dead_lettered", elapsed, error=error)
        self._finish(key, work)
        log.error("dead-lettered (%s): %s", reason, error, extra=work.log_context)

    def _stage_outcome(
        self,
        work: Work,
        kind: OutcomeKind,
        elapsed: float,
        *,
        error: str | None = None,
        retry_in_s: float | None = None,
    ) -> None:
        counter = self._outcomes.get(kind)
        if counter is None:
            counter = self._outcomes[kind] = self._metrics.outcomes.labels(
                action=self.name, outcome=kind)
        counter.inc()
        self._commits().stage([outcome_record(
            work, self.name, kind, elapsed, self._clock.now_ms(), self._topics.actions,
            error=error, retry_in_s=retry_in_s,
        )])

    def _finish(self, key: Hashable, work: Work, *, commit_now: bool = False) -> None:
        self._scheduler.complete(key)
        self._tracker.finish(work.partition, work.offset)
        self._commits().finished(key, commit_now=commit_now)
