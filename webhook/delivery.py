"""Getting one record to the broker, or, with the spool on, onto the disk spool.

While anything waits in the spool, new records join it behind them rather than overtaking
them on the direct path: a channel's callbacks reach the topic in the order they were
acknowledged to NCS. A record the topic can never take is set aside as a pointer on the
quarantine topic (webhook.shared.event_records.pointer_record) and reported as rejected.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from webhook.metrics import METRICS
from webhook.publisher import Publisher, PublishRejected, PublishUnavailable
from webhook.shared.clock import Clock
from webhook.shared.event_records import Record, pointer_record
from webhook.shared.refusals import RetryLater
from webhook.spool import Spool

log = logging.getLogger(__name__)


class Delivered(enum.Enum):
    PUBLISHED = "published"
    SPOOLED = "spooled"


@dataclass(frozen=True)
class Rejected:
    """The record can never be published; a pointer to it is on the quarantine topic."""

    reason: str
    size_related: bool


class SpoolUnavailable(RetryLater):
    """The spool could not make the record durable (disk error)."""

    error, log_message = "spool_unavailable", "spool write failed, asking NCS to retry"
    public_detail = "the broker and the spool are unavailable"


@dataclass
class Delivery:
    publisher: Publisher
    spool: Spool | None
    timeout_s: float
    clock: Clock
    quarantine_topic: str = "agora.ncs.quarantine"

    def deliver(self, record: Record) -> Delivered | Rejected:
        """Return once the record (or, if it can never be published, its pointer) is
        durable; raise PublishUnavailable (spool off), SpoolFull or SpoolUnavailable
        otherwise."""
        if self.spool is not None and self.spool.has_pending():
            return self._to_spool(self.spool, record)
        try:
            self.publisher.publish(record, self.timeout_s)
        except PublishRejected as exc:
            return self._set_aside(record, exc)
        except PublishUnavailable as exc:
            if self.spool is None:
                raise
            log.warning("broker unavailable, spooling", extra={"error": str(exc)})
            return self._to_spool(self.spool, record)
        return Delivered.PUBLISHED

    def _set_aside(self, record: Record, exc: PublishRejected) -> Rejected:
        log.error(
            "record can never be published; quarantining a pointer",
            extra={
                "topic": record.topic,
                "bytes": len(record.value),
                "error": exc.reason,
            },
        )
        pointer = pointer_record(self.quarantine_topic, record, exc.reason, self.clock.now_ms())
        delivered = self.deliver(pointer)  # small: cannot be rejected for its size
        if isinstance(delivered, Rejected):
            raise PublishUnavailable(f"the quarantine topic refused the pointer: {exc.reason}")
        METRICS.rejected.inc()
        return Rejected(exc.reason, exc.too_large)

    def _to_spool(self, spool: Spool, record: Record) -> Delivered:
        try:
            spool.append(record, self.clock.now_ms())
        except OSError as exc:
            raise SpoolUnavailable(f"{type(exc).__name__}: {exc}") from None
        METRICS.spooled.inc()
        return Delivered.SPOOLED
