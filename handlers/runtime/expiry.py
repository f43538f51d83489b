"""State expiry: keeps the action's state (and its tables' memory) bounded.

Once after start and every ``every_s``, read the state topic to its end, forget
tombstones read past, and return tombstones for the action's entries older than the TTL,
to be published in the next transaction (see :mod:`handlers.runtime.state`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from handlers.runtime.kafka_record import KafkaRecord
from handlers.runtime.state import CatchUpTimeout, StateStore, Table

log = logging.getLogger(__name__)

MAX_EXPIRED_PER_TURN = 5000
"""State tombstones staged in one transaction; more wait for the next turn (a long
downtime can leave many entries to expire at start)."""

EXPIRY_CATCH_UP_S = 10.0
"""How long expiry waits to read the state topic to its end before giving up this round."""


class StateExpiry:
    """When due, the tombstones to stage. Called on the loop thread at the start of a turn,
    before any record stages updates, so a key an action writes in the same transaction
    gets its new value at a higher offset than the tombstone. An aborted transaction drops
    the tombstones; the entries are still held and expire again next time."""

    def __init__(
        self,
        state: StateStore,
        tables: Sequence[Table],
        *,
        handler: str,
        ttl_s: float,
        every_s: float,
        catch_up_s: float,
        monotonic: Callable[[], float],
        now_ms: Callable[[], int],
    ) -> None:
        self._state = state
        self._tables = tables
        self._handler = handler
        self._ttl_ms = int(ttl_s * 1000)
        self._every_s = every_s
        self._catch_up_s = min(EXPIRY_CATCH_UP_S, catch_up_s)
        self._monotonic = monotonic
        self._now_ms = now_ms
        self._next = float("-inf")  # the first turn expires (state loaded)

    def due_records(self) -> list[KafkaRecord]:
        now = self._monotonic()
        if now < self._next:
            return []
        self._next = now + self._every_s
        try:
            # Fresh view first: another instance may have rewritten an old key lately.
            self._state.catch_up(self._catch_up_s)
        except CatchUpTimeout as exc:
            log.warning("state expiry skipped: %s", exc, extra={"handler": self._handler})
            return []
        forgotten = self._state.forget_tombstones()
        for table in self._tables:
            forgotten += table.forget_tombstones()
        expired = self._state.expire(self._now_ms(), self._ttl_ms, MAX_EXPIRED_PER_TURN)
        if len(expired) == MAX_EXPIRED_PER_TURN:
            self._next = now  # more to expire: go on next turn
        log.log(
            logging.INFO if expired or forgotten else logging.DEBUG,
            "state expiry: %d entries expired, %d tombstones forgotten, %d live",
            len(expired), forgotten, self._state.live_keys(), extra={"handler": self._handler},
        )
        return expired
