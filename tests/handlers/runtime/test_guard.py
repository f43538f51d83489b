from __future__ import annotations

import pytest

from handlers.runtime.guard import BadDeployGuard, GuardPolicy

CONSECUTIVE = GuardPolicy(max_consecutive=3, min_distinct_keys=2, min_window_events=1000)


def test_consecutive_dead_letters_across_keys_trip() -> None:
    guard = BadDeployGuard(CONSECUTIVE)
    assert guard.allow_dead_letter("a", 0) is None
    assert guard.allow_dead_letter("b", 1) is None
    trip = guard.allow_dead_letter("c", 2)
    assert trip is not None
    assert "3 consecutive dead letters across 3 keys" in trip.reason
    assert guard.allow_dead_letter("d", 3) is trip  # stays tripped


def test_a_success_resets_the_streak() -> None:
    guard = BadDeployGuard(CONSECUTIVE)
    guard.allow_dead_letter("a", 0)
    guard.allow_dead_letter("b", 0)
    guard.record_success(1)
    assert guard.allow_dead_letter("c", 2) is None
    assert guard.allow_dead_letter("d", 2) is None
    assert guard.tripped is None


def test_one_poisoned_key_is_not_a_bad_deploy() -> None:
    guard = BadDeployGuard(CONSECUTIVE)
    assert all(guard.allow_dead_letter("same", t) is None for t in range(20))


def test_a_high_failure_rate_in_the_window_trips() -> None:
    policy = GuardPolicy(
        max_consecutive=1000, min_distinct_keys=3, window_s=60, min_window_events=10,
        max_failure_ratio=0.5,
    )
    guard = BadDeployGuard(policy)
    verdicts = []
    for i in range(10):  # alternate: never two dead letters in a row
        guard.record_success(i)
        verdicts.append(guard.allow_dead_letter(f"k{i}", i))
    assert verdicts[:4] == [None] * 4
    tripped = [v for v in verdicts if v is not None]
    assert tripped
    assert "dead-lettered within 60s" in tripped[0].reason


def test_old_events_leave_the_window() -> None:
    policy = GuardPolicy(
        max_consecutive=1000, min_distinct_keys=2, window_s=10, min_window_events=4,
        max_failure_ratio=0.75,
    )
    guard = BadDeployGuard(policy)
    for t in range(3):
        assert guard.allow_dead_letter(f"k{t}", t) is None
    # 100 s later the three old dead letters no longer count.
    guard.record_success(100)
    guard.record_success(100)
    assert guard.allow_dead_letter("x", 101) is None
    assert guard.allow_dead_letter("y", 101) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_consecutive": 0}, "max_consecutive"),
        ({"min_distinct_keys": 0}, "min_distinct_keys"),
        ({"max_failure_ratio": 0}, "max_failure_ratio"),
    ],
)
def test_bad_policies_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GuardPolicy(**kwargs)  # type: ignore[arg-type]
