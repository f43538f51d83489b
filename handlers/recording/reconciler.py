"""The reconciler: NCS alone is not reliable, so running sessions are queried periodically
and a task that died silently gets the failure event NCS did not send.

Every ``reconciler.interval_s`` (rules file; 0 disables), each registry record with status
``running`` and a resourceId and sid is queried. :func:`judge` (pure) applies the decision
table of :mod:`handlers.recording.decide` (rows in ``docs/recording.md``):

- status 20 (exited abnormally): failed at once (S2);
- any other status: fine, and an earlier 404 is forgotten (S3);
- 404: waited for while it persists less than ``restart.failover_grace_s`` since the first
  404 this reconciler saw (S5: Agora moves a task within ~90 s, and the task's own
  ``session_exit`` may still come); then the channel user list decides: people other than
  our recorder uids in the channel -> failed (S8); the channel closed or holding only our
  recorders -> the task ended with its channel and its record is marked ``ended`` (S6,
  S7), never restarted. A 404 alone is never a failure;
- any other error, of ``query`` or of the channel user list: unknown, asked again next
  tick (S4, S9, S10).

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
from handlers.recording.decide import (
    ChannelAnswer,
    Decision,
    Evidence,
    QueryAnswer,
    Running,
    Unanswered,
    Vanished,
    decide_ending,
)
from handlers.recording.ending_evidence import channel_answer, query_answer
from handlers.recording.errors import RecordingApiError
from handlers.recording.session_registry import (
    ENDED,
    FINISHED_STATUSES,
    SessionRecord,
    utc_from_ms,
    valid_sessions,
)
from webhook.shared.clock import Clock, SystemClock
from webhook.shared.event_records import Record, event_record
from webhook.shared.events import (
    CLOUD_RECORDING_PRODUCT_ID,
    Notification,
    Payload,
    SessionExitDetails,
    parse_notification,
)

log = logging.getLogger(__name__)

SYNTHETIC_HEADER = "synthetic"
SYNTHETIC_SOURCE = "reconciler"
SESSION_EXIT = 11


# The reconciler's names for ``query``'s answers (the decision table's types).
Alive = Running
Missing = Vanished
QueryFailed = Unanswered
Observation = QueryAnswer


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Literal["ok", "wait", "ask_channel", "failed", "ended", "unknown"]
    reason: str
    missing_since_ms: int | None = None
    row: str = ""


_KIND: dict[Decision, Literal["ok", "wait", "ask_channel", "failed", "ended", "unknown"]] = {
    Decision.ALIVE: "ok", Decision.WAIT: "wait", Decision.ASK_CHANNEL: "ask_channel",
    Decision.RESTART: "failed", Decision.ENDED: "ended", Decision.UNKNOWN: "unknown",
}
_CANNOT_TELL = frozenset({"S4", "S9"})
"""Rows where Agora did not answer: the session is "unknown" this tick, asked again next."""


def judge(observation: Observation, now_ms: int, missing_since_ms: int | None,
          grace_s: float, channel: ChannelAnswer | None = None,
          recorder_uids: frozenset[str] = frozenset()) -> Verdict:
    """What one query (and, once a 404 outlived the grace, the channel user list) says
    about a running session: the decision table of :mod:`.decide` (pure). Kind
    ``ask_channel``: judge again with the channel user list's answer."""
    since = None
    wait_left_s = 0.0
    if isinstance(observation, Vanished):
        since = now_ms if missing_since_ms is None else missing_since_ms
        wait_left_s = grace_s - (now_ms - since) / 1000
    elif isinstance(observation, Unanswered):
        since = missing_since_ms
    ruling = decide_ending(Evidence(registry_status="running", query=observation,
                                    wait_left_s=wait_left_s, channel=channel,
                                    recorder_uids=recorder_uids))
    kind = "unknown" if ruling.row in _CANNOT_TELL else _KIND[ruling.decision]
    return Verdict(kind, f"{ruling.row}: {ruling.reason}", since, row=ruling.row)


def prunable(records: Iterable[SessionRecord], cutoff_ms: int) -> list[SessionRecord]:
    """Finished records last updated before ``cutoff_ms`` (pure)."""
    return [r for r in records
            if r.status in FINISHED_STATUSES and r.updated_at.timestamp() * 1000 < cutoff_ms]


