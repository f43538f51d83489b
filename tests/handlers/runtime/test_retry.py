from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.runtime.retry import RetryPolicy


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, budget_s=1000, base_delay_s=1, max_delay_s=5, jitter=0)
    assert [policy.backoff(n, 0.5) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_jitter_spreads_around_the_delay() -> None:
    policy = RetryPolicy(max_attempts=10, budget_s=1000, base_delay_s=2, jitter=0.25)
    assert policy.backoff(1, 0.0) == pytest.approx(1.5)
    assert policy.backoff(1, 0.5) == pytest.approx(2.0)
    assert policy.backoff(1, 0.999) == pytest.approx(2.5, abs=0.01)


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3, budget_s=1000, jitter=0)
    assert policy.next_retry(1, first_failure_at=0, now=0) == 1.0
    assert policy.next_retry(2, first_failure_at=0, now=1) == 3.0
    assert policy.next_retry(3, first_failure_at=0, now=3) is None


def test_a_retry_past_the_budget_is_not_scheduled() -> None:
    policy = RetryPolicy(max_attempts=100, budget_s=10, base_delay_s=4, jitter=0)
    assert policy.next_retry(1, first_failure_at=100, now=100) == 104
    assert policy.next_retry(2, first_failure_at=100, now=104) is None  # 104 + 8 > 110


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(max_attempts=5, budget_s=100, base_delay_s=1, jitter=0)
    assert policy.next_retry(1, 0, 0, retry_after_s=30) == 30
    assert policy.next_retry(1, 0, 0, retry_after_s=0.1) == 1
    assert policy.next_retry(1, 0, 0, retry_after_s=200) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0, "budget_s": 1}, "max_attempts"),
        ({"max_attempts": 1, "budget_s": 0}, "budget_s"),
        ({"max_attempts": 1, "budget_s": 1, "base_delay_s": 5, "max_delay_s": 1}, "base_delay_s"),
        ({"max_attempts": 1, "budget_s": 1, "multiplier": 0.5}, "multiplier"),
        ({"max_attempts": 1, "budget_s": 1, "jitter": 1.0}, "jitter"),
    ],
)
def test_bad_policies_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@given(
    st.integers(min_value=1, max_value=30),
    st.floats(min_value=0, max_value=0.999),
    st.floats(min_value=0, max_value=500),
)
def test_retries_stay_within_jitter_and_budget(failures: int, rand: float, elapsed: float) -> None:
    policy = RetryPolicy(max_attempts=31, budget_s=300, base_delay_s=0.5, max_delay_s=20)
    delay = policy.backoff(failures, rand)
    capped = min(0.5 * 2 ** (failures - 1), 20)
    assert capped * 0.8 <= delay <= capped * 1.2
    due = policy.next_retry(failures, first_failure_at=0, now=elapsed, rand=rand)
    if due is not None:
        assert due <= 300
        assert due == pytest.approx(elapsed + delay)
