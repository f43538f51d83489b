"""Several actions in one process: one thread per action, one stop for all.

SIGTERM or SIGINT sets the shared stop event: every runner finishes the record in hand,
commits and closes. When one runner ends by itself (failure, bad-deploy guard), the
others are stopped too, so an orchestrator restarts the whole process. Exit codes:
:data:`EXIT_OK` (stopped on request), :data:`EXIT_FAILED` (a runner failed, or did not
stop within the shutdown timeout), :data:`EXIT_GUARD` (the bad-deploy guard tripped).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from handlers.runtime.runner import ActionRunner, RunnerExit

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_GUARD = 3


def supervise(
    runners: Sequence[ActionRunner],
    stop: threading.Event,
    shutdown_timeout_s: float,
    *,
    install_signal_handlers: bool = True,
) -> int:
    """Run every runner in its own thread until stopped; returns the exit code."""
    previous = _install(stop) if install_signal_handlers else {}
    threads = [
        threading.Thread(target=runner.run, name=f"handler-{runner.name}", daemon=True)
        for runner in runners
    ]
    try:
        for thread in threads:
            thread.start()
        while not stop.wait(0.2):
            if any(not thread.is_alive() for thread in threads):
                ended = [r.name for r, t in zip(runners, threads, strict=True) if not t.is_alive()]
                log.error("a handler ended by itself; stopping the others",
                          extra={"handler": ",".join(ended)})
                stop.set()
        deadline = time.monotonic() + shutdown_timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    stuck = [r.name for r, t in zip(runners, threads, strict=True) if t.is_alive()]
    if stuck:
        log.error("handlers did not stop within %.0fs: %s", shutdown_timeout_s, ", ".join(stuck))
    exits = [runner.exit for runner in runners]
    if RunnerExit.GUARD_TRIPPED in exits:
        return EXIT_GUARD
    if stuck or any(e is not RunnerExit.STOPPED for e in exits):
        return EXIT_FAILED
    log.info("handlers stopped")
    return EXIT_OK


def _install(stop: threading.Event) -> dict[int, Any]:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("%s received: finishing the current records, then stopping",
                     signal.Signals(signum).name)
        stop.set()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, on_signal)
    return previous
