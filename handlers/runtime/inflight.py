"""Actions running on worker threads, at most ``limit`` at once; results go back to the loop.

The loop thread submits the ``run`` step of a record (:func:`dispatch.run_step`) and
later collects what finished with :meth:`InFlight.done`; it never waits on a remote call.
A run abandoned by a rebalance or a rewind cannot be cancelled (it is a thread): it runs
to its end, its result is discarded, and its key stays ``busy`` until then, so one key
never runs twice at once in this process.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Generic, TypeVar

from handlers.runtime.dispatch import Result, Transient, Work

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Finished(Generic[K]):
    """One run that ended, as the loop routes it."""

    key: K
    work: Work
    result: Result
    started: float
    elapsed: float


class InFlight(Generic[K]):
    """A bounded pool of running actions. ``submit``, ``done`` and ``abandon`` are called
    from the loop thread only; workers only put results on the finished queue.

    Hand-offs go through two C-implemented ``SimpleQueue``s and long-lived worker threads
    (started as needed, up to ``limit``): per run that is one put and one get each way,
    with no future, lock or condition allocated, which matters when the action is quick."""

    def __init__(self, limit: int, name: str, monotonic: Callable[[], float]) -> None:
        if limit < 1:
            raise ValueError(f"concurrency must be at least 1, got {limit}")
        self._limit = limit
        self._name = name
        self._monotonic = monotonic
        self._tasks: SimpleQueue[tuple[K, Work, Callable[[Work], Result]] | None] = (
            SimpleQueue())
        self._finished: SimpleQueue[Finished[K]] = SimpleQueue()
        self._waited: list[Finished[K]] = []  # taken off the queue by ``wait``
        self._workers: list[threading.Thread] = []
        self._running: dict[K, Work] = {}
        self._abandoned: Counter[K] = Counter()
        self._abandoned_total = 0
        self._closed = False

    def __len__(self) -> int:
        """Runs whose results the loop still waits for (abandoned ones excluded)."""
        return len(self._running)

    def has_room(self) -> bool:
        return len(self._running) + self._abandoned_total < self._limit

    def busy(self, key: K) -> bool:
        """A run of ``key`` is still on a thread (current or abandoned)."""
        return key in self._running or key in self._abandoned

    def submit(self, key: K, work: Work, run: Callable[[Work], Result]) -> None:
        if self.busy(key):
            raise ValueError(f"key {key!r} is already running")
        if self._closed:
            raise RuntimeError("the pool is closed")
        self._running[key] = work
        # As many workers as runs on threads (up to the limit): no run waits for a worker.
        if len(self._workers) < min(self._limit, len(self._running) + self._abandoned_total):
            worker = threading.Thread(
                target=self._work, name=f"action-{self._name}_{len(self._workers)}",
                daemon=True,
            )
            worker.start()
            self._workers.append(worker)
        self._tasks.put((key, work, run))

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            if self._closed:
                continue  # not started before the close: dropped, the record is redone
            key, work, run = task
            started = self._monotonic()
            try:
                result = run(work)
            except BaseException as exc:  # noqa: BLE001 - a result must come back or the key is stuck
                result = Transient(f"{type(exc).__name__}: {exc}")
            self._finished.put(Finished(key, work, result, started, self._monotonic() - started))

    def done(self) -> list[Finished[K]]:
        """Runs that ended since the last call, in the order they ended; abandoned ones
        are dropped here (and their keys freed)."""
        finished, self._waited = self._waited, []
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except Empty:
                break
        results = []
        for item in finished:
            if self._running.get(item.key) is item.work:
                del self._running[item.key]
                results.append(item)
            else:
                self._abandoned[item.key] -= 1
                self._abandoned_total -= 1
                if self._abandoned[item.key] <= 0:
                    del self._abandoned[item.key]
        return results

    def pending(self) -> bool:
        """Something finished and waits for :meth:`done`."""
        return bool(self._waited) or not self._finished.empty()

    def abandon(self, predicate: Callable[[K], bool]) -> int:
        """Forget the results of running keys matching ``predicate`` (their records go to
        another owner or are read again); returns how many."""
        gone = [k for k in self._running if predicate(k)]
        for key in gone:
            del self._running[key]
            self._abandoned[key] += 1
            self._abandoned_total += 1
        return len(gone)

    def wait(self, timeout_s: float) -> bool:
        """Block until some run ends or ``timeout_s`` passes; true if one ended."""
        if self.pending():
            return True
        try:
            self._waited.append(self._finished.get(timeout=max(0.0, timeout_s)))
        except Empty:
            return False
        return True

    def close(self) -> None:
        """Stop taking work; runs still going end on their own (daemon threads), idle
        workers exit."""
        self._closed = True
        for _ in self._workers:
            self._tasks.put(None)
