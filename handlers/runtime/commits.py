"""Finished work waiting for its transaction, and the transaction itself.

Records finish on the loop thread (their results routed there), in any order; what they
produced (outputs, state updates, outcome records, dead letters) is staged here. One
flush publishes everything staged together with the offsets of the contiguous finished
prefix of every partition (:class:`handlers.runtime.offsets.OffsetTracker`), in one
Kafka transaction, however many records it covers.

When to flush (:meth:`CommitBatch.due`): at once when a record asked for it
(``commit_now``), when nothing is running or ready (the batch cannot grow), or when
the oldest staged result waited ``interval_s``; so a busy runtime writes a few
transactions per second, not one per record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from handlers.runtime import dlq
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.offsets import OffsetTracker
from handlers.runtime.records import KafkaRecord
from handlers.runtime.state import StateStore, Table
from handlers.runtime.txn import ProducerUnusable, TransactionAborted, TransactionalPublisher

log = logging.getLogger(__name__)

MAX_ABORTS_IN_A_ROW = 5
"""Failed transactions in a row after which the runner gives up (and exits non-zero)."""


class CommitFailed(Exception):
    """The producer is unusable or too many transactions in a row were aborted."""


class CommitBatch:
    """Staged records plus the flush policy; used from the loop thread only."""

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

    def stage(self, records: Sequence[KafkaRecord]) -> None:
        self._staged.extend(records)

    def finished(self, *, commit_now: bool = False) -> None:
        """A record finished: its offset (and staged records) wait for a flush."""
        if self._since is None:
            self._since = self._monotonic()
        self._now = self._now or commit_now

    def due(self, idle: bool) -> bool:
        if self._since is None and not self._staged:
            return False
        if self._now or idle:
            return True
        return self._since is not None and self._monotonic() - self._since >= self._interval_s

    def wait_s(self) -> float | None:
        """Seconds until an interval flush is due, if anything waits."""
        if self._since is None:
            return None
        return max(0.0, self._since + self._interval_s - self._monotonic())

    def flush(self, group_metadata: Any) -> bool:
        """Publish staged records and commit finished offsets in one transaction. False when
        it was aborted: the caller rewinds to the committed offsets. Raises
        :class:`CommitFailed` when the runner cannot go on."""
        publisher = self.publisher
        if publisher is None:
            return True
        offsets = self._tracker.committable()
        self._now, self._since = False, None
        if not self._staged and not offsets:
            return True
        try:
            written = publisher.publish(self._staged, [(group_metadata, offsets)])
        except ProducerUnusable as exc:
            publisher.close(timeout_s=0)
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
        self._tracker.mark_committed(offsets)
        written_ms = self._now_ms()  # an entry's age counts from its write
        for record, partition, offset in written:
            if record.topic == self._state.topic:
                self._state.observe(record.key, record.value, partition, offset, written_ms)
            for table in self._tables:
                if table.topic == record.topic:
                    table.observe(record.key, record.value, partition, offset, written_ms)
        self._state.committed()
        self._staged.clear()
        return True

    def discard(self) -> None:
        """Drop everything staged (after an abort): it is redone from the committed offsets."""
        self._staged.clear()
        self._state.abort()
        self._now, self._since = False, None

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
