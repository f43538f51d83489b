"""When to try a failed record again, and when to give up: a pure backoff schedule.

Exponential backoff with jitter, capped per delay, bounded by a number of attempts and a
time budget measured from the first failure. ``retry_after_s`` from the remote side (a
429's ``Retry-After``) is a floor for the next delay, never ignored. Callers pass ``now``
and a random draw in [0, 1), so tests step through schedules with plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a record may be retried.

    ``max_attempts`` counts every attempt, the first one included; ``budget_s`` bounds
    the time from the first failure to the start of the last attempt. A retry whose
    delay would end past the budget is not scheduled: the record is given up at once.
    """

    max_attempts: int
    budget_s: float
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.budget_s <= 0:
            raise ValueError(f"budget_s must be > 0, got {self.budget_s}")
        if not 0 < self.base_delay_s <= self.max_delay_s:
            raise ValueError(
                f"base_delay_s must be > 0 and <= max_delay_s, got {self.base_delay_s}"
            )
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def backoff(self, failed_attempts: int, rand: float) -> float:
        """Delay after the ``failed_attempts``-th failure (1-based), jitter included."""
        raw = self.base_delay_s * self.multiplier ** max(0, failed_attempts - 1)
        capped = min(raw, self.max_delay_s)
        # Spread retries of many keys that failed together over +-jitter of the delay.
        return capped * (1 - self.jitter + 2 * self.jitter * rand)

    def next_retry(
        self,
        failed_attempts: int,
        first_failure_at: float,
        now: float,
        retry_after_s: float | None = None,
        rand: float = 0.5,
    ) -> float | None:
        """Monotonic time of the next attempt, or ``None`` when the budget is spent."""
        if failed_attempts >= self.max_attempts:
            return None
        delay = self.backoff(failed_attempts, rand)
        if retry_after_s is not None and retry_after_s > delay:
            delay = retry_after_s
        due = now + delay
        if due - first_failure_at > self.budget_s:
            return None
        return due
