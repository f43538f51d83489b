"""A deadline for reading one request body, so a client trickling its body cannot hold a
connection (and the memory behind it) for longer than ``AGORA_WEBHOOK_READ_TIMEOUT_S``.

Under gevent workers the read is cooperative and a ``gevent.Timeout`` interrupts it. The
headers are bounded by gunicorn itself (the keep-alive timeout covers the wait for a whole
request head). Under gthread workers, and in-process tests, there is no deadline.
"""

from __future__ import annotations

import functools
import socket
import sys
from contextlib import AbstractContextManager, nullcontext, suppress


class ReadTimedOut(Exception):
    """The body did not arrive within the read timeout."""


@functools.cache
def _gevent_active() -> bool:
    # Asked once per process: gunicorn's gevent worker patches before the app is imported.
    if "gevent.monkey" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("socket"))


def read_deadline(seconds: float) -> AbstractContextManager[object]:
    if not _gevent_active():
        return nullcontext()
    import gevent

    timeout: AbstractContextManager[object] = gevent.Timeout(seconds, ReadTimedOut)
    return timeout


def stop_reading(sock: object) -> None:
    """Half-close the connection so gunicorn does not wait for the rest of the body; the
    answer still goes out, then the connection closes."""
    shutdown = getattr(sock, "shutdown", None)
    if shutdown is not None:
        with suppress(OSError):
            shutdown(socket.SHUT_RD)
