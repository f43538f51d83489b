"""One REST pacer per process for Cloud Recording: Agora's QPS limit, shared by every call.

Agora allows 10 requests/s **per App ID** (facts 2.10) and answers 429 above it. The
limit counts every instance of every service using the App ID: with N handlers processes
each pacer must be given the App ID's QPS divided by N (``[recording] qps`` in the rules
file, default 10; :func:`shared_pacer` holds one pacer per App ID per process).

- Calls are spaced ``1 / rate`` apart (no bursts), at ``HEADROOM`` of the configured QPS so
  network jitter cannot squeeze 11 requests into one second.
- Waiting calls go by priority, then arrival: a ``start`` (a resourceId was just acquired
  and goes stale within seconds) before ``stop``/``update``, before new ``acquire``\\s,
  before ``query`` (the reconciler's checks yield to restarts).
- A 429 multiplies the rate by ``SLOW_DOWN`` (down to ``MIN_FRACTION`` of the QPS) and
  holds every call for a second; each later answer that is not a 429, a second or more
  after the last 429, raises it again by a tenth of the QPS, up to the configured rate.
  This is on top of the caller's own retry of the refused call.

Thread-safe: the handlers' worker threads, the reconciler and the CLI share it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

HEADROOM = 0.9
"""Fraction of the configured QPS actually used: a call that leaves its slot late (a busy
process) must not land in the same one-second window as eleven others."""

SLOW_DOWN = 0.7
"""Factor applied to the rate on a 429."""

MIN_FRACTION = 0.25
"""Lowest rate after repeated 429s, as a fraction of the configured QPS."""

COOL_DOWN_S = 1.0
"""After a 429 no call is sent for this long (Agora counts per second)."""

PRIORITY: dict[str, int] = {"start": 0, "stop": 1, "update": 1, "acquire": 2, "query": 3}
"""Lower goes first; unknown endpoints rank with ``stop``."""


@dataclass(frozen=True, slots=True)
class PacerStats:
    calls: int
    throttled: int
    """429 answers seen."""
    rate: float
    """Current calls per second."""


class Pacer:
    """Paces calls at ``qps``; ``acquire`` before sending, ``answered`` after."""

    def __init__(
        self, qps: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if qps <= 0:
            raise ValueError(f"qps must be positive, got {qps}")
        self.qps = qps
        self._target = qps * HEADROOM
        self._rate = self._target
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, int]] = []
        self._turns: dict[tuple[int, int], threading.Condition] = {}
        self._seq = itertools.count()
        self._next_free = float("-inf")
        self._last_429 = float("-inf")
        self._calls = 0
        self._throttled = 0

    def acquire(self, endpoint: str) -> float:
        """Block until this call may be sent; returns the seconds waited."""
        entry = (PRIORITY.get(endpoint, 1), next(self._seq))
        # One condition per waiter, so a granted slot wakes the next in line alone: in an
        # incident hundreds of runs wait here, and waking them all for every call would
        # make the one whose turn it is queue for the interpreter behind the others.
        turn = threading.Condition(self._lock)
        with self._lock:
            started = self._monotonic()
            heapq.heappush(self._waiting, entry)
            self._turns[entry] = turn
            try:
                while True:
                    now = self._monotonic()
                    if self._waiting[0] == entry and now >= self._next_free:
                        self._next_free = max(now, self._next_free) + 1.0 / self._rate
                        self._calls += 1
                        return now - started
                    turn.wait(self._next_free - now if self._waiting[0] == entry else None)
            finally:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
                del self._turns[entry]
                if self._waiting:  # the next in line waits for its own slot now
                    self._turns[self._waiting[0]].notify()

    def answered(self, status: int | None) -> None:
        """Feed back the HTTP status of a paced call (None: no answer)."""
        with self._lock:
            now = self._monotonic()
            if status == 429:
                self._throttled += 1
                self._last_429 = now
                self._rate = max(self.qps * MIN_FRACTION, self._rate * SLOW_DOWN)
                self._next_free = max(self._next_free, now + COOL_DOWN_S)
            elif self._rate < self._target and now - self._last_429 >= COOL_DOWN_S:
                self._rate = min(self._target, self._rate + self.qps / 10)

    def configure(self, qps: float) -> None:
        """Change the configured QPS (the rules file names the App ID's share)."""
        if qps <= 0:
            raise ValueError(f"qps must be positive, got {qps}")
        with self._lock:
            self.qps = qps
            self._target = qps * HEADROOM
            self._rate = min(self._rate, self._target) if self._throttled else self._target

    def stats(self) -> PacerStats:
        with self._lock:
            return PacerStats(self._calls, self._throttled, self._rate)


_SHARED: dict[str, Pacer] = {}
_SHARED_LOCK = threading.Lock()
DEFAULT_QPS = 10.0


def shared_pacer(app_id: str, qps: float | None = None) -> Pacer:
    """The process's pacer for ``app_id``, created at ``qps`` (default 10) on first use.
    A later call with another ``qps`` (the rules file read after a client was built)
    changes the pacer's rate."""
    with _SHARED_LOCK:
        pacer = _SHARED.get(app_id)
        if pacer is None:
            pacer = _SHARED[app_id] = Pacer(qps or DEFAULT_QPS)
        elif qps is not None and qps != pacer.qps:
            pacer.configure(qps)
        return pacer
