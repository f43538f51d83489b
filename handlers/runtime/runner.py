"""The imperative shell of one action: poll, dispatch, publish and commit, in one thread.

Guarantees (see also :mod:`handlers.runtime.dlq` and :mod:`handlers.runtime.outcomes`):

- An offset is committed (as offset + 1) only once its record was handled, ignored,
  dead-lettered, or skipped (a replay addressed to another handler, or the action's own
  record read back from an extra input); records of one partition may finish out of
  order, the commit stops at the lowest unfinished one.
- What handling produced (the action's outputs, state updates, outcome records, dead
  letters) is published in one Kafka transaction together with those offsets. A crash
  before the commit makes all of it invisible to ``read_committed`` readers and the
  records are handled again: side effects of ``run`` must be idempotent. Records that
  finished above a parked one are published before their offset can be committed, so
  after a crash or a rebalance they may be handled (and published) a second time.
- Records of one key are handled in order. A transient failure parks the key (its later
  records wait behind it) while other keys go on; the loop never sleeps (at most
  ``poll_timeout_s`` in ``poll``) and hands out work for at most ``batch_time_s`` between
  polls, so only a single ``run`` call longer than ``max.poll.interval.ms`` can cost the
  group membership. When too many records wait behind parked keys, their partitions are
  paused until the backlog halves.
- Before dead-lettering, the bad-deploy guard is asked; when it trips, the record stays
  uncommitted and the runner stops with :attr:`RunnerExit.GUARD_TRIPPED`.

Finished work is committed before every poll, and at once after a record whose effects
say ``commit_now`` (something outside Kafka happened that a redo would repeat). A
rebalance keeps the queued and parked records of partitions this instance gets back and
forgets the others' (their new owner reads them again from the committed offset, with
fresh retry counts). See :mod:`handlers.runtime.rebalance`.

State expiry keeps memory bounded: once after start and every ``state_expiry_every_s``
the runner reads the state topic to its end, forgets tombstones read past, and stages
tombstones for the action's state entries older than ``state_ttl_s`` in the turn's
transaction (see :mod:`handlers.runtime.state`).
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from handlers.base import Action, Effects
from handlers.runtime import dlq
from handlers.runtime.clients import group_consumer, transactional_producer, wait_for_topic
from handlers.runtime.dispatch import Handled, Invalid, Transient, Work, attempt, work_from_record
from handlers.runtime.guard import BadDeployGuard, GuardPolicy, Trip
from handlers.runtime.health import Liveness
from handlers.runtime.keyed import KeyedScheduler
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.offsets import OffsetTracker, Partition
from handlers.runtime.outcomes import OutcomeKind, outcome_of
from handlers.runtime.rebalance import RecordingListener, fold
from handlers.runtime.records import KafkaRecord, header_value
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.state import CatchUpTimeout, StateStore, Table, TopicMissing
from handlers.runtime.txn import ProducerUnusable, TransactionAborted, TransactionalPublisher
from webhook.clock import Clock, SystemClock
from webhook.settings import TopicNames

log = logging.getLogger(__name__)

SchedKey = tuple[str, int, bytes | None]
"""Ordering key: (topic, partition, record key). One key lives on one partition."""

MAX_OUTPUT_BYTES = 1_000_000
"""Largest output (key + value) accepted from an action: under kafka-python's 1 MiB
``max_request_size`` and the broker's default ``message.max.bytes``."""

MAX_ABORTS_IN_A_ROW = 5
"""Failed transactions in a row after which the runner gives up (and exits non-zero)."""

MAX_EXPIRED_PER_TURN = 5000
"""State tombstones staged in one transaction; more wait for the next turn (a long
downtime can leave many entries to expire at start)."""

EXPIRY_CATCH_UP_S = 10.0
"""How long expiry waits to read the state topic to its end before giving up this round."""


class RunnerExit(enum.Enum):
    """How :meth:`ActionRunner.run` ended."""

    STOPPED = "stopped"  # asked to stop; finished work committed
    GUARD_TRIPPED = "guard_tripped"  # too many dead letters: refused to go on
    FAILED = "failed"  # an unexpected error (logged); uncommitted work will be redone


