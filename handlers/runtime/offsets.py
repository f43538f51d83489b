"""Which offset may be committed per partition, when records finish out of order.

Records of one partition finish in any order (a parked key holds its record while later
records of other keys complete). Kafka stores one number per partition, "everything below
this is done", so the committable offset is the lowest unfinished offset, or one past the
highest tracked offset when nothing is unfinished. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

Partition = tuple[str, int]
"""(topic, partition); kafka-python's ``TopicPartition`` is such a tuple."""


class _PartitionOffsets:
    __slots__ = ("committed", "high", "pending")

    def __init__(self) -> None:
        # offset -> finished?; insertion order is offset order (offsets only grow).
        self.pending: OrderedDict[int, bool] = OrderedDict()
        self.high: int | None = None
        self.committed: int | None = None

    def next_commit(self) -> int | None:
        if self.pending:
            return next(iter(self.pending))
        return None if self.high is None else self.high + 1


class OffsetTracker:
    """Tracks consumed-but-unfinished offsets and answers what to commit.

    Contract: ``track`` offsets of a partition in increasing order (as poll returns
    them); ``finish`` each exactly once, in any order. ``committable`` never names an
    offset above an unfinished one, and only partitions whose commit point moved since
    ``mark_committed``.
    """

    def __init__(self) -> None:
        self._parts: dict[Partition, _PartitionOffsets] = {}

    def track(self, partition: Partition, offset: int) -> None:
        part = self._parts.setdefault(partition, _PartitionOffsets())
        if part.high is not None and offset <= part.high:
            raise ValueError(
                f"offset {offset} of {partition} tracked after {part.high}: offsets must grow"
            )
        part.high = offset
        part.pending[offset] = False

    def finish(self, partition: Partition, offset: int) -> None:
        part = self._parts.get(partition)
        if part is None or offset not in part.pending:
            raise KeyError(f"offset {offset} of {partition} is not tracked")
        part.pending[offset] = True
        # Drop the finished prefix: the first pending entry is then the commit point.
        while part.pending:
            first, done = next(iter(part.pending.items()))
            if not done:
                break
            del part.pending[first]

    def committable(self) -> dict[Partition, int]:
        """Offsets to commit (next offset to read, i.e. last finished + 1) that moved."""
        result: dict[Partition, int] = {}
        for partition, part in self._parts.items():
            point = part.next_commit()
            if point is not None and (part.committed is None or point > part.committed):
                result[partition] = point
        return result

    def mark_committed(self, offsets: Mapping[Partition, int]) -> None:
        for partition, offset in offsets.items():
            part = self._parts.get(partition)
            if part is not None:
                part.committed = offset

    def committed(self, topic: str, partition: int) -> int | None:
        """The last offset passed to ``mark_committed`` for the partition, if any."""
        part = self._parts.get((topic, partition))
        return None if part is None else part.committed

    def unfinished(self, partition: Partition) -> int:
        part = self._parts.get(partition)
        return 0 if part is None else sum(1 for done in part.pending.values() if not done)

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop partitions that were revoked: their unfinished records go to the new owner."""
        for partition in partitions:
            self._parts.pop(partition, None)

    def clear(self) -> None:
        self._parts.clear()

    def partitions(self) -> list[Partition]:
        return list(self._parts)
