from __future__ import annotations

import threading
from typing import Any, cast

from handlers.runtime.runner import RunnerExit
from handlers.runtime.supervisor import EXIT_FAILED, EXIT_GUARD, EXIT_OK, supervise


class FakeRunner:
    """Runs until ``stop`` is set, or ends at once with ``ends_with``."""

    def __init__(self, name: str, stop: threading.Event, ends_with: RunnerExit | None = None):
        self.name = name
        self.stop = stop
        self.exit: RunnerExit | None = None
        self._ends_with = ends_with

    def run(self) -> RunnerExit:
        if self._ends_with is None:
            self.stop.wait(30)
            self.exit = RunnerExit.STOPPED
        else:
            self.exit = self._ends_with
        return self.exit


def run(*runners: FakeRunner, stop: threading.Event) -> int:
    return supervise(cast(Any, runners), stop, 5, install_signal_handlers=False)


def test_stop_ends_every_runner_cleanly() -> None:
    stop = threading.Event()
    runners = [FakeRunner("a", stop), FakeRunner("b", stop)]
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    assert run(*runners, stop=stop) == EXIT_OK
    assert [r.exit for r in runners] == [RunnerExit.STOPPED, RunnerExit.STOPPED]


def test_one_failed_runner_stops_the_others() -> None:
    stop = threading.Event()
    healthy = FakeRunner("a", stop)
    assert run(healthy, FakeRunner("b", stop, RunnerExit.FAILED), stop=stop) == EXIT_FAILED
    assert stop.is_set()
    assert healthy.exit is RunnerExit.STOPPED


def test_a_tripped_guard_has_its_own_exit_code() -> None:
    stop = threading.Event()
    runners = (FakeRunner("a", stop), FakeRunner("b", stop, RunnerExit.GUARD_TRIPPED))
    assert run(*runners, stop=stop) == EXIT_GUARD

