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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    from the loop thread only; workers only append to the finished list."""

    def __init__(self, limit: int, name: str, monotonic: Callable[[], float]) -> None:
        if limit < 1:
            raise ValueError(f"concurrency must be at least 1, got {limit}")
        self._limit = limit
        self._monotonic = monotonic
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"action-{name}")
        self._running: dict[K, Work] = {}
        self._abandoned: Counter[K] = Counter()
        self._abandoned_total = 0
        self._lock = threading.Lock()
        self._finished: list[tuple[Finished[K], bool]] = []
        self._changed = threading.Condition(self._lock)

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
        self._running[key] = work
        self._pool.submit(self._run, key, work, run)

    def _run(self, key: K, work: Work, run: Callable[[Work], Result]) -> None:
        started = self._monotonic()
        try:
            result = run(work)
        except BaseException as exc:  # noqa: BLE001 - a result must come back or the key is stuck
            result = Transient(f"{type(exc).__name__}: {exc}")
        finished = Finished(key, work, result, started, self._monotonic() - started)
        with self._changed:
            self._finished.append((finished, False))
            self._changed.notify_all()

    def done(self) -> list[Finished[K]]:
        """Runs that ended since the last call, in the order they ended; abandoned ones
        are dropped here (and their keys freed)."""
        with self._lock:
            finished, self._finished = self._finished, []
        results = []
        for item, _ in finished:
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
        with self._lock:
            return bool(self._finished)

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
        with self._changed:
            if not self._finished:
                self._changed.wait(timeout_s)
            return bool(self._finished)

    def close(self) -> None:
        """Stop taking work; runs still going end on their own (daemon-like)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
