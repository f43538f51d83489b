"""In-flight runs and flow control without Kafka (the Kafka tests cover them end to end)."""

from __future__ import annotations

import threading
import time

import pytest

from handlers.action_contract import Effects
from handlers.runtime.dispatch import Handled, Result, Transient, Work
from handlers.runtime.flow import decide_flow, held_by_partition
from handlers.runtime.inflight import InFlight


def work(offset: int) -> Work:
    return Work(partition=("t", 0), offset=offset, key=b"k", value=b"{}", headers=(),
                received=None)


def collect(inflight: InFlight[str], count: int) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + 5
    while len(got) < count and time.monotonic() < deadline:
        inflight.wait(0.1)
        got.extend(f.key for f in inflight.done())
    return got


def test_runs_end_in_any_order_and_free_their_slot() -> None:
    gate = threading.Event()
    inflight: InFlight[str] = InFlight(2, "t", time.monotonic)

    def slow(_: Work) -> Result:
        gate.wait(5)
        return Handled("ok", Effects())

    inflight.submit("a", work(0), slow)
    inflight.submit("b", work(1), lambda _: Handled("ok", Effects()))
    assert not inflight.has_room()
    assert collect(inflight, 1) == ["b"]
    assert inflight.has_room()
    assert inflight.busy("a")
    assert not inflight.busy("b")
    with pytest.raises(ValueError, match="already running"):
        inflight.submit("a", work(2), slow)
    gate.set()
    assert collect(inflight, 1) == ["a"]
    inflight.close()


def test_an_abandoned_run_is_discarded_and_holds_its_key_until_it_ends() -> None:
    gate = threading.Event()
    inflight: InFlight[str] = InFlight(4, "t", time.monotonic)
    inflight.submit("a", work(0), lambda _: (gate.wait(5), Handled("ok", Effects()))[1])
    assert inflight.abandon(lambda key: key == "a") == 1
    assert len(inflight) == 0
    assert inflight.busy("a")
    gate.set()
    assert collect(inflight, 1) == []
    inflight.wait(0.2)
    inflight.done()
    assert not inflight.busy("a")
    inflight.close()


def test_an_exception_escaping_run_comes_back_as_transient() -> None:
    inflight: InFlight[str] = InFlight(1, "t", time.monotonic)

    def boom(_: Work) -> Result:
        raise KeyboardInterrupt

    inflight.submit("a", work(0), boom)
    inflight.wait(2)
    (finished,) = inflight.done()
    assert isinstance(finished.result, Transient)
    inflight.close()


def test_flow_pauses_every_partition_past_the_limit_and_resumes_at_half() -> None:
    held = held_by_partition([(("t", 0, b"a"), 6), (("t", 0, b"b"), 2), (("t", 1, b"c"), 3),
                              (("t", 2, b"d"), 0)])
    assert held == {("t", 0): 8, ("t", 1): 3, ("t", 2): 0}
    assert decide_flow(held, {("t", 1)}, limit=10, assigned=[("t", 0), ("t", 1), ("t", 3)]
                       ).pause == {("t", 0), ("t", 3)}
    change = decide_flow(held, set(), limit=10)
    assert change.pause == {("t", 0), ("t", 1)}
    assert not change.resume
    assert decide_flow({("t", 0): 6}, {("t", 0)}, limit=10).resume == set()
    assert decide_flow({("t", 0): 5}, {("t", 0), ("t", 1)}, limit=10).resume == {
        ("t", 0), ("t", 1)}
    with pytest.raises(ValueError, match="at least 1"):
        InFlight(0, "t", time.monotonic)
