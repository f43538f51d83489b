"""The restart action: when a recording dies, start it again, once.

``decide`` (pure) turns an event into a command with :mod:`handlers.recording.signals`,
the channel's registry record and the action's state; ``run`` confirms with ``query`` when
the signal needs it, then ``acquire`` + ``start`` with the same mode and clientRequest as
the original (registry record, else the first profile matching the cname), the other of
the session's two uids and a fresh RTC token, following Agora's retry ladder:

==================================== ===============================================
answer                               what ``run`` does
==================================== ===============================================
5xx, 429, 62, 65, 406, no answer     ``TransientError``: the runtime retries the same
(RETRY_SAME)                         resourceId after the longest of 3/6/9 s (1st/2nd/
                                     3rd failed start on it), ``Retry-After`` and its
                                     own back-off; after 3 failed starts, or when the
                                     resourceId is older than 4 minutes, a new one is
                                     acquired (same uid). On acquire: retried after
                                     the runtime's back-off (or ``Retry-After``)
433, 1001, 432, 502 (REACQUIRE)      on start: acquire again at once (same uid), up
                                     to 3 resourceIds per attempt, then retried (3 s
                                     at least); on acquire: retried as above
7 on start (ALREADY_RUNNING)         our start went through earlier: record its sid
53 (NEW_UID)                         see "53" below
other 4xx (2, 8, 109, 110, 1003,     ``ActionFailed`` with an alerting outcome. The
1013, 401...), 404, bad answers      token is minted for each attempt, so 109/110 mean
(STOP, NOT_FOUND, GONE)              a wrong certificate, clock or static token
==================================== ===============================================

The runtime's retry policy bounds the ladder: ``AGORA_HANDLERS_MAX_ATTEMPTS`` (6) attempts
and ``AGORA_HANDLERS_RETRY_BUDGET_S`` (120 s) per record, back-off 1 s doubling per failed
attempt, +-20 % jitter, the action's delay being a floor. With the defaults, starts that
keep failing are retried after about 3, 6, 9, 8 and 16 s (a second resourceId from the
4th attempt) and the event is then dead-lettered: that is not a give-up. The registry
keeps the ``restarting`` note, and ``agora-events dlq replay`` resumes the same attempt
(same uid, the noted resourceIds).

**Exactly one restart per failure.** The failure identity is (cname, failed sid), the
state key ``failure/["<cname>","<sid>"]``. It is written together with the new registry
record, the outcome and the consumed offset in one Kafka transaction (the runtime's
contract), so:

- *Duplicates and redundant notices* of a handled failure find the key and ``decide``
  returns ``None``. Those handled in the same batch see it too: the runtime handles one
  cname's records in order and shows staged state to later ``decide`` calls.
- *Reordering*: an event for a task the registry no longer tracks (the old sid after a
  restart) is irrelevant. A failure of the new task is a new identity, handled the same
  way.
- *The uid is deterministic*: the failed session's ``backup_uid`` (unless that is the
  uid in the failure event). Agora runs at most one task per cname+uid, so two attempts
  at the same restart can never both start a recording: the second gets 53.
- *Crash between acquire and start*: the runtime writes state only when it commits, so
  the attempt in flight lives in memory (for the runtime's retries) and in the registry:
  ``start`` is only sent once the attempt (failed sid, uid, resourceId, acquisition
  time, earlier resourceIds) is written durably to the registry record (status
  ``restarting``, field ``pending``). After a crash nothing else was committed, so the
  event is handled again and ``run`` resumes that attempt: it re-sends ``start`` on the
  same resourceId (if younger than 4 minutes; a resourceId that was started answers 7
  with its sid) or acquires a new one for the same uid; a 53 then means an earlier start
  went through, found by re-sending ``start`` on the earlier resourceIds (7 names the
  sid) and confirmed with ``query``. A crash before the write sent no start: the
  acquired resourceId expires unused. The committed state entry keeps the final attempt
  (uid, resourceId, acquisition time) next to the new sid.
- *Rebalance*: the new owner reads the state first. If the old owner is still running
  the same restart, both use the same uid: the second either resumes from the first's
  ``pending`` note (a start on that resourceId answers 7 with its sid) or gets 53 and
  looks for the task through the note, retrying for a while since the note may not have
  reached it yet. If its own note overwrote the other's, it cannot name the task and
  fails with an alert: never a second recording. The old owner's transaction is
  rejected (offsets are committed with the consumer's group metadata), so one registry
  update and one outcome survive.
- *Bounded*: at most ``restart.max_restarts`` per channel per ``restart.window_s``
  (restart times kept in the state key ``channel/["<cname>"]``); beyond that the failure
  is marked ``gave_up`` with an alerting outcome and the registry status ``gave_up``.
  Every give-up (this one, and each ``failed`` outcome) counts in
  ``agora_restart_gave_up_total`` by reason (:mod:`handlers.recording.metrics`).

"53" in detail: Agora's generic advice is "use another uid", but our uid is deterministic
per failure, so 53 means our own earlier start runs. ``run`` looks for it as above and
records it. When none of our resourceIds is that task after a few tries (the registry
note of a concurrent attempt was overwritten, or another application uses the uid), the
restart fails with an alert instead of switching uids: a second uid could record the
channel twice, which is the one thing this action must never do.

**Normal ends.** A ``session_exit`` with ``exitStatus`` 0 for the task the registry
tracks as ``running`` marks the record ``ended`` (no outcome): nothing runs under that
sid any more, so the reconciler stops querying it. Without it, the 404 that ``query``
answers for every finished task would look like a silent death and restart recordings
that ended on purpose.

Outcomes on ``agora.actions`` (key cname, headers ``noticeId``, ``sid``, ``outcome``,
``schema-version``): ``{"handler": "restart", "action": "restart", "outcome":
"restarted" | "gave_up" | "not_needed" | "failed", "alert": bool, "cname", "sid" (the
failed task), "new_sid", "uid", "reason", "noticeId", "eventType", "synthetic", "at",
"error"}``; ``alert`` is true for ``gave_up`` and ``failed``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from pydantic import SecretStr

from handlers.base import (
    ActionFailed,
    Effects,
    InvalidEvent,
    Output,
    Received,
    StateView,
    TransientError,
)
from handlers.config import RecordingRules, RestartRules
from handlers.recording.client import RecordingApi
from handlers.recording.errors import Advice, RecordingApiError
from handlers.recording.metrics import GaveUpReason, RestartMetrics
from handlers.recording.models import RUNNING_STATUSES, STATUS_EXITED_ABNORMALLY
from handlers.recording.registry import (
    ENDED,
    MAX_HISTORY,
    MissingReference,
    PendingRestart,
    RestartEntry,
    SessionRecord,
    SessionRecordError,
    SessionStore,
    lookup,
    parse_session,
    prepare_requests,
    utc_from_ms,
)
from handlers.recording.signals import Classification, Signal, classify
from handlers.recording.tokens import MAX_PRIVILEGE_S, TokenError, build_recording_token
from handlers.recording.validation import RequestInvalid
from handlers.reports import report_output
from webhook.clock import Clock, SystemClock
from webhook.events import EventError, Notification
from webhook.settings import SCHEMA_VERSION, TopicNames

if TYPE_CHECKING:
    from handlers.registry import ActionContext

log = logging.getLogger(__name__)

ACTION_NAME = "restart"
FAILURE_PREFIX = "failure/"
CHANNEL_PREFIX = "channel/"
FAILOVER_PREFIX = "failover/"

REACQUIRE_AFTER_S = 240.0
"""A resourceId lives 5 minutes; older than this, a retried start acquires a new one."""
START_FAILURES_BEFORE_REACQUIRE = 3
START_BACKOFF_S = (3.0, 6.0, 9.0)
"""Agora's back-off between retries of the same start: the least delay asked of the
runtime after the 1st, 2nd and 3rd failed start on one resourceId (its own back-off may
be longer)."""
MAX_ACQUIRES_PER_RUN = 3
CONFLICT_LOOKUPS = 3
"""Tries at finding our own task after a 53 before concluding the uid is someone else's."""
CONFLICT_RETRY_S = 5.0
TOKEN_VALID_S = MAX_PRIVILEGE_S
_LEDGER_SIZE = 10_000

