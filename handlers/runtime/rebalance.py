"""Rebalance notifications, applied by the runner thread after ``poll`` returns.

kafka-python 3 calls rebalance listeners on its network thread while the runner thread
waits inside ``poll``; blocking client calls must not be made there. The listener only
records what happened and the runner folds the events after ``poll`` returns.

What kafka-python does (eager protocol, the default): ``on_partitions_revoked`` names the
whole assignment, but the partitions stay assigned, positions included, until the join
completes; ``on_partitions_assigned`` then names the new assignment, and partitions in
both keep their fetch position. So the runner *suspends* revoked partitions (handles and
commits nothing while a rebalance is under way), keeps the in-memory work of partitions
it gets back, and drops the work of the others (their new owner reads them again from
the committed offset). Lost partitions (the member was evicted) are dropped at once:
kafka-python resets their positions. Dropped work (queued, parked, running, or finished
but not yet committed) is redone by the new owner from the committed offset.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import ConsumerRebalanceListener, TopicPartition

from handlers.runtime.offsets import Partition

Event = tuple[str, frozenset[Partition]]


@dataclass(frozen=True, slots=True)
class RebalanceChange:
    """What the runner must do after a ``poll``."""

    dropped: frozenset[Partition]
    """Partitions whose queued work must be forgotten now."""
    suspended: frozenset[Partition]
    """Revoked partitions waiting for the join to complete (nothing is handled meanwhile)."""
    assigned: bool
    """An assignment completed: read the state topic to its end before handling."""


def fold(events: Iterable[Event], suspended: frozenset[Partition]) -> RebalanceChange:
    """Apply ordered (kind, partitions) events to the currently suspended set. Pure."""
    pending = set(suspended)
    dropped: set[Partition] = set()
    assigned = False
    for kind, partitions in events:
        if kind == "revoked":
            pending |= partitions
        elif kind == "lost":
            dropped |= partitions
            pending -= partitions
        else:  # assigned: the join completed
            dropped |= pending - partitions
            pending.clear()
            assigned = True
    return RebalanceChange(frozenset(dropped), frozenset(pending), assigned)


class RecordingListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Thread-safe log of rebalance events; ``take`` empties it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def _add(self, kind: str, partitions: Iterable[TopicPartition]) -> None:
        parts = frozenset((tp.topic, tp.partition) for tp in partitions)
        with self._lock:
            self._events.append((kind, parts))

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._add("revoked", revoked)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self._add("lost", lost)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._add("assigned", assigned)

    def take(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
        return events
