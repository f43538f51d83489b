"""The Cloud Recording pacer: alone (priorities, 429 slow-down and recovery) and in front
of the fake Agora enforcing 10 requests/s per App ID."""

from __future__ import annotations

import threading
import time

import pytest

from handlers.recording.errors import RecordingApiError
from handlers.recording.pacer import HEADROOM, MIN_FRACTION, SLOW_DOWN, Pacer, shared_pacer
from handlers.testing.fake_agora import FakeAgora
from webhook.shared.clock import SystemClock


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_waiting_calls_go_start_first_then_acquire_then_query() -> None:
    pacer = Pacer(4.0)  # one call per ~0.26 s
    pacer.acquire("acquire")  # takes the current slot: the others must wait
    order: list[str] = []
    threads = []
    for endpoint in ("query", "acquire", "start"):
        thread = threading.Thread(target=lambda e=endpoint: (pacer.acquire(e), order.append(e)))
        thread.start()
        threads.append(thread)
        time.sleep(0.03)  # all three queue before the next slot frees
    for thread in threads:
        thread.join(5)
    assert order == ["start", "acquire", "query"]


def test_many_waiters_each_get_their_turn_in_arrival_order() -> None:
    pacer = Pacer(20.0)  # one call per ~56 ms: the queue grows while they arrive
    pacer.acquire("acquire")
    order: list[int] = []
    threads = []
    for index in range(20):
        thread = threading.Thread(target=lambda i=index: (pacer.acquire("query"), order.append(i)))
        thread.start()
        threads.append(thread)
        time.sleep(0.01)  # queue in a known order
    for thread in threads:
        thread.join(10)
    assert order == list(range(20))
    assert pacer.stats().calls == 21


def test_calls_are_spaced_at_the_qps_with_headroom() -> None:
    pacer = Pacer(20.0)
    started = time.monotonic()
    for _ in range(11):
        pacer.acquire("acquire")
    elapsed = time.monotonic() - started
    assert elapsed >= 10 / (20.0 * HEADROOM) - 0.01
    assert pacer.stats().calls == 11


def test_a_429_slows_the_rate_and_later_answers_bring_it_back() -> None:
    clock = Clock()
    pacer = Pacer(10.0, monotonic=clock)
    target = 10.0 * HEADROOM
    pacer.answered(429)
    assert pacer.stats().rate == pytest.approx(target * SLOW_DOWN)
    for _ in range(5):
        pacer.answered(429)
    assert pacer.stats().rate == pytest.approx(10.0 * MIN_FRACTION)  # never below
    pacer.answered(200)  # within the cool-down: no change yet
    assert pacer.stats().rate == pytest.approx(10.0 * MIN_FRACTION)
    clock.now += 1.5
    for _ in range(20):
        pacer.answered(200)
    assert pacer.stats().rate == pytest.approx(target)
    assert pacer.stats().throttled == 6


def test_the_shared_pacer_is_one_per_app_id_and_takes_the_configured_qps() -> None:
    first = shared_pacer("app-pacer-test")
    assert first.qps == 10.0
    assert shared_pacer("app-pacer-test", 4.0) is first
    assert first.qps == 4.0
    assert shared_pacer("another-app-pacer-test") is not first
    with pytest.raises(ValueError, match="qps must be positive"):
        Pacer(0)


def test_a_paced_client_stays_under_the_fakes_limit_an_unpaced_one_does_not() -> None:
    with FakeAgora(clock=SystemClock(), qps_limit=10) as fake:
        unpaced = fake.client()
        statuses: list[int | None] = []
        for i in range(15):
            try:
                unpaced.acquire(f"burst-{i}", "1001")
            except RecordingApiError as exc:
                statuses.append(exc.http_status)
        assert len(statuses) >= 5
        assert set(statuses) == {429}
        unpaced.close()
        time.sleep(1.1)  # the fake's window empties
        pacer = Pacer(10.0)
        paced = fake.client(pacer=pacer)
        lock = threading.Lock()
        errors: list[int | None] = []

        def call(i: int) -> None:
            try:
                paced.acquire(f"paced-{i}", "1001")
            except RecordingApiError as exc:
                with lock:
                    errors.append(exc.http_status)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(25)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        paced.close()
    assert errors == []
    assert pacer.stats().calls == 25
    assert pacer.stats().throttled == 0


def test_the_fake_answers_each_endpoint_after_its_configured_latency() -> None:
    with FakeAgora(clock=SystemClock(), latency_s={"acquire": 0.3}) as fake:
        client = fake.client()
        started = time.monotonic()
        client.acquire("slow-acquire", "1001")
        assert time.monotonic() - started >= 0.3
        client.close()
