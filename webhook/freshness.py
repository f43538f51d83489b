"""Replay guard on the signed ``notifyMs`` field. NCS refreshes ``notifyMs`` on every retry,
so a genuine delivery is always recent; an old body replayed by someone else is not."""

from __future__ import annotations


class StaleNotification(Exception):
    """``notifyMs`` is further from our clock than the configured tolerance."""

    def __init__(self, skew_ms: int, tolerance_ms: int) -> None:
        self.skew_ms = skew_ms
        self.tolerance_ms = tolerance_ms
        super().__init__(f"notifyMs is {skew_ms} ms from now, tolerance is {tolerance_ms} ms")


def check_fresh(notify_ms: int, now_ms: int, tolerance_ms: int) -> None:
    """Raise :class:`StaleNotification` unless ``|now - notifyMs| <= tolerance``.

    A tolerance of 0 disables the check. Future timestamps count as skew too: a clock far
    ahead is as suspicious as one far behind.
    """
    if tolerance_ms <= 0:
        return
    skew = abs(now_ms - notify_ms)
    if skew > tolerance_ms:
        raise StaleNotification(skew, tolerance_ms)