class FatalRunnerError(Exception):
    """The runner cannot go on (fenced producer, missing topic...)."""


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Everything a runner needs besides its action. ``client_config`` is
    :meth:`webhook.settings.KafkaSettings.client_config`."""

    group_id: str
    transactional_id: str
    topics: TopicNames
    retry: RetryPolicy
    client_config: Mapping[str, Any]
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    max_poll_interval_ms: int = 300_000
    max_poll_records: int = 200
    poll_timeout_s: float = 0.5
    batch_time_s: float = 1.0
    max_backlog: int = 1000
    publish_ignored: bool = False
    startup_timeout_s: float = 90.0
    transaction_timeout_ms: int = 60_000
    session_timeout_ms: int = 45_000
    state_ttl_s: float = 604_800.0
    state_expiry_every_s: float = 60.0


class ActionRunner:
    """Runs one action against the events topic until stopped.

    Not thread-safe: ``run`` executes in one thread; other threads only set ``stop``.
    """

    def __init__(
        self,
        action: Action[Any],
        config: RunnerConfig,
        *,
        metrics: RuntimeMetrics,
        stop: threading.Event,
        tables: Sequence[Table] = (),
        liveness: Liveness | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.action = action
        self.name = action.name
        self.config = config
        self.stop = stop
        self._metrics = metrics
        self._tables = list(tables)
        self._liveness = liveness
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._state = StateStore(config.topics.state, self.name)
        self._scheduler: KeyedScheduler[SchedKey, Work] = KeyedScheduler()
        self._tracker = OffsetTracker()
        self._guard = BadDeployGuard(config.guard)
        self._staged: list[KafkaRecord] = []
        self._paused: set[Partition] = set()
        self._consumer: KafkaConsumer | None = None
        self._publisher: TransactionalPublisher | None = None
        self._aborts_in_a_row = 0
        self._listener = RecordingListener()
        self._suspended: frozenset[Partition] = frozenset()
        self._suspended_since = 0.0
        self._next_expiry = float("-inf")  # monotonic; the first turn expires (state loaded)
        self.trip: Trip | None = None
        self.exit: RunnerExit | None = None

    # -- lifecycle -------------------------------------------------------------------

    def run(self) -> RunnerExit:
        """Start, loop until ``stop`` is set or the guard trips, then commit and close."""
        labels = {"action": self.name}
        try:
            self._start()
            self._metrics.up.labels(**labels).set(1)
            log.info("handler started", extra={"handler": self.name})
            while not self.stop.is_set() and self.trip is None:
                self._turn()
            if not self._suspended:  # mid-rebalance nothing can be committed anyway
                self._flush()
            self.exit = RunnerExit.GUARD_TRIPPED if self.trip else RunnerExit.STOPPED
        except FatalRunnerError as exc:
            log.error("handler stopped: %s", exc, extra={"handler": self.name})
            self.exit = RunnerExit.FAILED
        except Exception:
            log.exception("handler crashed", extra={"handler": self.name})
            self.exit = RunnerExit.FAILED
        finally:
            self._metrics.up.labels(**labels).set(0)
            self._close()
        if self.trip is not None:
            log.critical(
                "bad-deploy guard tripped, consumer stopped instead of dead-lettering: %s",
                self.trip.reason,
                extra={"handler": self.name},
            )
        return self.exit

    def _start(self) -> None:
        cfg = self.config
        if self._liveness is not None:
            self._liveness.register(self.name)
        producer = transactional_producer(
            cfg.client_config, cfg.transactional_id,
            transaction_timeout_ms=cfg.transaction_timeout_ms,
        )
        self._publisher = TransactionalPublisher(producer, cfg.transactional_id)
        try:
            self._state.start(cfg.client_config, cfg.startup_timeout_s)
            for table in self._tables:
                table.start(cfg.client_config, cfg.startup_timeout_s)
        except (TopicMissing, CatchUpTimeout) as exc:
            raise FatalRunnerError(str(exc)) from exc
        self._consumer = group_consumer(
            cfg.client_config, cfg.group_id, client_id=cfg.transactional_id,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            max_poll_records=cfg.max_poll_records,
            session_timeout_ms=cfg.session_timeout_ms,
        )
        topics = [cfg.topics.events, *self._extra_topics()]
        self._consumer.subscribe(topics, listener=self._listener)
        # After subscribing, so the metadata the first join snapshots already lists the
        # topics (otherwise the leader rebalances again as soon as it sees them).
        try:
            for topic in topics:
                wait_for_topic(self._consumer, topic, cfg.startup_timeout_s)
        except Exception as exc:
            raise FatalRunnerError(str(exc)) from exc

    def _extra_topics(self) -> list[str]:
        """Topics of the action's optional ``extra_inputs`` (TopicNames field names)."""
        names = getattr(self.action, "extra_inputs", ())
        fields = type(self.config.topics).model_fields
        unknown = [n for n in names if n not in fields or n == "events"]
        if unknown:
            raise FatalRunnerError(
                f"{self.name}: extra_inputs {unknown} are not topic names other than "
                f"events; expected some of {sorted(f for f in fields if f != 'events')}"
            )
        return [getattr(self.config.topics, n) for n in names]

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception:  # closing is best effort; committed offsets are safe
                log.warning("consumer close failed", exc_info=True, extra={"handler": self.name})
        if self._publisher is not None:
            self._publisher.close()
        self._state.close()
        for table in self._tables:
            table.close()
        if self._liveness is not None:
            self._liveness.stopped(self.name)

    # -- the loop --------------------------------------------------------------------

    def _turn(self) -> None:
        consumer = self._require_consumer()
        self._beat()
        now = self._clock.monotonic()
        if self._suspended:
            # A rebalance is under way: wait in poll, where kafka-python completes joins
            # (see _unstick_rebalance).
            timeout_s = self.config.poll_timeout_s
        elif self._scheduler.has_ready(now):
            timeout_s = 0.0
        else:
            timeout_s = self._idle_timeout(now)
        batch = consumer.poll(
            timeout_ms=int(timeout_s * 1000), max_records=self.config.max_poll_records
        )
        for records in batch.values():
            for record in records:
                self._accept(record)
        self._apply_rebalance()
        if self._suspended:
            self._unstick_rebalance()
            return  # a rebalance is under way: nothing may be handled or committed now
        for table in self._tables:
            table.refresh()
        self._expire_state()
        self._process(self._clock.monotonic() + self.config.batch_time_s)
        self._flush()
        self._backpressure()
        self._report()

    def _idle_timeout(self, now: float) -> float:
        timeout = self.config.poll_timeout_s
        wake = self._scheduler.next_wakeup()
        if wake is not None:
            timeout = min(timeout, max(0.0, wake - now))
        return timeout

    def _beat(self) -> None:
        self._metrics.last_loop.labels(action=self.name).set(time.time())
        if self._liveness is not None:
            self._liveness.beat(self.name)

    def _accept(self, record: Any) -> None:
        self._metrics.consumed.labels(action=self.name).inc()
        partition: Partition = (record.topic, record.partition)
        headers = tuple(record.headers or ())
        self._tracker.track(partition, record.offset)
        events = record.topic == self.config.topics.events
        replay_for = header_value(headers, dlq.REPLAY_FOR)
        if (replay_for is not None and replay_for != self.name) or (
            not events and header_value(headers, "action") == self.name
        ):
            # A DLQ replay for another handler (this one handled the original already),
            # or this action's own outcome read back from an extra input.
            self._tracker.finish(partition, record.offset)
            self._metrics.skipped.labels(action=self.name).inc()
            return
        work = work_from_record(
            self.name, record.topic, record.partition, record.offset, record.key,
            record.value, headers, decode=events,
        )
        self._scheduler.push((record.topic, record.partition, record.key), work)

    def _process(self, deadline: float) -> None:
        while not self.stop.is_set() and self.trip is None:
            now = self._clock.monotonic()
            if now >= deadline:
                return
            ready = self._scheduler.next_ready(now)
            if ready is None:
                return
            self._handle(*ready)

    # -- state expiry ----------------------------------------------------------------

    def _expire_state(self) -> None:
        """Forget tombstones read past and stage tombstones for expired entries, when due.

        Runs at the start of a turn, before any record stages updates, so a key an action
        writes in the same transaction gets its new value at a higher offset than the
        tombstone. An aborted transaction drops the tombstones (``_rewind``); the entries
        are still held and expire again next time.
        """
        now = self._clock.monotonic()
        if now < self._next_expiry:
            return
        self._next_expiry = now + self.config.state_expiry_every_s
        try:
            # Fresh view first: another instance may have rewritten an old key lately.
            self._state.catch_up(min(EXPIRY_CATCH_UP_S, self.config.startup_timeout_s))
        except CatchUpTimeout as exc:
            log.warning("state expiry skipped: %s", exc, extra={"handler": self.name})
            return
        forgotten = self._state.forget_tombstones()
        for table in self._tables:
            forgotten += table.forget_tombstones()
        expired = self._state.expire(
            self._clock.now_ms(), int(self.config.state_ttl_s * 1000), MAX_EXPIRED_PER_TURN
        )
        self._staged.extend(expired)
        if len(expired) == MAX_EXPIRED_PER_TURN:
            self._next_expiry = now  # more to expire: go on next turn
        log.log(
            logging.INFO if expired or forgotten else logging.DEBUG,
            "state expiry: %d entries expired, %d tombstones forgotten, %d live",
            len(expired), forgotten, self._state.live_keys(), extra={"handler": self.name},
        )

    # -- one record ------------------------------------------------------------------

    def _handle(self, key: SchedKey, work: Work) -> None:
        started = self._clock.monotonic()
        result = attempt(self.action, work, self._state)
        elapsed = self._clock.monotonic() - started
        self._metrics.action_seconds.labels(action=self.name).observe(elapsed)
        if isinstance(result, Handled):
            try:
                staged = self._stage_effects(result.effects)
            except (TypeError, ValueError) as exc:
                result = Transient(f"invalid effects: {dlq.describe_error(exc)}")
            else:
                self._staged.extend(staged)
                if result.kind != "ignored":
                    self._guard.record_success(started)
                if result.kind != "ignored" or self.config.publish_ignored:
                    self._stage_outcome(work, result.kind, elapsed, error=result.error)
                else:
                    self._metrics.outcomes.labels(action=self.name, outcome="ignored").inc()
                self._finish(key, work)
                if result.effects.commit_now:
                    self._flush()  # a crash from here on cannot repeat what run just did
                if result.kind == "failed":
                    log.warning(
                        "action failed: %s", result.error, extra=work.log_context
                    )
                return
        if isinstance(result, Invalid):
            self._dead_letter(key, work, result.error, reason="invalid", elapsed=elapsed)
            return
        work.failures += 1
        if work.first_failure_at is None:
            work.first_failure_at = started
        now = self._clock.monotonic()
        due = self.config.retry.next_retry(
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
        self, key: SchedKey, work: Work, error: str, *, reason: str, elapsed: float
    ) -> None:
        trip = self._guard.allow_dead_letter(key, self._clock.monotonic())
        if trip is not None:
            self.trip = trip  # the record stays unfinished: it is not committed
            return
        self._staged.append(
            dlq.dead_letter(
                dlq_topic=self.config.topics.dlq,
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
        )
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
        self._metrics.outcomes.labels(action=self.name, outcome=kind).inc()
        outcome = outcome_of(
            work, self.name, kind, elapsed, self._clock.now_ms(), error=error,
            retry_in_s=retry_in_s,
        )
        self._staged.append(outcome.to_record(self.config.topics.actions))

    def _finish(self, key: SchedKey, work: Work) -> None:
        self._scheduler.complete(key)
        self._tracker.finish(work.partition, work.offset)

    # -- publishing ------------------------------------------------------------------

    def _flush(self) -> None:
        """Publish staged records and commit finished offsets in one transaction."""
        if self._publisher is None or self._consumer is None:
            return
        offsets = self._tracker.committable()
        if not self._staged and not offsets:
            return
        try:
            written = self._publisher.publish(
                self._staged, [(self._consumer.group_metadata(), offsets)]
            )
        except ProducerUnusable as exc:
            self._publisher_broken()
            raise FatalRunnerError(str(exc)) from exc
        except TransactionAborted as exc:
            self._metrics.transactions.labels(action=self.name, result="aborted").inc()
            self._aborts_in_a_row += 1
            log.warning(
                "transaction aborted (%s), rewinding to the committed offsets",
                dlq.describe_error(str(exc)), extra={"handler": self.name},
            )
            if self._aborts_in_a_row >= MAX_ABORTS_IN_A_ROW:
                raise FatalRunnerError(
                    f"{self._aborts_in_a_row} transactions in a row were aborted"
                ) from exc
            self._rewind()
            return
        self._metrics.transactions.labels(action=self.name, result="committed").inc()
        self._aborts_in_a_row = 0
        self._tracker.mark_committed(offsets)
        for record, partition, offset in written:
            self._observe_written(record, partition, offset)
        self._state.committed()
        self._staged.clear()

    def _publisher_broken(self) -> None:
        if self._publisher is not None:
            self._publisher.close(timeout_s=0)
            self._publisher = None

    def _observe_written(self, record: KafkaRecord, partition: int, offset: int) -> None:
        written_ms = self._clock.now_ms()  # the entry's age counts from its write
        if record.topic == self._state.topic:
            self._state.observe(record.key, record.value, partition, offset, written_ms)
        for table in self._tables:
            if table.topic == record.topic:
                table.observe(record.key, record.value, partition, offset, written_ms)

    def _rewind(self) -> None:
        """Forget all uncommitted work and read again from the committed offsets."""
        consumer = self._require_consumer()
        self._staged.clear()
        self._state.abort()
        self._scheduler.clear()
        self._tracker.clear()
        assigned = list(consumer.assignment())
        if self._paused:
            consumer.resume(*[TopicPartition(t, p) for t, p in self._paused])
            self._paused.clear()
        for tp in assigned:
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    # -- backpressure and reporting ---------------------------------------------------

    def _backpressure(self) -> None:
        consumer = self._require_consumer()
        backlog: dict[Partition, int] = {}
        for (topic, partition, _), held in self._scheduler.parked():
            backlog[(topic, partition)] = backlog.get((topic, partition), 0) + held
        total = sum(backlog.values())
        if total > self.config.max_backlog:
            to_pause = set(backlog) - self._paused
            if to_pause:
                consumer.pause(*[TopicPartition(t, p) for t, p in to_pause])
                self._paused |= to_pause
                log.warning(
                    "%d records wait behind parked keys; pausing %d partitions",
                    total, len(to_pause), extra={"handler": self.name},
                )
        elif self._paused and total <= self.config.max_backlog // 2:
            consumer.resume(*[TopicPartition(t, p) for t, p in self._paused])
            self._paused.clear()
        self._metrics.parked_records.labels(action=self.name).set(total)
        self._metrics.parked_keys.labels(action=self.name).set(self._scheduler.parked_count())
        self._metrics.paused_partitions.labels(action=self.name).set(len(self._paused))

    def _report(self) -> None:
        """Lag per partition: records not fetched yet plus records held unfinished."""
        consumer = self._require_consumer()
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            behind = high - consumer.position(tp)
            held = self._tracker.unfinished((tp.topic, tp.partition))
            self._metrics.lag.labels(
                action=self.name, topic=tp.topic, partition=str(tp.partition)
            ).set(max(0, behind) + held)

    # -- rebalancing -----------------------------------------------------------------

    def _apply_rebalance(self) -> None:
        """Fold rebalance events seen during the last poll (see module docstring)."""
        events = self._listener.take()
        if not events:
            return
        change = fold(events, self._suspended)
        if change.suspended and not self._suspended:
            self._suspended_since = self._clock.monotonic()
        self._suspended = change.suspended
        if change.dropped:
            self._forget(change.dropped)
        if change.assigned:
            # Another instance may have written state for keys now ours: read it first.
            self._state.catch_up(self.config.startup_timeout_s)
            assignment = self._require_consumer().assignment()
            log.info(
                "partitions assigned",
                extra={"handler": self.name,
                       "partitions": sorted(f"{tp.topic}/{tp.partition}" for tp in assignment)},
            )

    def _unstick_rebalance(self) -> None:
        """Ask the coordinator to join again when a rebalance seems stuck.

        kafka-python 3.0.12 completes a join only while a ``poll`` waits for it. When the
        join finishes between two polls and the rebalance was triggered by a metadata
        change, it never applies the assignment: the partitions stay revoked and nothing
        is fetched. Requesting a rejoin makes the next poll run a fresh join. Harmless
        during a slow but healthy rebalance: a join still in flight is awaited, not resent.
        """
        stuck_after = max(5.0, 10 * self.config.poll_timeout_s)
        if self._clock.monotonic() - self._suspended_since < stuck_after:
            return
        coordinator = getattr(self._require_consumer(), "_coordinator", None)
        request_rejoin = getattr(coordinator, "request_rejoin", None)
        if callable(request_rejoin):
            log.warning(
                "rebalance not completed after %.0fs; rejoining the group", stuck_after,
                extra={"handler": self.name},
            )
            request_rejoin()
        self._suspended_since = self._clock.monotonic()

    def _forget(self, gone: Set[Partition]) -> None:
        self._scheduler.drop(lambda key: (key[0], key[1]) in gone)
        self._tracker.forget(gone)
        self._paused -= gone

    def _require_consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("runner not started")
        return self._consumer
