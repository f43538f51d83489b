"""Bounded memory of recently published callbacks, so a replayed body is not published again.

The key is the ``noticeId`` together with a digest of what the callback says (event type
and payload, not ``notifyMs``): a genuine NCS retry of an accepted callback has the same key
and is answered 200 without publishing a second copy, which is exactly what NCS needs; two
different notifications that happen to share a ``noticeId`` are both kept.

Scope, honestly: the memory lives in one worker process. With W gunicorn workers and R
webhook replicas a body replayed inside the freshness window can be published at most W x R
times (once per process it lands in); downstream handlers de-duplicate by ``noticeId``.
Entries live for the freshness window plus a margin, so a body old enough to be forgotten is
refused as stale instead. When more distinct callbacks arrive within that time than the
capacity holds, the oldest are forgotten early (counted in ``agora_webhook_dedup_evicted``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

DEFAULT_CAPACITY = 100_000
# Longer than the freshness window: a body stays remembered until it is stale anyway.
MARGIN_MS = 60_000
# One encoder for every key: json.dumps would build a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def notice_key(notice_id: str, event_type: int, payload: Any) -> str:
    """The key of a parsed envelope (stable across NCS retries, which refresh notifyMs)."""
    digest = hashlib.sha256(_CANONICAL.encode([event_type, payload]).encode()).hexdigest()[:32]
    return f"n:{notice_id}:{digest}"


def body_key(body: bytes) -> str:
    """The key of a body that is not an envelope: its exact bytes."""
    return "b:" + hashlib.sha256(body).hexdigest()[:32]


class RecentNotices:
    """Thread-safe set of keys with a time to live and a capacity.

    :meth:`claim` is the check and the insert in one step, so two threads handling the same
    body at once cannot both publish it; :meth:`release` undoes a claim whose publish failed,
    so NCS's retry of that callback is published.
    """

    def __init__(self, capacity: int, ttl_ms: int) -> None:
        self.capacity = capacity
        self.ttl_ms = ttl_ms
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def claim(self, key: str, now_ms: int) -> bool:
        """True if *key* was not seen within the time to live (and remember it now)."""
        if self.capacity <= 0:
            return True
        with self._lock:
            self._expire(now_ms)
            if key in self._seen:
                return False
            self._seen[key] = now_ms
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
                self.evicted += 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now_ms: int) -> None:
        # Insertion order is arrival order, so expired keys are all at the front.
        horizon = now_ms - self.ttl_ms
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if seen_at > horizon:
                break
            del self._seen[key]
