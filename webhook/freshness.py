"""Replay guard on the signed ``notifyMs`` field. NCS refreshes ``notifyMs`` on every retry,
so a genuine delivery is always recent; an old body replayed by someone else is not.

The default window (:data:`DEFAULT_TOLERANCE_S`, 10 minutes) is far wider than a genuine
attempt needs: each attempt carries its own ``notifyMs`` and NCS gives up after 10 s per
attempt and 3 retries. The slack covers what Agora does not publish (the back-off intervals,
and whether every path refreshes ``notifyMs``) plus clock skew between NCS and this host,
so a genuine retry is never refused. Within the window, :mod:`webhook.dedup` stops a
captured body from being published twice.
"""

from __future__ import annotations

import json

from webhook.shared.refusals import Stale

DEFAULT_TOLERANCE_S = 600


class StaleNotification(Stale):
    """``notifyMs`` is further from our clock than the configured tolerance."""

    def __init__(self, skew_ms: int, tolerance_ms: int) -> None:
        self.skew_ms = skew_ms
        self.tolerance_ms = tolerance_ms
        super().__init__(f"notifyMs is {skew_ms} ms from now, tolerance is {tolerance_ms} ms")

    def log_fields(self) -> dict[str, object]:
        return {"skew_ms": self.skew_ms}


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


def loose_notify_ms(body: bytes) -> int | None:
    """``notifyMs`` of a signed body that is not a valid envelope, when it has one.

    Lets a replayed body that fails the envelope schema still be checked for freshness:
    only a body without any integer ``notifyMs`` escapes the window (it is de-duplicated).
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("notifyMs")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return None
