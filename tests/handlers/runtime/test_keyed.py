from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.runtime.keyed import KeyedScheduler


def drain(s: KeyedScheduler[str, int], now: float = 0.0) -> list[tuple[str, int]]:
    done = []
    while (ready := s.next_ready(now)) is not None:
        s.complete(ready[0])
        done.append(ready)
    return done


def test_keys_keep_their_order_and_take_turns() -> None:
    s: KeyedScheduler[str, int] = KeyedScheduler()
    for key, item in [("a", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)]:
        s.push(key, item)
    assert drain(s) == [("a", 1), ("b", 3), ("c", 5), ("a", 2), ("a", 4)]
    assert len(s) == 0


def test_a_parked_key_waits_while_others_flow() -> None:
    s: KeyedScheduler[str, int] = KeyedScheduler()
    s.push("a", 1)
    s.push("a", 2)
    s.push("b", 3)
    assert s.next_ready(0) == ("a", 1)
    s.park("a", until=10)
    s.push("b", 4)
    assert drain(s, now=5) == [("b", 3), ("b", 4)]
    assert s.next_wakeup() == 10
    assert list(s.parked()) == [("a", 2)]
    assert s.next_ready(9.9) is None
    assert not s.has_ready(9.9)
    assert s.next_ready(10) == ("a", 1)  # the same head, retried
    s.complete("a")
    assert drain(s, now=10) == [("a", 2)]
    assert s.next_wakeup() is None


def test_a_running_key_is_not_handed_out_twice() -> None:
    s: KeyedScheduler[str, int] = KeyedScheduler()
    s.push("a", 1)
    s.push("a", 2)
    assert s.next_ready(0) == ("a", 1)
    assert s.next_ready(0) is None


def test_dropping_keys_removes_their_items() -> None:
    s: KeyedScheduler[str, int] = KeyedScheduler()
    s.push("p0/a", 1)
    s.push("p1/b", 2)
    assert s.next_ready(0) == ("p0/a", 1)
    s.park("p0/a", until=5)
    assert s.drop(lambda key: key.startswith("p0")) == [1]
    assert s.next_wakeup() is None
    assert s.parked_count() == 0
    assert drain(s, now=10) == [("p1/b", 2)]


def test_complete_and_park_need_a_running_key() -> None:
    s: KeyedScheduler[str, int] = KeyedScheduler()
    s.push("a", 1)
    with pytest.raises(ValueError, match="key 'a' is ready, expected running"):
        s.complete("a")
    with pytest.raises(ValueError, match="key 'z' is absent"):
        s.park("z", 1)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=40))
def test_per_key_order_holds_under_parking(ops: list[tuple[str, bool]]) -> None:
    """Items complete in push order per key, whatever fails and is parked."""
    s: KeyedScheduler[str, int] = KeyedScheduler()
    pushed: dict[str, list[int]] = {}
    for index, (key, _) in enumerate(ops):
        s.push(key, index)
        pushed.setdefault(key, []).append(index)
    fail_once = {i for i, (_, fails) in enumerate(ops) if fails}
    completed: dict[str, list[int]] = {}
    now = 0.0
    while len(s):
        ready = s.next_ready(now)
        if ready is None:
            wake = s.next_wakeup()
            assert wake is not None
            now = wake
            continue
        key, item = ready
        if item in fail_once:
            fail_once.discard(item)
            s.park(key, now + 1)
        else:
            s.complete(key)
            completed.setdefault(key, []).append(item)
    assert completed == pushed
