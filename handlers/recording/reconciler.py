"""The reconciler: NCS alone is not reliable, so running sessions are queried periodically
and a task that died silently gets the failure event NCS did not send.

Every ``reconciler.interval_s`` (rules file; 0 disables), each registry record with status
``running`` and a resourceId and sid is queried. :func:`judge` (pure) decides:

- status 20 (exited abnormally): failed at once;
- 404: failed once it has persisted ``restart.failover_grace_s`` since the first 404
  this reconciler saw (Agora moves a task within ~90 s and answers 404 meanwhile);
- any other status: fine (forgets an earlier 404);
- any other error: unknown, nothing changes.

A failure is published once per task to the events topic as a **synthetic NCS callback**,
so it flows through the restart action (and every other consumer) like a real one:

- value: ``{"noticeId": "reconciler-<hash of cname and sid>", "productId": 3,
  "eventType": 11, "notifyMs": <now>, "synthetic": true, "payload": {"cname", "uid",
  "sid", "sequence": 0, "sendts": <now>, "serviceType": 0, "details": {"msgName":
  "session_exit", "exitStatus": 1, "synthetic": true, "reason": "<why>"}}}``;
- key ``cname``; the webhook's headers (``noticeId``, ``productId``, ``eventType``,
  ``sid``, ``received-at``, ``schema-version``, ``verified-by: synthetic``) plus
  ``synthetic: reconciler``.

The noticeId is deterministic per task, so a reconciler restarted (or running twice)
reports the same failure under the same id; the restart action's per-task idempotency
makes it at most one restart either way.

**Pruning.** Every tick also removes (tombstones) the records of finished sessions
(``stopped``, ``ended``, ``failed``, ``gave_up``) not updated for
``reconciler.retain_finished_s`` (a week by default; 0 keeps them forever). Every process
that reads the registry holds it in memory, so without this the registry, and with it
their memory, would grow by one record per channel ever recorded. A record rewritten
between the tick's read and its tombstone (a channel started again at that very moment,
a week after its last session) would be removed too: ``recording start`` it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from handlers.recording.client import RecordingApi
from handlers.recording.errors import Advice, RecordingApiError
from handlers.recording.models import STATUS_EXITED_ABNORMALLY
from handlers.recording.registry import FINISHED_STATUSES, SessionRecord, valid_sessions
from webhook.clock import Clock, SystemClock
from webhook.events import CLOUD_RECORDING_PRODUCT_ID, parse_notification
from webhook.records import Record, event_record

log = logging.getLogger(__name__)

SYNTHETIC_HEADER = "synthetic"
SYNTHETIC_SOURCE = "reconciler"
SESSION_EXIT = 11


@dataclass(frozen=True, slots=True)
class Alive:
    """``query`` answered with this status."""

    status: int | None


@dataclass(frozen=True, slots=True)
class Missing:
    """``query`` answered 404."""


@dataclass(frozen=True, slots=True)
class QueryFailed:
    """``query`` failed otherwise (network, 5xx, expired resource...)."""

    error: str


Observation = Alive | Missing | QueryFailed


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Literal["ok", "wait", "failed", "unknown"]
    reason: str
    missing_since_ms: int | None = None


def judge(observation: Observation, now_ms: int, missing_since_ms: int | None,
          grace_s: float) -> Verdict:
    """What one query says about a running session (pure; see the module docs)."""
    if isinstance(observation, Alive):
        if observation.status == STATUS_EXITED_ABNORMALLY:
            return Verdict("failed", "query status 20 (exited abnormally)")
        return Verdict("ok", f"query status {observation.status}")
    if isinstance(observation, Missing):
        since = now_ms if missing_since_ms is None else missing_since_ms
        waited_s = (now_ms - since) / 1000
        if waited_s >= grace_s:
            return Verdict("failed", f"query answered 404 for {waited_s:.0f} s", since)
        return Verdict("wait", f"query answered 404 ({waited_s:.0f} s of {grace_s:g} s grace)",
                       since)
    return Verdict("unknown", observation.error, missing_since_ms)


def prunable(records: Iterable[SessionRecord], cutoff_ms: int) -> list[SessionRecord]:
    """Finished records last updated before ``cutoff_ms`` (pure)."""
    return [r for r in records
            if r.status in FINISHED_STATUSES and r.updated_at.timestamp() * 1000 < cutoff_ms]


def synthetic_notice_id(cname: str, sid: str) -> str:
    digest = hashlib.sha256(json.dumps([cname, sid]).encode()).hexdigest()[:32]
    return f"{SYNTHETIC_SOURCE}-{digest}"


def synthetic_failure(record: SessionRecord, reason: str, now_ms: int) -> bytes:
    """The body of the synthetic session_exit (exitStatus 1) for ``record``'s task."""
    assert record.sid is not None
    body = {
        "noticeId": synthetic_notice_id(record.cname, record.sid),
        "productId": CLOUD_RECORDING_PRODUCT_ID,
        "eventType": SESSION_EXIT,
        "notifyMs": now_ms,
        "synthetic": True,
        "payload": {
            "cname": record.cname, "uid": record.uid, "sid": record.sid, "sequence": 0,
            "sendts": now_ms, "serviceType": 0,
            "details": {"msgName": "session_exit", "exitStatus": 1, "synthetic": True,
                        "reason": reason},
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def synthetic_record(topic: str, body: bytes, now_ms: int) -> Record:
    """The events-topic record of a synthetic callback (webhook headers + ``synthetic``)."""
    record = event_record(topic, body, parse_notification(body), now_ms, "synthetic")
    return Record(topic=record.topic, key=record.key, value=record.value,
                  headers=(*record.headers, (SYNTHETIC_HEADER, SYNTHETIC_SOURCE.encode())))


@dataclass(frozen=True, slots=True)
class Report:
    """What one tick concluded about one session."""

    cname: str
    sid: str
    verdict: Verdict
    published: bool = False


class Reconciler:
    """Queries running sessions, publishes synthetic failures and prunes finished ones.

    ``snapshot`` returns the registry's current values (cname -> JSON object);
    ``publish`` durably writes one record to the events topic (raises on failure);
    ``remove`` durably tombstones a cname's registry record (``None``: never prune).
    Not thread-safe: one thread calls :meth:`tick` (or :meth:`run`).
    """

    def __init__(
        self,
        api: RecordingApi,
        *,
        snapshot: Callable[[], Mapping[str, Mapping[str, Any]]],
        publish: Callable[[Record], None],
        events_topic: str,
        grace_s: float,
        clock: Clock | None = None,
        remove: Callable[[str], None] | None = None,
        retain_finished_s: float = 0,
    ) -> None:
        self._api = api
        self._snapshot = snapshot
        self._publish = publish
        self._topic = events_topic
        self._grace_s = grace_s
        self._clock = clock or SystemClock()
        self._missing_since: dict[tuple[str, str], int] = {}
        self._reported: set[tuple[str, str]] = set()
        self._remove = remove
        self._retain_ms = int(retain_finished_s * 1000)
        self.pruned: list[str] = []
        """The cnames the last tick removed."""

    def tick(self) -> list[Report]:
        """Prune finished sessions past the retention (:attr:`pruned`), then query every
        running session once; returns one report per session queried."""
        records, invalid = valid_sessions(self._snapshot())
        self.pruned = self._prune(records.values())
        for cname, error in invalid.items():
            log.warning("skipping a malformed session record: %s", error,
                        extra={"cname": cname})
        running = [r for r in records.values()
                   if r.status == "running" and r.resource_id and r.sid]
        live = {(r.cname, r.sid) for r in running if r.sid}
        self._forget_except(live)
        return [self._check(record) for record in running]

    def _prune(self, records: Iterable[SessionRecord]) -> list[str]:
        if self._remove is None or self._retain_ms <= 0:
            return []
        cutoff_ms = self._clock.now_ms() - self._retain_ms
        pruned = []
        for record in prunable(records, cutoff_ms):
            self._remove(record.cname)
            pruned.append(record.cname)
            log.info("finished session removed from the registry", extra={
                "cname": record.cname, "sid": record.sid, "status": record.status})
        return pruned

    def _check(self, record: SessionRecord) -> Report:
        assert record.sid is not None
        assert record.resource_id is not None
        task = (record.cname, record.sid)
        observation = self._observe(record.mode, record.resource_id, record.sid)
        now = self._clock.now_ms()
        verdict = judge(observation, now, self._missing_since.get(task), self._grace_s)
        if verdict.missing_since_ms is None:
            self._missing_since.pop(task, None)
        else:
            self._missing_since[task] = verdict.missing_since_ms
        context = {"cname": record.cname, "sid": record.sid}
        if verdict.kind == "unknown":
            log.warning("cannot check a running session: %s", verdict.reason, extra=context)
        if verdict.kind != "failed" or task in self._reported:
            return Report(record.cname, record.sid, verdict)
        body = synthetic_failure(record, verdict.reason, now)
        self._publish(synthetic_record(self._topic, body, now))
        self._reported.add(task)
        log.warning("session died silently: %s; failure event published", verdict.reason,
                    extra=context)
        return Report(record.cname, record.sid, verdict, published=True)

    def _observe(self, mode: Any, resource_id: str, sid: str) -> Observation:
        try:
            answer = self._api.query(mode, resource_id, sid)
        except RecordingApiError as exc:
            if exc.advice is Advice.NOT_FOUND:
                return Missing()
            return QueryFailed(str(exc))
        return Alive(answer.status)

    def _forget_except(self, live: Iterable[tuple[str, str]]) -> None:
        keep = set(live)
        self._missing_since = {k: v for k, v in self._missing_since.items() if k in keep}
        self._reported &= keep

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Tick every ``interval_s`` until ``stop`` is set. A failing tick is logged and
        the loop goes on (the next tick retries)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("reconciler tick failed")
            stop.wait(interval_s)


class EventPublisher:
    """Writes records to the events topic with an ``acks=all`` producer."""

    def __init__(self, client_config: Mapping[str, Any], timeout_s: float = 10.0) -> None:
        from handlers.runtime.clients import durable_producer

        self._timeout_s = timeout_s
        self._producer = durable_producer(client_config, "agora-events.reconciler")

    def __call__(self, record: Record) -> None:
        self._producer.send(record.topic, key=record.key, value=record.value,
                            headers=list(record.headers)).get(timeout=self._timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)