Outcome = Literal["restarted", "gave_up", "not_needed", "failed"]


def failure_key(cname: str, sid: str) -> str:
    return FAILURE_PREFIX + json.dumps([cname, sid], separators=(",", ":"))


def channel_key(cname: str) -> str:
    return CHANNEL_PREFIX + json.dumps([cname], separators=(",", ":"))


def failover_key(cname: str, sid: str) -> str:
    return FAILOVER_PREFIX + json.dumps([cname, sid], separators=(",", ":"))


# ------------------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed task and the event that said so."""

    cname: str
    sid: str
    uid: str | None
    notice_id: str
    event_type: int
    event_ms: int
    reason: str
    synthetic: bool = False

    @property
    def key(self) -> str:
        return failure_key(self.cname, self.sid)


@dataclass(frozen=True, slots=True)
class RestartCommand:
    """Restart ``session`` (registry record, or built from a profile) with ``next_uid``.
    ``confirm``: ask ``query`` first; a 404 before ``grace_until_ms`` is "not yet
    failed". ``recent_restarts_ms``: the channel's restarts inside the window."""

    failure: Failure
    session: SessionRecord
    next_uid: str
    confirm: bool
    grace_until_ms: int
    recent_restarts_ms: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class GiveUpCommand:
    """The channel restarted ``max_restarts`` times inside the window already."""

    failure: Failure
    session: SessionRecord
    recent_restarts_ms: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FailoverCommand:
    """Remember that Agora started moving ``sid`` (starts the failover grace)."""

    cname: str
    sid: str
    at_ms: int
    notice_id: str


