"""Getting one record to the broker, or, with the spool on, onto the disk spool.

While anything waits in the spool, new records join it behind them rather than overtaking
them on the direct path: a channel's callbacks reach the topic in the order they were
acknowledged to NCS.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from webhook import metrics
from webhook.clock import Clock
from webhook.publisher import Publisher, PublishUnavailable
from webhook.records import Record
from webhook.spool import Spool

log = logging.getLogger(__name__)


class Delivered(enum.Enum):
    PUBLISHED = "published"
    SPOOLED = "spooled"


class SpoolUnavailable(Exception):
    """The spool could not make the record durable (disk error)."""


@dataclass
class Delivery:
    publisher: Publisher
    spool: Spool | None
    timeout_s: float
    clock: Clock

    def deliver(self, record: Record) -> Delivered:
        """Return once the record is durable; raise PublishUnavailable (spool off),
        SpoolFull or SpoolUnavailable otherwise."""
        if self.spool is not None and self.spool.has_pending():
            return self._to_spool(self.spool, record)
        try:
            self.publisher.publish(record, self.timeout_s)
        except PublishUnavailable as exc:
            if self.spool is None:
                raise
            log.warning("broker unavailable, spooling", extra={"error": str(exc)})
            return self._to_spool(self.spool, record)
        return Delivered.PUBLISHED

    def _to_spool(self, spool: Spool, record: Record) -> Delivered:
        try:
            spool.append(record, self.clock.now_ms())
        except OSError as exc:
            raise SpoolUnavailable(f"{type(exc).__name__}: {exc}") from None
        metrics.SPOOLED.inc()
        return Delivered.SPOOLED
