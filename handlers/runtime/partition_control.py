"""What the runner does to its consumer's partitions: pause and resume them for flow
control (:mod:`~handlers.runtime.flow`), suspend them while a rebalance is under way
(:mod:`~handlers.runtime.rebalance`), and rewind them to the committed offsets after
an aborted transaction.

Rebalance: the runner handles, routes and commits nothing while a rebalance is under
way. Work of partitions it keeps goes on. Work of partitions it loses, finished but not
yet committed or still running, is left uncommitted: the new owner reads those records
again from the committed offset and redoes them (actions are idempotent: the restart
action's registry journal, whiteboard's bound, notify's incident keys). A run still on a
thread for a lost partition ends on its own; its result is discarded.

Called from the loop thread only; the rebalance listener it hands to ``subscribe`` is
the one part that other threads (the client's network thread) touch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Set

from kafka import TopicPartition

from handlers.runtime.client_protocols import GroupConsumer
from handlers.runtime.flow import decide_flow, held_by_partition
from handlers.runtime.offsets import Partition
from handlers.runtime.rebalance import RebalanceChange, RecordingListener, fold

log = logging.getLogger(__name__)


class PartitionControl:
    """Paused and suspended partitions of one group consumer."""

    def __init__(
        self, consumer: GroupConsumer, *, handler: str, stuck_after_s: float,
        monotonic: Callable[[], float],
    ) -> None:
        self.consumer = consumer
        self.listener = RecordingListener()
        self.paused: set[Partition] = set()
        self.suspended: frozenset[Partition] = frozenset()
        self._handler = handler
        self._stuck_after_s = stuck_after_s
        self._monotonic = monotonic
        self._suspended_since = 0.0

    def subscribe(self, topics: list[str]) -> None:
        self.consumer.subscribe(topics, listener=self.listener)

    def assigned(self) -> list[Partition]:
        return sorted((tp.topic, tp.partition) for tp in self.consumer.assignment())

    def behind(self) -> dict[Partition, int]:
        """Records not fetched yet, per assigned partition whose end is known."""
        behind = {}
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None:
                behind[(tp.topic, tp.partition)] = max(0, high - self.consumer.position(tp))
        return behind

    # -- rebalancing -----------------------------------------------------------------

    def take_rebalance(self) -> RebalanceChange | None:
        """Fold the rebalance events seen during the last poll; ``None`` without any.
        The caller drops the work of ``dropped`` partitions and, after an assignment,
        reads the state topic to its end."""
        events = self.listener.take()
        if not events:
            return None
        change = fold(events, self.suspended)
        if change.suspended and not self.suspended:
            self._suspended_since = self._monotonic()
        self.suspended = change.suspended
        self.paused -= change.dropped
        if change.assigned:
            log.info("partitions assigned", extra={
                "handler": self._handler,
                "partitions": [f"{topic}/{partition}" for topic, partition in self.assigned()],
            })
        return change

    def unstick_rebalance(self) -> None:
        """Ask the coordinator to join again when a rebalance seems stuck.

        kafka-python 3.0.12 completes a join only while a ``poll`` waits for it. When the
        join finishes between two polls and the rebalance was triggered by a metadata
        change, it never applies the assignment: the partitions stay revoked and nothing
        is fetched. Requesting a rejoin makes the next poll run a fresh join. Harmless
        during a slow but healthy rebalance: a join still in flight is awaited, not resent.
        """
        if self._monotonic() - self._suspended_since < self._stuck_after_s:
            return
        coordinator = getattr(self.consumer, "_coordinator", None)
        request_rejoin = getattr(coordinator, "request_rejoin", None)
        if callable(request_rejoin):
            log.warning(
                "rebalance not completed after %.0fs; rejoining the group", self._stuck_after_s,
                extra={"handler": self._handler},
            )
            request_rejoin()
        self._suspended_since = self._monotonic()

    # -- flow control ----------------------------------------------------------------

    def control_flow(self, held: Iterable[tuple[tuple[str, int, object], int]],
                     held_total: int, max_backlog: int) -> None:
        """Pause every partition past ``max_backlog`` records held; resume at half."""
        if held_total <= max_backlog and not self.paused:
            return
        change = decide_flow(held_by_partition(held), self.paused, max_backlog, self.assigned())
        if change.pause:
            self.consumer.pause(*_topic_partitions(change.pause))
            self.paused |= change.pause
            log.info(
                "%d records held (queued, parked or running); pausing %d partitions",
                held_total, len(change.pause), extra={"handler": self._handler},
            )
        if change.resume:
            self.consumer.resume(*_topic_partitions(change.resume))
            self.paused -= change.resume

    # -- rewinding -------------------------------------------------------------------

    def rewind(self) -> None:
        """Resume everything and read again from the committed offsets (the earliest
        where none is committed)."""
        if self.paused:
            self.consumer.resume(*_topic_partitions(self.paused))
            self.paused.clear()
        for tp in list(self.consumer.assignment()):
            committed = self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)


def _topic_partitions(partitions: Set[Partition]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for topic, partition in partitions]