def synthetic_notice_id(cname: str, sid: str) -> str:
    digest = hashlib.sha256(json.dumps([cname, sid]).encode()).hexdigest()[:32]
    return f"{SYNTHETIC_SOURCE}-{digest}"


def synthetic_failure(record: SessionRecord, reason: str, now_ms: int) -> bytes:
    """The body of the synthetic session_exit (exitStatus 1) for ``record``'s task, built
    through the NCS models so it is what the webhook would publish for such a callback."""
    assert record.sid is not None
    details = SessionExitDetails(msg_name="session_exit", exit_status=1,
                                 synthetic=True, reason=reason)
    notification = Notification(
        notice_id=synthetic_notice_id(record.cname, record.sid),
        product_id=CLOUD_RECORDING_PRODUCT_ID,
        event_type=SESSION_EXIT,
        notify_ms=now_ms,
        synthetic=True,
        payload=Payload(cname=record.cname, uid=record.uid, sid=record.sid, sequence=0,
                        send_ts=now_ms, service_type=0, details=details.model_dump()),
    )
    return notification.model_dump_json(by_alias=True, exclude_none=True).encode()


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
    ended: bool = False
    """The registry record was marked ``ended`` (the task ended with its channel)."""


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
        save: Callable[[SessionRecord], None] | None = None,
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
        self._save = save
        self._retain_ms = int(retain_finished_s * 1000)
        self.pruned: list[str] = []
        """The registry keys the last tick removed."""

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
        recorders: dict[str, set[str]] = {}
        for record in records.values():
            recorders.setdefault(record.cname, set()).update((record.uid, record.backup_uid))
        return [self._check(record, frozenset(recorders.get(record.cname, ())))
                for record in running]

    def _prune(self, records: Iterable[SessionRecord]) -> list[str]:
        if self._remove is None or self._retain_ms <= 0:
            return []
        cutoff_ms = self._clock.now_ms() - self._retain_ms
        pruned = []
        for record in prunable(records, cutoff_ms):
            self._remove(record.key)
            pruned.append(record.key)
            log.info("finished session removed from the registry", extra={
                "cname": record.cname, "sid": record.sid, "status": record.status})
        return pruned

    def _check(self, record: SessionRecord, recorder_uids: frozenset[str]) -> Report:
        assert record.sid is not None
        assert record.resource_id is not None
        task = (record.cname, record.sid)
        observation = self._observe(record.mode, record.resource_id, record.sid)
        now = self._clock.now_ms()
        since = self._missing_since.get(task)
        verdict = judge(observation, now, since, self._grace_s, recorder_uids=recorder_uids)
        if verdict.kind == "ask_channel":
            verdict = judge(observation, now, since, self._grace_s,
                            channel=channel_answer(self._api, record.cname),
                            recorder_uids=recorder_uids)
        if verdict.missing_since_ms is None:
            self._missing_since.pop(task, None)
        else:
            self._missing_since[task] = verdict.missing_since_ms
        context = {"cname": record.cname, "sid": record.sid}
        if verdict.kind == "unknown":
            log.warning("cannot check a running session: %s", verdict.reason, extra=context)
        if verdict.kind == "ended":
            return Report(record.cname, record.sid, verdict, ended=self._end(record, verdict))
        if verdict.kind != "failed" or task in self._reported:
            return Report(record.cname, record.sid, verdict)
        body = synthetic_failure(record, verdict.reason, now)
        self._publish(synthetic_record(self._topic, body, now))
        self._reported.add(task)
        log.warning("session died silently: %s; failure event published", verdict.reason,
                    extra=context)
        return Report(record.cname, record.sid, verdict, published=True)

    def _end(self, record: SessionRecord, verdict: Verdict) -> bool:
        """Mark a task that ended with its channel ``ended``: never restarted, no longer
        queried. Without ``save`` it is only reported (and queried again next tick)."""
        log.info("session ended with its channel: %s", verdict.reason,
                 extra={"cname": record.cname, "sid": record.sid})
        if self._save is None:
            return False
        ended = record.model_copy(update={
            "status": ENDED, "pending": None,
            "updated_at": utc_from_ms(self._clock.now_ms())})
        self._save(ended)
        return True

    def _observe(self, mode: Any, resource_id: str, sid: str) -> Observation:
        try:
            return query_answer(self._api, mode, resource_id, sid)
        except RecordingApiError as exc:  # refused: cannot tell this tick
            return QueryFailed(str(exc))

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
