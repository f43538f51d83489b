"""Per-key ordering with parked retries: which record to handle next. Pure.

Records of one key are handled strictly in arrival order. A key whose head record failed
transiently is *parked* until a due time; its later records wait behind it, while every
other key keeps flowing. Keys take turns (round robin) so one busy key cannot starve the
rest. Time is passed in by the caller.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from enum import Enum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class _KeyState(Enum):
    READY = "ready"
    RUNNING = "running"
    PARKED = "parked"


class KeyedScheduler(Generic[K, T]):
    """FIFO queues per key, at most one item in progress per key.

    Contract: ``next_ready`` hands out the head item of a runnable key and marks the key
    running; the caller then calls exactly one of ``complete`` (head done, next item of
    the key becomes runnable) or ``park`` (head stays, key runnable again at ``until``).
    """

    def __init__(self) -> None:
        self._queues: dict[K, deque[T]] = {}
        self._state: dict[K, _KeyState] = {}
        self._ready: deque[K] = deque()
        self._parked: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._seq = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, key: K, item: T) -> None:
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque([item])
            self._state[key] = _KeyState.READY
            self._ready.append(key)
        else:
            queue.append(item)
        self._size += 1

    def next_ready(self, now: float) -> tuple[K, T] | None:
        self._wake(now)
        while self._ready:
            key = self._ready.popleft()
            if self._state.get(key) is _KeyState.READY:
                self._state[key] = _KeyState.RUNNING
                return key, self._queues[key][0]
        return None

    def has_ready(self, now: float) -> bool:
        self._wake(now)
        return any(self._state.get(k) is _KeyState.READY for k in self._ready)

    def complete(self, key: K) -> T:
        """Remove the head of a running key; returns it."""
        self._expect(key, _KeyState.RUNNING)
        queue = self._queues[key]
        item = queue.popleft()
        self._size -= 1
        if queue:
            self._state[key] = _KeyState.READY
            self._ready.append(key)  # to the back: other keys get their turn first
        else:
            del self._queues[key]
            del self._state[key]
        return item

    def park(self, key: K, until: float) -> None:
        """Keep the head of a running key and make the key runnable again at ``until``."""
        self._expect(key, _KeyState.RUNNING)
        self._state[key] = _KeyState.PARKED
        self._due[key] = until
        self._seq += 1
        heapq.heappush(self._parked, (until, self._seq, key))

    def next_wakeup(self) -> float | None:
        """Earliest due time of a parked key, if any."""
        while self._parked:
            until, _, key = self._parked[0]
            if self._state.get(key) is _KeyState.PARKED and self._due.get(key) == until:
                return until
            heapq.heappop(self._parked)  # stale entry of a dropped key
        return None

    def parked(self) -> Iterator[tuple[K, int]]:
        """Parked keys with the number of items they hold (head included)."""
        for key, state in self._state.items():
            if state is _KeyState.PARKED:
                yield key, len(self._queues[key])

    def held(self) -> Iterator[tuple[K, int]]:
        """Every key with the number of items it holds (queued, parked or running)."""
        for key, queue in self._queues.items():
            yield key, len(queue)

    def parked_count(self) -> int:
        return sum(1 for state in self._state.values() if state is _KeyState.PARKED)

    def drop(self, predicate: Callable[[K], bool]) -> list[T]:
        """Remove every key matching ``predicate`` (e.g. of a revoked partition)."""
        dropped: list[T] = []
        for key in [k for k in self._queues if predicate(k)]:
            queue = self._queues.pop(key)
            dropped.extend(queue)
            self._size -= len(queue)
            del self._state[key]
            self._due.pop(key, None)
        self._ready = deque(k for k in self._ready if k in self._state)
        return dropped

    def clear(self) -> None:
        self.drop(lambda _key: True)
        self._parked.clear()

    def _wake(self, now: float) -> None:
        while self._parked and self._parked[0][0] <= now:
            until, _, key = heapq.heappop(self._parked)
            if self._state.get(key) is _KeyState.PARKED and self._due.get(key) == until:
                self._state[key] = _KeyState.READY
                del self._due[key]
                self._ready.append(key)

    def _expect(self, key: K, state: _KeyState) -> None:
        actual = self._state.get(key)
        if actual is not state:
            found = "absent" if actual is None else actual.value
            raise ValueError(f"key {key!r} is {found}, expected {state.value}")