@dataclass(frozen=True, slots=True)
class EndedCommand:
    """The registered task ``sid`` ended normally: mark its record ``ended``."""

    cname: str
    sid: str


RestartActionCommand = RestartCommand | GiveUpCommand | FailoverCommand | EndedCommand


@dataclass
class _Attempt:
    """A restart in progress (in memory across retries; durable as ``pending``)."""

    uid: str
    resource_id: str | None = None
    acquired_at_ms: int | None = None
    previous: list[str] = field(default_factory=list)
    start_failures: int = 0
    lookups: int = 0
    journaled: bool = False
    """The registry holds this resourceId as ``pending``: start may be sent."""


@dataclass(frozen=True, slots=True)
class _Found:
    resource_id: str
    sid: str


class _Conflict(Exception):
    """Agora answered 53 (a task with this cname and uid exists)."""


# -------------------------------------------------------------------------------- action


class RestartAction:
    """See the module documentation. ``sessions`` reads the registry (live) and writes
    in-flight restarts durably; ``profiles`` must keep ``${NAME}`` references as written
    (``registry.raw_rules``); ``env`` resolves them when a request is sent."""

    name = ACTION_NAME

    def __init__(
        self,
        api: RecordingApi,
        *,
        sessions: SessionStore,
        profiles: RecordingRules,
        rules: RestartRules,
        topics: TopicNames,
        app_id: str,
        app_certificate: SecretStr | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        reacquire_after_s: float = REACQUIRE_AFTER_S,
        token_valid_s: int = TOKEN_VALID_S,
        metrics: RestartMetrics | None = None,
    ) -> None:
        self._api = api
        self._sessions = sessions
        self._profiles = profiles
        self._rules = rules
        self._topics = topics
        self._app_id = app_id
        self._certificate = app_certificate
        self._clock = clock or SystemClock()
        self._env = os.environ if env is None else env
        self._reacquire_after_ms = int(reacquire_after_s * 1000)
        self._token_valid_s = token_valid_s
        self._metrics = metrics or RestartMetrics()
        self._ledger: OrderedDict[str, _Attempt] = OrderedDict()

    @property
    def metrics(self) -> RestartMetrics:
        return self._metrics

    # --------------------------------------------------------------------------- decide

    def decide(self, event: Received, state: StateView) -> RestartActionCommand | None:
        notification = event.notification
        cname, sid = notification.payload.cname, notification.payload.sid
        record = lookup(self._sessions, cname) if cname else None
        try:
            verdict = classify(notification, record)
        except EventError as exc:
            raise InvalidEvent(str(exc)) from None
        context = {"cname": cname, "sid": sid, "noticeId": notification.notice_id,
                   "eventType": notification.event_type}
        if verdict.signal is Signal.IRRELEVANT or cname is None or sid is None:
            return None
        if verdict.signal is Signal.BENIGN:
            if verdict.failover and state.get(failover_key(cname, sid)) is None:
                return FailoverCommand(cname, sid, _event_ms(notification),
                                       notification.notice_id)
            if verdict.ended and record is not None and record.status == "running":
                return EndedCommand(cname, sid)
            log.debug("not a failure: %s", verdict.reason, extra=context)
            return None
        failure = _failure(notification, cname, sid, verdict)
        if state.get(failure.key) is not None:
            log.info("failure already handled", extra=context)
            return None
        session = record or self._from_profile(failure)
        if session is None:
            log.warning("failed recording not restarted: no session record and no profile "
                        "matches the channel", extra=context)
            return None
        resuming = session.pending is not None and session.pending.failed_sid == sid
        confirm = verdict.signal is Signal.NEEDS_CONFIRMATION
        if confirm and not resuming and session.resource_id is None:
            log.warning("cannot confirm %s: the session has no registered resourceId; "
                        "waiting for its session_exit", verdict.reason, extra=context)
            return None
        recent = _recent(state.get(channel_key(cname)), failure.event_ms,
                         self._rules.window_s * 1000)
        if len(recent) >= self._rules.max_restarts and not resuming:
            return GiveUpCommand(failure, session, recent)
        failover = state.get(failover_key(cname, sid)) or {}
        grace_from = max(failure.event_ms, int(failover.get("at_ms", 0)))
        next_uid = session.next_uid if session.next_uid != failure.uid else session.uid
        return RestartCommand(
            failure=failure, session=session, next_uid=next_uid, confirm=confirm,
            grace_until_ms=grace_from + self._rules.failover_grace_s * 1000,
            recent_restarts_ms=recent,
        )

    def _from_profile(self, failure: Failure) -> SessionRecord | None:
        profile = self._profiles.profile_for(failure.cname)
        if profile is None:
            return None
        uid, backup = profile.uid, profile.backup_uid
        if failure.uid == backup:
            uid, backup = backup, uid
        try:
            return SessionRecord(
                cname=failure.cname, mode=profile.mode, profile=profile.name, uid=uid,
                backup_uid=backup, sid=failure.sid, status="running",
                client_request=profile.client_request,
                acquire_client_request=profile.acquire_client_request,
                updated_at=utc_from_ms(failure.event_ms),
            )
        except ValueError as exc:
            log.error("profile %r cannot describe a session: %s", profile.name, exc,
                      extra={"cname": failure.cname})
            return None

    # ------------------------------------------------------------------------------ run

    def run(self, command: RestartActionCommand) -> Effects:
        if isinstance(command, FailoverCommand):
            return Effects(state={failover_key(command.cname, command.sid): {
                "at_ms": command.at_ms, "noticeId": command.notice_id}})
        if isinstance(command, GiveUpCommand):
            return self._gave_up(command)
        if isinstance(command, EndedCommand):
            return self._ended(command)
        return self._restart(command)

    def _ended(self, cmd: EndedCommand) -> Effects:
        current = lookup(self._sessions, cmd.cname)
        if current is None or current.sid != cmd.sid or current.status != "running":
            return Effects()  # restarted, stopped or rewritten meanwhile: not ours to end
        log.info("recording ended normally", extra={"cname": cmd.cname, "sid": cmd.sid})
        record = _updated(current, status=ENDED, pending=None,
                          updated_at=utc_from_ms(self._clock.now_ms()))
        return Effects(outputs=(record.output(self._topics.sessions),))

    def _restart(self, cmd: RestartCommand) -> Effects:
        failure = cmd.failure
        current = self._current(cmd)
        if current is not None and current.sid not in (None, failure.sid):
            return self._not_needed(cmd, f"the registry now tracks sid {current.sid}",
                                    mark="superseded")
        if current is not None and current.status in ("stopping", "stopped"):
            return self._not_needed(cmd, f"stopped by us (status {current.status})",
                                    mark="stopped")
        attempt = self._ledger.get(failure.key) or self._resumed(cmd, current)
        if attempt is None:
            if cmd.confirm:
                alive = self._confirm(cmd)
                if alive is not None:
                    return alive
            attempt = _Attempt(uid=cmd.next_uid)
        self._remember(failure.key, attempt)
        try:
            effects = self._drive(cmd, attempt)
        except TransientError:
            raise
        except BaseException:
            self._ledger.pop(failure.key, None)
            raise
        self._ledger.pop(failure.key, None)
        return effects

    def _current(self, cmd: RestartCommand) -> SessionRecord | None:
        return lookup(self._sessions, cmd.failure.cname)

    def _resumed(self, cmd: RestartCommand, current: SessionRecord | None) -> _Attempt | None:
        """The attempt a crashed or concurrent run left in the registry, if any."""
        pending = current.pending if current is not None else None
        if pending is None or pending.failed_sid != cmd.failure.sid:
            return None
        log.info("resuming a restart in flight", extra={
            "cname": cmd.failure.cname, "sid": cmd.failure.sid, "uid": pending.uid})
        return _Attempt(
            uid=pending.uid, resource_id=pending.resource_id,
            acquired_at_ms=pending.acquired_at_ms,
            previous=[*pending.previous_resource_ids], journaled=True,
        )

    def _remember(self, key: str, attempt: _Attempt) -> None:
        self._ledger[key] = attempt
        self._ledger.move_to_end(key)
        while len(self._ledger) > _LEDGER_SIZE:
            self._ledger.popitem(last=False)

    # ------------------------------------------------------------------- confirmation

    def _confirm(self, cmd: RestartCommand) -> Effects | None:
        """``None`` when the task is dead; effects of a ``not_needed`` outcome when alive.
        Raises ``TransientError`` for a 404 inside the failover grace."""
        session, failure = cmd.session, cmd.failure
        if session.resource_id is None:  # decide only lets resumed restarts through
            return None
        try:
            answer = self._api.query(session.mode, session.resource_id, failure.sid)
        except RecordingApiError as exc:
            if exc.advice is Advice.NOT_FOUND:
                remaining_s = (cmd.grace_until_ms - self._clock.now_ms()) / 1000
                if remaining_s > 0:
                    raise TransientError(
                        f"query of sid {failure.sid} answered 404 inside the failover "
                        f"grace ({remaining_s:.0f} s left): not failed yet",
                        retry_after_s=min(remaining_s, 30.0) + 1.0,
                    ) from None
                return None
            if exc.advice is Advice.RETRY_SAME:
                raise TransientError(str(exc), exc.retry_after_s) from None
            raise self._failed(cmd, None, f"cannot confirm the failure: {exc}",
                               "refused") from None
        if answer.status == STATUS_EXITED_ABNORMALLY:
            return None
        if answer.status in RUNNING_STATUSES:
            return self._not_needed(cmd, f"query says it runs (status {answer.status})")
        return self._not_needed(cmd, f"query says status {answer.status}")

    # ---------------------------------------------------------------------- the ladder

    def _drive(self, cmd: RestartCommand, attempt: _Attempt) -> Effects:
        mode, cname = cmd.session.mode, cmd.failure.cname
        request, acquire_request = self._requests(cmd, attempt.uid)
        acquires = 0
        while True:
            if self._needs_acquire(attempt):
                if acquires >= MAX_ACQUIRES_PER_RUN:
                    raise TransientError(f"{acquires} resourceIds in a row were refused; "
                                         "trying again later", retry_after_s=START_BACKOFF_S[0])
                acquires += 1
                try:
                    self._acquire(cmd, attempt, acquire_request)
                except _Conflict:
                    found = self._find_own(cmd, attempt, request)
                    if found is not None:
                        return self._restarted(cmd, attempt, found)
                    self._on_conflict(cmd, attempt)
            assert attempt.resource_id is not None
            if not attempt.journaled:
                self._journal(cmd, attempt)
            try:
                started = self._api.start(mode, attempt.resource_id, cname, attempt.uid, request)
            except RecordingApiError as exc:
                if exc.advice is Advice.ALREADY_RUNNING and exc.sid:
                    return self._restarted(cmd, attempt, _Found(attempt.resource_id, exc.sid))
                if exc.advice is Advice.RETRY_SAME:
                    attempt.start_failures += 1
                    delay = START_BACKOFF_S[min(attempt.start_failures, len(START_BACKOFF_S)) - 1]
                    raise TransientError(str(exc), max(delay, exc.retry_after_s or 0)) from None
                if exc.advice is Advice.REACQUIRE:
                    attempt.resource_id = None  # refused, so never started: drop it
                    continue
                if exc.advice is Advice.NEW_UID:
                    found = self._find_own(cmd, attempt, request)
                    if found is not None:
                        return self._restarted(cmd, attempt, found)
                    self._on_conflict(cmd, attempt)
                raise self._failed(cmd, attempt, str(exc), "refused") from None
            return self._restarted(cmd, attempt, _Found(attempt.resource_id, started.sid))

    def _needs_acquire(self, attempt: _Attempt) -> bool:
        if attempt.resource_id is None or attempt.acquired_at_ms is None:
            return True
        too_old = self._clock.now_ms() - attempt.acquired_at_ms > self._reacquire_after_ms
        if too_old or attempt.start_failures >= START_FAILURES_BEFORE_REACQUIRE:
            # It may have been started (a 65 reached the backend): keep it to look for.
            attempt.previous.append(attempt.resource_id)
            attempt.resource_id = None
            return True
        return False

    def _acquire(self, cmd: RestartCommand, attempt: _Attempt,
                 acquire_request: Mapping[str, Any]) -> None:
        """Acquire for ``attempt.uid`` and note the attempt in the registry (no start is
        ever sent on a resourceId that is not noted). Raises ``_Conflict`` on 53."""
        try:
            acquired = self._api.acquire(cmd.failure.cname, attempt.uid, acquire_request,
                                         mode=cmd.session.mode)
        except RequestInvalid as exc:
            raise self._failed(cmd, attempt, str(exc), "invalid_request") from None
        except RecordingApiError as exc:
            if exc.advice is Advice.NEW_UID:
                raise _Conflict(str(exc)) from None
            if exc.advice in (Advice.RETRY_SAME, Advice.REACQUIRE):
                raise TransientError(str(exc), exc.retry_after_s) from None
            raise self._failed(cmd, attempt, str(exc), "refused") from None
        attempt.resource_id = acquired.resource_id
        attempt.acquired_at_ms = self._clock.now_ms()
        attempt.start_failures = 0
        attempt.journaled = False
        self._journal(cmd, attempt)

    def _journal(self, cmd: RestartCommand, attempt: _Attempt) -> None:
        assert attempt.resource_id is not None
        assert attempt.acquired_at_ms is not None
        base = self._current(cmd) or cmd.session
        pending = PendingRestart(
            failed_sid=cmd.failure.sid, uid=attempt.uid, resource_id=attempt.resource_id,
            acquired_at_ms=attempt.acquired_at_ms, previous_resource_ids=attempt.previous[-10:],
            notice_id=cmd.failure.notice_id,
        )
        record = _updated(base, status="restarting", pending=pending.model_dump(by_alias=True),
                          updated_at=utc_from_ms(self._clock.now_ms()))
        try:
            self._sessions.save(record)
        except Exception as exc:
            # Without the durable note, a crash after start could leave a task nobody
            # knows about: do not start.
            raise TransientError(
                f"cannot record the restart in flight ({type(exc).__name__}); not starting"
            ) from exc
        attempt.journaled = True

    def _find_own(self, cmd: RestartCommand, attempt: _Attempt,
                  request: Mapping[str, Any]) -> _Found | None:
        """After a 53: is one of our earlier resourceIds (this process's, or a crashed or
        concurrent run's from the registry) the task that holds the uid? A start on a
        resourceId that was started answers 7 with its sid; on one that was not, 53 or
        433 again, so this can never start a second task."""
        current = self._current(cmd)
        pending = current.pending if current is not None else None
        if pending is not None and pending.failed_sid == cmd.failure.sid \
                and pending.uid == attempt.uid:
            for rid in (*pending.previous_resource_ids, pending.resource_id):
                if rid not in attempt.previous and rid != attempt.resource_id:
                    attempt.previous.append(rid)
        mode, cname = cmd.session.mode, cmd.failure.cname
        for rid in reversed(attempt.previous):
            try:
                started = self._api.start(mode, rid, cname, attempt.uid, request)
            except RecordingApiError as exc:
                if exc.advice is Advice.ALREADY_RUNNING and exc.sid:
                    return self._confirmed(cmd, _Found(rid, exc.sid))
                if exc.advice is Advice.RETRY_SAME:
                    raise TransientError(f"looking for our own task after 53: {exc}",
                                         exc.retry_after_s) from None
                continue
            return _Found(rid, started.sid)
        return None

    def _confirmed(self, cmd: RestartCommand, found: _Found) -> _Found:
        """Log what ``query`` says of a task found after a 53 (it is recorded either way:
        Agora just named it)."""
        try:
            answer = self._api.query(cmd.session.mode, found.resource_id, found.sid)
            status: object = answer.status
        except RecordingApiError as exc:
            status = f"unknown ({exc.advice.value})"
        log.info("found our own task after a uid conflict", extra={
            "cname": cmd.failure.cname, "sid": found.sid, "status": status})
        return found

    def _on_conflict(self, cmd: RestartCommand, attempt: _Attempt) -> NoReturn:
        """53 and none of our resourceIds is the task: look again later (the registry may
        not show a concurrent attempt yet); after a few tries, fail with an alert. The uid
        is not switched: the task is most likely a concurrent attempt of ours, and a
        second uid would record the channel twice."""
        attempt.lookups += 1
        if attempt.lookups < CONFLICT_LOOKUPS:
            raise TransientError(
                f"uid {attempt.uid} is taken on {cmd.failure.cname} (53) by a task not found "
                "yet; looking again", retry_after_s=CONFLICT_RETRY_S)
        raise self._failed(cmd, attempt, (
            f"uid {attempt.uid} is taken on {cmd.failure.cname} (Agora 53) by a task this "
            "restart cannot identify (a concurrent attempt whose registry note was "
            "overwritten, or another application using the uid); not switching uids, "
            "which could record the channel twice"), "uid_conflict")

    def _requests(self, cmd: RestartCommand, uid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The start and acquire clientRequests to send (``registry.prepare_requests``);
        a request that can never be sent fails the restart before anything is sent."""
        try:
            return prepare_requests(cmd.session, uid, env=self._env, app_id=self._app_id,
                                    certificate=self._certificate,
                                    token_valid_s=self._token_valid_s)
        except (MissingReference, TokenError, RequestInvalid) as exc:
            raise self._failed(cmd, None, str(exc), "invalid_request") from None

    # ------------------------------------------------------------------------ effects

    def _restarted(self, cmd: RestartCommand, attempt: _Attempt, found: _Found) -> Effects:
        failure = cmd.failure
        now = self._clock.now_ms()
        base = self._current(cmd) or cmd.session
        entry = RestartEntry(at=utc_from_ms(now), old_sid=failure.sid, new_sid=found.sid,
                             uid=attempt.uid, reason=failure.reason,
                             notice_id=failure.notice_id)
        history = [*base.restarts, entry][-MAX_HISTORY:]
        record = _updated(
            base, uid=attempt.uid, backup_uid=base.other_uid(attempt.uid),
            resource_id=found.resource_id, sid=found.sid, status="running",
            restarts=[h.model_dump(by_alias=True) for h in history], pending=None,
            started_at=utc_from_ms(now), updated_at=utc_from_ms(now), error=None,
        )
        log.info("recording restarted", extra={
            "cname": failure.cname, "sid": failure.sid, "new_sid": found.sid,
            "uid": attempt.uid, "noticeId": failure.notice_id})
        return Effects(
            outputs=(
                record.output(self._topics.sessions),
                self._outcome(failure, "restarted", now, new_sid=found.sid, uid=attempt.uid),
            ),
            state={
                failure.key: {"status": "restarted", "new_sid": found.sid,
                              "uid": attempt.uid, "resource_id": found.resource_id,
                              "acquired_at_ms": attempt.acquired_at_ms, "at_ms": now,
                              "noticeId": failure.notice_id},
                channel_key(failure.cname): {"restarts_ms": [*cmd.recent_restarts_ms, now]},
            },
        )

    def _failed(self, cmd: RestartCommand, attempt: _Attempt | None,
                error: str, why: GaveUpReason) -> ActionFailed:
        """The restart cannot succeed by retrying: record it, alert, and stop."""
        failure = cmd.failure
        now = self._clock.now_ms()
        base = self._current(cmd) or cmd.session
        record = _updated(base, status="failed", pending=None, error=error[:500],
                          updated_at=utc_from_ms(now))
        log.error("restart failed: %s", error, extra={"cname": failure.cname,
                                                      "sid": failure.sid, "gave_up": why})
        self._metrics.record_gave_up(why)
        effects = Effects(
            outputs=(
                record.output(self._topics.sessions),
                self._outcome(failure, "failed", now, alert=True, error=error,
                              uid=attempt.uid if attempt else None),
            ),
            state={failure.key: {"status": "failed", "error": error[:500], "at_ms": now,
                                 "noticeId": failure.notice_id}},
        )
        return ActionFailed(f"restart of {failure.cname} failed: {error}", effects)

    def _gave_up(self, cmd: GiveUpCommand) -> Effects:
        failure = cmd.failure
        now = self._clock.now_ms()
        error = (f"{len(cmd.recent_restarts_ms)} restarts within {self._rules.window_s} s "
                 f"(max_restarts {self._rules.max_restarts})")
        current = lookup(self._sessions, failure.cname)
        outputs: tuple[Output, ...] = ()
        if current is None or current.sid in (None, failure.sid):  # never clobber a newer task
            record = _updated(current or cmd.session, status="gave_up", pending=None,
                              error=error, updated_at=utc_from_ms(now))
            outputs = (record.output(self._topics.sessions),)
        log.error("restart gave up: %s", error, extra={"cname": failure.cname,
                                                       "sid": failure.sid,
                                                       "gave_up": "max_restarts"})
        self._metrics.record_gave_up("max_restarts")
        return Effects(
            outputs=(*outputs, self._outcome(failure, "gave_up", now, alert=True, error=error)),
            state={failure.key: {"status": "gave_up", "error": error, "at_ms": now,
                                 "noticeId": failure.notice_id}},
        )

    def _not_needed(self, cmd: RestartCommand, reason: str, mark: str | None = None) -> Effects:
        failure = cmd.failure
        now = self._clock.now_ms()
        log.info("no restart needed: %s", reason, extra={"cname": failure.cname,
                                                         "sid": failure.sid})
        state: dict[str, Mapping[str, Any] | None] = {}
        if mark is not None:
            state[failure.key] = {"status": mark, "at_ms": now, "noticeId": failure.notice_id}
        return Effects(outputs=(self._outcome(failure, "not_needed", now, detail=reason),),
                       state=state)

    def _outcome(self, failure: Failure, outcome: Outcome, now_ms: int, *,
                 alert: bool = False, **extra: Any) -> Output:
        value: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "handler": ACTION_NAME, "action": ACTION_NAME,
            "outcome": outcome, "alert": alert, "cname": failure.cname, "sid": failure.sid,
            "reason": failure.reason, "noticeId": failure.notice_id,
            "eventType": failure.event_type, "synthetic": failure.synthetic,
            "at": now_ms,
            **{k: v for k, v in extra.items() if v is not None},
        }
        headers = {"noticeId": failure.notice_id, "sid": failure.sid, "outcome": outcome,
                   "schema-version": SCHEMA_VERSION}
        return report_output(self._topics.actions, failure.cname, value, **headers)


# ------------------------------------------------------------------------------ helpers


def _event_ms(notification: Notification) -> int:
    """When the event happened: ``sendts``, else ``notifyMs`` (refreshed on NCS retries)."""
    return notification.payload.send_ts or notification.notify_ms


def _failure(notification: Notification, cname: str, sid: str,
             verdict: Classification) -> Failure:
    extra = notification.model_extra or {}
    return Failure(
        cname=cname, sid=sid, uid=notification.payload.uid,
        notice_id=notification.notice_id, event_type=notification.event_type,
        event_ms=_event_ms(notification), reason=verdict.reason,
        synthetic=extra.get("synthetic") is True,
    )


def _recent(entry: Mapping[str, Any] | None, now_ms: int, window_ms: int) -> tuple[int, ...]:
    times = entry.get("restarts_ms", []) if entry else []
    return tuple(t for t in times if isinstance(t, int) and now_ms - t < window_ms)


def _updated(record: SessionRecord, **changes: Any) -> SessionRecord:
    """A validated copy of ``record`` with ``changes`` (JSON-able values)."""
    try:
        return parse_session({**record.model_dump(by_alias=True), **changes})
    except SessionRecordError as exc:  # our own changes are valid; a bug if not
        raise RuntimeError(str(exc)) from None


# ------------------------------------------------------------------------------ factory


def create_action(context: ActionContext) -> RestartAction:
    """The restart action of ``agora-events handlers``. Raises ``ActionDisabled`` without
    Cloud Recording credentials, with an unusable App Certificate, or with a profile that
    stores a credential in clear (the registry would have to store it)."""
    from handlers.recording.client import CloudRecordingClient
    from handlers.recording.errors import RecordingNotConfigured
    from handlers.registry import ActionDisabled

    settings = context.settings
    try:
        client = CloudRecordingClient.from_settings(settings.agora)
    except RecordingNotConfigured as exc:
        raise ActionDisabled(f"restart: {exc}") from None
    try:
        return _build(context, client)
    except BaseException:
        client.close()
        raise


def _build(context: ActionContext, client: RecordingApi) -> RestartAction:
    from handlers.recording.registry import SessionWriter, TableSessions, raw_rules
    from handlers.registry import ActionDisabled

    settings = context.settings
    assert settings.agora.app_id is not None  # checked by the client's from_settings
    rules = context.rules  # resolves references: fails early on an unset variable
    profiles = raw_rules(settings.config_path).recording
    for profile in profiles.profiles:
        try:
            SessionRecord(cname="check", mode=profile.mode, uid=profile.uid,
                          backup_uid=profile.backup_uid, status="running",
                          client_request=profile.client_request,
                          acquire_client_request=profile.acquire_client_request,
                          updated_at=utc_from_ms(0))
        except ValueError as exc:
            raise ActionDisabled(f"restart: profile {profile.name!r}: {exc}") from None
    certificate = settings.agora.app_certificate
    if certificate is not None:
        try:
            build_recording_token(settings.agora.app_id, certificate, channel="check",
                                  uid="1", valid_for_s=60)
        except TokenError as exc:
            raise ActionDisabled(f"restart: AGORA_APP_CERTIFICATE: {exc}") from None
    topics = settings.topics
    client_config = settings.kafka.client_config()
    sessions = TableSessions(context.table(topics.sessions),
                             lambda: SessionWriter(client_config, topics.sessions))
    return RestartAction(
        client, sessions=sessions, profiles=profiles, rules=rules.restart, topics=topics,
        app_id=settings.agora.app_id, app_certificate=certificate, clock=context.clock,
        metrics=RestartMetrics(context.metrics_registry),
    )
