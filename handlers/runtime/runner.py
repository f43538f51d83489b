"""The loop of one action: poll, decide, hand runs to workers, route results, commit.

The parts, each readable alone: :mod:`~handlers.runtime.keyed` (which record of which key
is next), :mod:`~handlers.runtime.inflight` (runs on worker threads, at most
``concurrency`` at once), :mod:`~handlers.runtime.commits` (finished work and its
transaction), :mod:`~handlers.runtime.routing` (where a result goes),
:mod:`~handlers.runtime.partition_control` (pausing, rebalancing and rewinding the
consumer's partitions), :mod:`~handlers.runtime.expiry` (state expiry) and
:mod:`~handlers.runtime.runner_startup` (connecting to the broker through a
:class:`~handlers.runtime.client_protocols.ClientFactory`). This module is the loop
that drives them.

Guarantees (see also :mod:`handlers.runtime.dlq` and :mod:`handlers.runtime.outcomes`):

- Records of one key are handled strictly in order, one at a time; records of different
  keys run concurrently on worker threads (``concurrency``, default 256). ``decide`` (pure,
  reads state) runs on the loop thread; ``run`` (remote calls) on a worker, so the loop
  never waits on a remote call and a slow or hanging call holds only its own key.
- An offset is committed (as offset + 1) only once its record and every record below it
  in its partition finished (handled, ignored, dead-lettered or skipped). What finished
  records produced (outputs, state updates, outcome records, dead letters) is published
  in one Kafka transaction with those offsets, one transaction for many records. A crash
  before the commit makes all of it invisible to ``read_committed`` readers and the
  records are handled again: side effects of ``run`` must be idempotent. Records that
  finished above an unfinished one are published before their offset can be committed,
  so after a crash or a rebalance they may be handled (and published) a second time.
- A transient failure parks the key (its later records wait behind it) while other keys
  go on. When more than ``max_backlog`` records are held in memory (queued, parked or
  running), every partition is paused until the number halves.
- After a record whose effects say ``commit_now``, its key's next record waits until
  that transaction committed (a crash can repeat the record in hand, never reorder it
  after the next).
- Before dead-lettering, the bad-deploy guard is asked; when it trips, the record stays
  uncommitted and the runner stops with :attr:`RunnerExit.GUARD_TRIPPED`.

Wake-ups: ``poll`` returns as soon as records arrive; while runs or a transaction are in
flight it waits at most ``completion_poll_s`` (kafka-python's ``poll`` cannot be
interrupted from another thread), so a finished run is routed within that time; with
nothing running or parked the loop waits up to ``poll_timeout_s``. Transactions run on a
committer thread (:mod:`~handlers.runtime.commits`): the loop never waits for one, except
on stop.

Rebalances: see :mod:`~handlers.runtime.partition_control`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence, Set
from typing import Any

from handlers.action_contract import Action
from handlers.runtime.client_protocols import ClientFactory, ConsumedRecord
from handlers.runtime.clients import KafkaClientFactory
from handlers.runtime.commits import MAX_ABORTS_IN_A_ROW, CommitBatch, CommitFailed
from handlers.runtime.dispatch import (
    Result,
    Work,
    decide_step,
    not_for,
    run_step,
    skipped_by_type,
    work_from_record,
)
from handlers.runtime.expiry import StateExpiry
from handlers.runtime.flow import restore_parked_fetches
from handlers.runtime.guard import BadDeployGuard, Trip
from handlers.runtime.health import Liveness
from handlers.runtime.inflight import Finished, InFlight
from handlers.runtime.keyed import KeyedScheduler
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.offsets import OffsetTracker, Partition
from handlers.runtime.partition_control import PartitionControl
from handlers.runtime.routing import MAX_OUTPUT_BYTES, ResultRouter
from handlers.runtime.runner_config import FatalRunnerError, RunnerConfig, RunnerExit
from handlers.runtime.runner_startup import connect, input_topics
from handlers.runtime.state import StateStore, Table
from webhook.shared.clock import Clock, SystemClock

log = logging.getLogger(__name__)

__all__ = [
    "MAX_ABORTS_IN_A_ROW", "MAX_OUTPUT_BYTES", "ActionRunner", "FatalRunnerError",
    "RunnerConfig", "RunnerExit", "SchedKey",
]

SchedKey = tuple[str, int, bytes | None]
"""Ordering key: (topic, partition, record key). One key lives on one partition."""

BUSY_KEY_RETRY_S = 0.01
"""How soon a key is offered again when an abandoned run of it is still on a thread, or
when it waits for the commit of its previous record (``commit_now``)."""

TABLE_REFRESH_S = 0.02
"""How often records other writers added to the tables (e.g. a registration by the
``recording`` CLI) are applied."""

REPORT_EVERY_S = 1.0
"""Lag metrics are refreshed at most this often (each asks the consumer per partition)."""


class ActionRunner:
    """Runs one action against the events topic until stopped.

    ``run`` executes in one thread (the loop); actions' ``run`` on worker threads; other
    threads only set ``stop``.
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
        clients: ClientFactory | None = None,
    ) -> None:
        """``clients`` builds the consumer, producer and state readers (default:
        kafka-python clients from ``config.client_config``)."""
        self.action = action
        self.name = action.name
        self.config = config
        self.stop = stop
        self._metrics = metrics
        self._tables = list(tables)
        self._liveness = liveness
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clients = clients or KafkaClientFactory(config.client_config)
        self._state = StateStore(config.topics.state, self.name)
        self._scheduler: KeyedScheduler[SchedKey, Work] = KeyedScheduler()
        self._tracker = OffsetTracker()
        self._inflight: InFlight[SchedKey] = InFlight(
            config.concurrency, self.name, self._clock.monotonic
        )
        self._expiry = StateExpiry(
            self._state, self._tables, handler=self.name, ttl_s=config.state_ttl_s,
            every_s=config.state_expiry_every_s, catch_up_s=config.startup_timeout_s,
            monotonic=self._clock.monotonic, now_ms=self._clock.now_ms,
        )
        self._commits: CommitBatch | None = None
        self._partitions: PartitionControl | None = None
        self._next_report = 0.0
        self._next_table_refresh = 0.0
        # Metric children bound once: labels() costs more than the record's own work.
        self._consumed = metrics.consumed.labels(action=self.name)
        self._ignored = metrics.outcomes.labels(action=self.name, outcome="ignored")
        # Callbacks of other types are finished unread, unless ignored outcomes must be
        # published (they would then overtake the outcomes of their key's earlier records).
        declared = getattr(action, "event_types", None)
        self._event_types = (
            None if declared is None or config.publish_ignored else frozenset(declared))
        self._last_loop = metrics.last_loop.labels(action=self.name)
        self._router = ResultRouter(
            self.name, scheduler=self._scheduler, tracker=self._tracker,  # type: ignore[arg-type]
            commits=self._require_commits, state=self._state, guard=BadDeployGuard(config.guard),
            retry=config.retry, topics=config.topics, publish_ignored=config.publish_ignored,
            metrics=metrics, clock=self._clock, rng=self._rng,
        )
        self.exit: RunnerExit | None = None

    @property
    def trip(self) -> Trip | None:
        """Why the bad-deploy guard stopped the runner, if it did."""
        return self._router.trip

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
            self._drain()
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
        if self._liveness is not None:
            self._liveness.register(self.name)
        topics = input_topics(self.config, self.name, getattr(self.action, "extra_inputs", ()))

        def started(commits: CommitBatch) -> None:
            self._commits = commits

        connected = connect(
            self._clients, self.config, topics, handler=self.name, tracker=self._tracker,
            state=self._state, tables=self._tables, metrics=self._metrics, clock=self._clock,
            on_started=started,
        )
        self._partitions = connected.partitions

    def _drain(self) -> None:
        """On stop: let running actions finish (up to ``stop_drain_s``), commit them."""
        if self._partitions is not None and self._partitions.suspended:
            return  # mid-rebalance nothing can be committed anyway
        deadline = self._clock.monotonic() + self.config.stop_drain_s
        while len(self._inflight) and self._clock.monotonic() < deadline:
            self._inflight.wait(min(0.1, max(0.0, deadline - self._clock.monotonic())))
            self._collect()
        if len(self._inflight):
            log.warning("%d actions still running at stop: redone by the next owner",
                        len(self._inflight), extra={"handler": self.name})
        self._flush()

    def _close(self) -> None:
        self._inflight.close()
        if self._partitions is not None:
            try:
                self._partitions.consumer.close(autocommit=False)
            except Exception:  # closing is best effort; committed offsets are safe
                log.warning("consumer close failed", exc_info=True, extra={"handler": self.name})
        if self._commits is not None:
            self._commits.close()
        self._state.close()
        for table in self._tables:
            table.close()
        if self._liveness is not None:
            self._liveness.stopped(self.name)

    # -- the loop --------------------------------------------------------------------

    def _turn(self) -> None:
        partitions = self._require_partitions()
        self._beat()
        restore_parked_fetches(partitions.consumer)
        batch = partitions.consumer.poll(
            timeout_ms=int(self._poll_timeout() * 1000), max_records=self.config.max_poll_records
        )
        for records in batch.values():
            self._consumed.inc(len(records))
            for record in records:
                self._accept(record)
        self._apply_rebalance()
        if partitions.suspended:
            partitions.unstick_rebalance()
            return  # a rebalance is under way: nothing may be routed or committed now
        self._refresh_tables()
        commits = self._require_commits()
        if commits.settle() is False:
            self._rewind()
            return
        commits.stage(self._expiry.due_records())
        self._collect()
        self._dispatch(self._clock.monotonic() + self.config.batch_time_s)
        idle = not len(self._inflight) and not self._scheduler.has_ready(self._clock.monotonic())
        if commits.due(idle):
            commits.start(partitions.consumer.group_metadata())
        self._flow_control()
        self._report()

    def _refresh_tables(self) -> None:
        """Apply what the tables' readers fetched, at most every ``TABLE_REFRESH_S``: each
        refresh is a poll of its own consumer, and turns come every few milliseconds
        under load. What this runner writes is applied at its commit, not here."""
        now = self._clock.monotonic()
        if now < self._next_table_refresh:
            return
        self._next_table_refresh = now + TABLE_REFRESH_S
        for table in self._tables:
            table.refresh()

    def _poll_timeout(self) -> float:
        """Zero when work is waiting; short while runs are in flight; else until the next
        parked key or interval commit is due (at most ``poll_timeout_s``)."""
        cfg = self.config
        if self._require_partitions().suspended:
            # A rebalance is under way: wait in poll, where kafka-python completes joins
            # (see PartitionControl.unstick_rebalance).
            return cfg.poll_timeout_s
        now = self._clock.monotonic()
        if self._inflight.pending() or (
            self._inflight.has_room() and self._scheduler.has_ready(now)
        ):
            return 0.0
        timeout = cfg.poll_timeout_s
        if len(self._inflight) or self._require_commits().busy:
            timeout = cfg.completion_poll_s
        wake = self._scheduler.next_wakeup()
        if wake is not None:
            timeout = min(timeout, max(0.0, wake - now))
        commit_in = self._require_commits().wait_s()
        if commit_in is not None:
            timeout = min(timeout, commit_in)
        return timeout

    def _beat(self) -> None:
        self._last_loop.set(time.time())
        if self._liveness is not None:
            self._liveness.beat(self.name)

    def _accept(self, record: ConsumedRecord) -> None:
        partition: Partition = (record.topic, record.partition)
        headers = tuple(record.headers or ())
        self._tracker.track(partition, record.offset)
        events = record.topic == self.config.topics.events
        if not_for(self.name, headers, events=events):
            self._tracker.finish(partition, record.offset)
            self._require_commits().finished()
            self._metrics.skipped.labels(action=self.name).inc()
            return
        if events and skipped_by_type(self._event_types, headers):
            # No effects and no outcome record: finishing it before its key's earlier
            # records changes nothing but when its offset may be committed.
            self._tracker.finish(partition, record.offset)
            self._require_commits().finished()
            self._ignored.inc()
            return
        work = work_from_record(
            self.name, record.topic, record.partition, record.offset, record.key,
            record.value, headers, decode=events,
        )
        self._scheduler.push((record.topic, record.partition, record.key), work)

    def _dispatch(self, deadline: float) -> None:
        """Decide the head record of every ready key; hand commands to workers."""
        while not self.stop.is_set() and self.trip is None:
            if not self._inflight.has_room():
                self._collect()  # runs that ended free their slots (fast actions)
                if not self._inflight.has_room():
                    return
            now = self._clock.monotonic()
            if now >= deadline:
                return
            ready = self._scheduler.next_ready(now)
            if ready is None:
                return
            key, work = ready
            if self._inflight.busy(key) or self._require_commits().held(key):
                # An abandoned run of this key is still going, or its last record's
                # commit_now transaction has not committed yet.
                self._scheduler.park(key, now + BUSY_KEY_RETRY_S)
                continue
            decided = decide_step(self.action, work, self._state)
            if decided is None:
                self._inflight.submit(key, work, self._run)
            else:
                self._router.route(key, work, decided, now, self._clock.monotonic() - now)

    def _run(self, work: Work) -> Result:
        """On a worker thread."""
        return run_step(self.action, work)

    def _collect(self) -> None:
        """Route every run that finished since the last call."""
        finished: list[Finished[SchedKey]] = self._inflight.done()
        for item in finished:
            self._router.route(item.key, item.work, item.result, item.started, item.elapsed)

    # -- committing ------------------------------------------------------------------

    def _flush(self) -> None:
        """Commit everything finished and wait for it (on stop)."""
        try:
            committed = self._require_commits().flush(
                self._require_partitions().consumer.group_metadata())
        except CommitFailed as exc:
            raise FatalRunnerError(str(exc)) from exc
        if not committed:
            self._rewind()

    def _rewind(self) -> None:
        """Forget all uncommitted work and read again from the committed offsets."""
        self._inflight.abandon(lambda _key: True)
        self._scheduler.clear()
        self._tracker.clear()
        self._require_partitions().rewind()

    # -- flow control and reporting ---------------------------------------------------

    def _flow_control(self) -> None:
        partitions = self._require_partitions()
        partitions.control_flow(
            self._scheduler.held(), len(self._scheduler), self.config.max_backlog
        )
        self._metrics.paused_partitions.labels(action=self.name).set(len(partitions.paused))

    def _report(self) -> None:
        """Lag per partition (records not fetched yet plus records held unfinished) and
        the parked figures, at most every ``REPORT_EVERY_S``."""
        now = self._clock.monotonic()
        if now < self._next_report:
            return
        self._next_report = now + REPORT_EVERY_S
        parked = sum(held for _, held in self._scheduler.parked())
        self._metrics.parked_records.labels(action=self.name).set(parked)
        self._metrics.parked_keys.labels(action=self.name).set(self._scheduler.parked_count())
        for (topic, partition), behind in self._require_partitions().behind().items():
            unfinished = self._tracker.unfinished((topic, partition))
            self._metrics.lag.labels(
                action=self.name, topic=topic, partition=str(partition)
            ).set(behind + unfinished)

    # -- rebalancing -----------------------------------------------------------------

    def _apply_rebalance(self) -> None:
        """Apply rebalance events seen during the last poll (see module docstring)."""
        change = self._require_partitions().take_rebalance()
        if change is None:
            return
        if change.dropped:
            self._forget(change.dropped)
        if change.assigned:
            # Another instance may have written state for keys now ours: read it first.
            self._state.catch_up(self.config.startup_timeout_s)

    def _forget(self, gone: Set[Partition]) -> None:
        """Drop the work of lost partitions: queued, parked and running (its result will
        be discarded). Staged records of theirs that already finished stay staged: they
        are published with the next transaction, their offsets are not committed, and the
        new owner redoes them (at-least-once, as after a crash)."""
        def lost(key: SchedKey) -> bool:
            return (key[0], key[1]) in gone

        abandoned = self._inflight.abandon(lost)
        self._scheduler.drop(lost)
        self._tracker.forget(gone)
        if abandoned:
            log.info("%d running actions of revoked partitions will be redone by their "
                     "new owner", abandoned, extra={"handler": self.name})

    def _require_partitions(self) -> PartitionControl:
        if self._partitions is None:
            raise RuntimeError("runner not started")
        return self._partitions

    def _require_commits(self) -> CommitBatch:
        if self._commits is None:
            raise RuntimeError("runner not started")
        return self._commits
