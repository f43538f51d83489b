"""Flow control: pause partitions when too many records are held in memory. Pure.

Records are held from ``poll`` until they finish: queued behind their key, parked for a
retry, or running. Past ``limit`` held records every assigned partition is paused
(kafka-python stops fetching them, so memory stays bounded whatever the backlog in
Kafka: about ``limit`` plus one poll's records); once the total falls to half, every
paused partition resumes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from handlers.runtime.offsets import Partition


@dataclass(frozen=True, slots=True)
class FlowChange:
    pause: frozenset[Partition]
    resume: frozenset[Partition]


def held_by_partition(keys: Iterable[tuple[tuple[str, int, object], int]]) -> dict[Partition, int]:
    """Sum ``(scheduling key, records held)`` pairs per (topic, partition)."""
    held: dict[Partition, int] = {}
    for (topic, partition, _), count in keys:
        held[(topic, partition)] = held.get((topic, partition), 0) + count
    return held


def decide_flow(
    held: Mapping[Partition, int], paused: Set[Partition], limit: int,
    assigned: Iterable[Partition] = (),
) -> FlowChange:
    """Which partitions to pause or resume now: past ``limit`` every assigned partition
    (and any holding records) pauses, so at most one more poll's records arrive."""
    total = sum(held.values())
    if total > limit:
        candidates = set(assigned) | {p for p, n in held.items() if n}
        return FlowChange(frozenset(candidates - set(paused)), frozenset())
    if paused and total <= limit // 2:
        return FlowChange(frozenset(), frozenset(paused))
    return FlowChange(frozenset(), frozenset())


def restore_parked_fetches(consumer: Any) -> None:
    """Work around kafka-python 3.0.12 losing resumed partitions (call before each poll).

    Records fetched for a partition that was paused meanwhile are parked in the fetcher and
    restored once it is resumed, but only into an *empty* in-line slot (``is None``); a
    fully read slot is kept as an exhausted, falsy object, so the parked records are never
    restored, and the fetcher never fetches that partition again (it still holds data for
    it). Clearing an exhausted slot lets the fetcher restore them.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not getattr(fetcher, "_paused_partition_records", None):
        return
    current = getattr(fetcher, "_next_partition_records", None)
    if current is not None and not current:
        fetcher._next_partition_records = None
