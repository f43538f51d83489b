"""Publishes spooled records, oldest first, and releases them only once acknowledged.

Every gunicorn worker runs one drainer thread; they compete for the spool's drain lock, so
exactly one publishes at a time, and another takes over if that worker dies. A restarted
webhook drains whatever the previous one left.

Frames are published only to the topics the webhook itself writes (events and quarantine).
A frame that is unreadable or names another topic is moved to ``spool.rejected`` with an
error log and the ``agora_webhook_spool_rejected`` counter (alert on it). A record the broker
refuses for good (too large, invalid) is set aside as a pointer on the quarantine topic.
Neither blocks the records behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection

from webhook.metrics import METRICS
from webhook.publisher import Publisher, PublishRejected, PublishUnavailable
from webhook.shared.event_records import pointer_record
from webhook.spool import Spool, SpooledRecord

log = logging.getLogger(__name__)

BATCH_RECORDS = 500
IDLE_WAIT_S = 0.25
MAX_BACKOFF_S = 5.0


class SpoolDrainer:
    def __init__(
        self,
        spool: Spool,
        publisher: Publisher,
        publish_timeout_s: float,
        allowed_topics: Collection[str],
        quarantine_topic: str = "agora.ncs.quarantine",
    ) -> None:
        self._quarantine_topic = quarantine_topic
        self._spool = spool
        self._allowed = frozenset(allowed_topics)
        self._publisher = publisher
        self._timeout_s = publish_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spool-drainer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the batch in flight (so its offset is committed), then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._spool.release_drain()

    def drain_once(self) -> tuple[int, int]:
        """Publish one batch; return (records read, records the broker acknowledged)."""
        batch = self._spool.read_pending(BATCH_RECORDS)
        if not batch:
            return 0, 0
        problem = self._problem(batch[0])
        if problem is not None:
            self._reject(batch[0], problem)
            return 1, 1
        # Publish up to (not including) the next frame that must be moved aside.
        records = []
        for spooled in batch:
            if spooled.record is None or self._problem(spooled) is not None:
                break
            records.append(spooled.record)
        batch = batch[: len(records)]
        try:
            acknowledged = self._publisher.publish_many(records, self._timeout_s)
        except PublishRejected as exc:
            acknowledged = exc.index + self._set_aside(batch, exc)
        if acknowledged:
            self._spool.commit(batch[acknowledged - 1].end)
            METRICS.spool_drained.inc(acknowledged)
            log.info("spool drained", extra={"records": acknowledged})
        return len(batch), acknowledged

    def _problem(self, spooled: SpooledRecord) -> str | None:
        if spooled.record is None:
            return spooled.problem or "unreadable spool frame"
        if spooled.record.topic not in self._allowed:
            # Our own writer only spools to these; anything else was planted or corrupted.
            return f"topic {spooled.record.topic!r} is not one the webhook writes"
        return None

    def _reject(self, spooled: SpooledRecord, reason: str) -> None:
        self._spool.reject(spooled, reason)
        METRICS.spool_rejected.inc()
        log.error(
            "spool frame can never be published; moved aside",
            extra={"reason": reason, "file": str(self._spool.directory / "spool.rejected")},
        )

    def _set_aside(self, batch: list[SpooledRecord], exc: PublishRejected) -> int:
        """Commit what came before the rejected record and publish a pointer to it. Once the
        pointer is acknowledged, the record and those the broker took right after it count
        as moved; return how many that is (0 if the pointer could not be published)."""
        if exc.index:
            self._spool.commit(batch[exc.index - 1].end)
        rejected = batch[exc.index]
        assert rejected.record is not None  # only readable frames are published
        pointer = pointer_record(
            self._quarantine_topic, rejected.record, exc.reason, int(time.time() * 1000)
        )
        try:
            self._publisher.publish(pointer, self._timeout_s)
        except (PublishUnavailable, PublishRejected):
            return 0
        log.error(
            "spooled record can never be published; quarantined a pointer",
            extra={"topic": rejected.record.topic, "error": exc.reason},
        )
        METRICS.rejected.inc()
        return 1 + exc.then_acknowledged

    def _run(self) -> None:
        backoff = IDLE_WAIT_S
        while not self._stop.is_set():
            if not self._spool.try_acquire_drain():
                self._stop.wait(IDLE_WAIT_S * 4)
                continue
            try:
                read, moved = self.drain_once()
            except Exception:  # a bad frame or disk error must not kill the thread silently
                log.exception("spool drainer failed; retrying")
                read, moved = 1, 0
            if moved:
                backoff = IDLE_WAIT_S
                continue
            if read:
                # The broker refused: back off, doubling up to a bound.
                log.warning("spool drain waiting for the broker", extra={"retry_in_s": backoff})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            else:
                self._stop.wait(IDLE_WAIT_S)


_RUNNING: list[SpoolDrainer] = []


def register_drainer(drainer: SpoolDrainer) -> None:
    _RUNNING.append(drainer)


def stop_drainers() -> None:
    """Called as a worker exits, so an in-flight batch is committed, not re-sent later."""
    while _RUNNING:
        _RUNNING.pop().stop()
