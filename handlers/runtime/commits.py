"""Finished work waiting for its transaction, and the transaction itself.

Records finish on the loop thread (their results routed there), in any order; what they
produced (outputs, state updates, outcome records, dead letters) is staged here. One
transaction publishes everything staged together with the offsets of the contiguous
finished prefix of every partition (:class:`handlers.runtime.offsets.OffsetTracker`),
however many records that is.

The transaction runs on a committer thread (:meth:`CommitBatch.start`), so the loop
keeps polling and routing meanwhile; what finishes in the meantime is staged for the
next one. One transaction at a time; :meth:`CommitBatch.settle` applies its end on the
loop thread (offsets marked committed, written state observed), or reports an abort
(the caller rewinds to the committed offsets).

When to start one (:meth:`CommitBatch.due`): at once when a record asked for it
(``commit_now``), when nothing is running or ready (the batch cannot grow), or when the
oldest staged result waited ``interval_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

from handlers.runtime import dlq
from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.offsets import OffsetTracker, Partition
from handlers.runtime.state import StateStore, Table
from handlers.runtime.txn import ProducerUnusable, TransactionAborted, TransactionalPublisher

log = logging.getLogger(__name__)

MAX_ABORTS_IN_A_ROW = 5
"""Failed transactions in a row after which the runner gives up (and exits non-zero)."""


class CommitFailed(Exception):
    """The producer is unusable or too many transactions in a row were aborted."""


@dataclass(slots=True)
class _Running:
    future: Future[list[tuple[KafkaRecord, int, int]]]
    offsets: Mapping[Partition, int]
    state_mark: int
    held: frozenset[Hashable]


class CommitBatch:
    """Staged records, the flush policy and the transaction in flight. All methods are
    called from the loop thread; only ``publish`` runs on the committer thread."""

    def __init__(
        self,
        publisher: TransactionalPublisher,
        tracker: OffsetTracker,
        state: StateStore,
        tables: Sequence[Table],
        *,
        handler: str,
        metrics: RuntimeMetrics,
        interval_s: float,
        monotonic: Callable[[], float],
        now_ms: Callable[[], int],
    ) -> None:
        self.publisher: TransactionalPublisher | None = publisher
        self._tracker = tracker
        self._state = state
        self._tables = tables
        self._handler = handler
        self._metrics = metrics
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._now_ms = now_ms
        self._staged: list[KafkaRecord] = []
        self._since: float | None = None  # when the oldest unflushed result finished
        self._now = False
        self._aborts_in_a_row = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"commit-{handler}")
        self._running: _Running | None = None
        self._held: set[Hashable] = set()  # keys waiting for a commit_now record's commit

    def stage(self, records: Sequence[KafkaRecord]) -> None:
        self._staged.extend(records)

    def finished(self, key: Hashable = None, *, commit_now: bool = False) -> None:
        """A record finished: its offset (and staged records) wait for a transaction. After
        ``commit_now`` its key is :meth:`held` until that transaction commits, so the
        key's next record never acts before what this one did is durable (a crash could
        otherwise repeat this one after the next, e.g. an alert after its resolve)."""
        if self._since is None:
            self._since = self._monotonic()
        if commit_now:
            self._now = True
            self._held.add(key)

    def held(self, key: Hashable) -> bool:
        running = self._running
        return key in self._held or (running is not None and key in running.held)

    @property
    def busy(self) -> bool:
        """A transaction is in flight."""
        return self._running is not None

    def due(self, idle: bool) -> bool:
        if self._since is None and not self._staged:
            return False
        if self._now or idle:
            return True
        return self._since is not None and self._monotonic() - self._since >= self._interval_s

    def wait_s(self) -> float | None:
        """Seconds until an interval transaction is due, if anything waits."""
        if self._since is None:
            return None
        return max(0.0, self._since + self._interval_s - self._monotonic())

    def start(self, group_metadata: Any) -> None:
        """Start a transaction with everything staged and the committable offsets, unless
        one is in flight (then this waits for the next call)."""
        publisher = self.publisher
        if publisher is None or self._running is not None:
            return
        offsets = self._tracker.committable()
        self._now, self._since = False, None
        if not self._staged and not offsets:
            return
        records, self._staged = self._staged, []
        held, self._held = frozenset(self._held), set()
        future = self._pool.submit(publisher.publish, records, [(group_metadata, offsets)])
        self._running = _Running(future, offsets, self._state.mark(), held)

    def settle(self, timeout_s: float = 0.0) -> bool | None:
        """Apply the end of the transaction in flight: ``None`` while none ended (within
        ``timeout_s``), ``True`` committed, ``False`` aborted (everything staged is
        dropped; the caller rewinds to the committed offsets). Raises
        :class:`CommitFailed` when the runner cannot go on."""
        running = self._running
        if running is None:
            return None
        if not running.future.done():
            if timeout_s <= 0:
                return None
            wait_futures([running.future], timeout=timeout_s)
            if not running.future.done():
                return None
        self._running = None
        try:
            written = running.future.result()
        except ProducerUnusable as exc:
            if self.publisher is not None:
                self.publisher.close(timeout_s=0)
                self.publisher = None
            raise CommitFailed(str(exc)) from exc
        except TransactionAborted as exc:
            self._metrics.transactions.labels(action=self._handler, result="aborted").inc()
            self._aborts_in_a_row += 1
            log.warning(
                "transaction aborted (%s), rewinding to the committed offsets",
                dlq.describe_error(str(exc)), extra={"handler": self._handler},
            )
            if self._aborts_in_a_row >= MAX_ABORTS_IN_A_ROW:
                raise CommitFailed(
                    f"{self._aborts_in_a_row} transactions in a row were aborted"
                ) from exc
            self.discard()
            return False
        self._metrics.transactions.labels(action=self._handler, result="committed").inc()
        self._aborts_in_a_row = 0
        self._tracker.mark_committed(running.offsets)
        written_ms = self._now_ms()  # an entry's age counts from its write
        for record, partition, offset in written:
            if record.topic == self._state.topic:
                self._state.observe(record.key, record.value, partition, offset, written_ms)
            for table in self._tables:
                if table.topic == record.topic:
                    table.observe(record.key, record.value, partition, offset, written_ms)
        self._state.committed(running.state_mark)
        return True

    def flush(self, group_metadata: Any, timeout_s: float = 60.0) -> bool:
        """Finish the transaction in flight, then commit what is staged, waiting for both
        (on stop). False when one was aborted."""
        for _ in range(2):
            if self._running is not None:
                ended = self.settle(timeout_s)
                if ended is None:
                    raise CommitFailed(f"a transaction did not end within {timeout_s:.0f}s")
                if not ended:
                    return False
            self.start(group_metadata)
        return True if self._running is None else bool(self.settle(timeout_s))

    def discard(self) -> None:
        """Drop everything staged (after an abort): it is redone from the committed offsets."""
        self._staged.clear()
        self._held.clear()
        self._state.abort()
        self._now, self._since = False, None

    def close(self) -> None:
        if self._running is not None:
            wait_futures([self._running.future], timeout=10)
            self._running = None
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
