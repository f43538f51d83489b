"""The bad-deploy guard: stop consuming instead of dead-lettering the world. Pure.

A dead letter is normal for one broken record. Many dead letters in a row, across many
different keys, mean the code or its configuration is broken (or a dependency is down for
everyone), and every further record would be dead-lettered for nothing. The runtime asks
the guard *before* dead-lettering a record; when the guard trips, that record stays
uncommitted and the consumer stops with a non-zero exit, so a fixed deploy picks it up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """When the guard trips.

    Either ``max_consecutive`` dead letters with no success in between, or, within the
    last ``window_s`` seconds, at least ``min_window_events`` handled records of which a
    share of ``max_failure_ratio`` or more were dead letters. Both rules also need the
    dead letters to span at least ``min_distinct_keys`` keys: one poisoned channel is
    not a bad deploy.
    """

    max_consecutive: int = 10
    min_distinct_keys: int = 3
    window_s: float = 300.0
    min_window_events: int = 20
    max_failure_ratio: float = 0.8

    def __post_init__(self) -> None:
        if self.max_consecutive < 1:
            raise ValueError(f"max_consecutive must be >= 1, got {self.max_consecutive}")
        if self.min_distinct_keys < 1:
            raise ValueError(f"min_distinct_keys must be >= 1, got {self.min_distinct_keys}")
        if not 0 < self.max_failure_ratio <= 1:
            raise ValueError(f"max_failure_ratio must be in (0, 1], got {self.max_failure_ratio}")


@dataclass(frozen=True, slots=True)
class Trip:
    """The guard's verdict when it refuses a dead letter."""

    reason: str


class BadDeployGuard:
    """Counts successes and dead letters; ``allow_dead_letter`` says whether to go on."""

    def __init__(self, policy: GuardPolicy) -> None:
        self._policy = policy
        self._streak_keys: set[Hashable] = set()
        self._streak = 0
        # (time, dead-lettered?, key) of each handled record in the sliding window.
        self._window: deque[tuple[float, bool, Hashable]] = deque()
        self.tripped: Trip | None = None

    def record_success(self, now: float) -> None:
        """A record was handled (ok, or failed for good): the code path works."""
        self._streak = 0
        self._streak_keys.clear()
        self._window.append((now, False, None))
        self._expire(now)

    def allow_dead_letter(self, key: Hashable, now: float) -> Trip | None:
        """``None`` (and the dead letter is counted) or the reason to stop instead."""
        if self.tripped is not None:
            return self.tripped
        self._expire(now)
        policy = self._policy
        streak = self._streak + 1
        streak_keys = len(self._streak_keys | {key})
        if streak >= policy.max_consecutive and streak_keys >= policy.min_distinct_keys:
            self.tripped = Trip(
                f"{streak} consecutive dead letters across {streak_keys} keys "
                f"(limit {policy.max_consecutive})"
            )
            return self.tripped
        events = len(self._window) + 1
        failed_keys = {k for _, failed, k in self._window if failed} | {key}
        failures = sum(1 for _, failed, _ in self._window if failed) + 1
        if (
            events >= policy.min_window_events
            and failures / events >= policy.max_failure_ratio
            and len(failed_keys) >= policy.min_distinct_keys
        ):
            self.tripped = Trip(
                f"{failures} of {events} records dead-lettered within {policy.window_s:g}s "
                f"across {len(failed_keys)} keys (limit {policy.max_failure_ratio:.0%})"
            )
            return self.tripped
        self._streak = streak
        self._streak_keys.add(key)
        self._window.append((now, True, key))
        return None

    def _expire(self, now: float) -> None:
        horizon = now - self._policy.window_s
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()
