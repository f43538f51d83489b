"""How long-running operator commands stop on Ctrl-C or SIGTERM: the signal only sets a flag
their loop checks. An exception raised wherever the signal lands could interrupt a Kafka
client while it holds one of its locks and hang its close."""

from __future__ import annotations

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event set by the next SIGINT or SIGTERM (main thread only, like ``signal.signal``)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop
