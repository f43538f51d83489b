"""The restart action: when a recording dies, start it again, once.

The action is split by job: ``run`` and the settling of ambiguous ends here (with the
decision table of :mod:`handlers.recording.decide`, rows in ``docs/recording.md``, and the
evidence :mod:`.ending_evidence` gathers), what ``decide`` makes of a callback in
:mod:`.restart_triage`, the ladder in :mod:`.ladder`, what a restart writes in
:mod:`.records`, the commands and state keys in :mod:`.commands`, its construction from
the settings in :mod:`.restart_setup`.

``decide`` (pure) turns an event into a command with :mod:`handlers.recording.signals`,
the task's registry record (found by sid and uid among the channel's tasks) and the
action's state; ``run`` settles an ambiguous end first (query, the wait for the exit, the
channel user list), then ``acquire`` + ``start`` with the same mode and clientRequest as
the task (registry record, else the matching profile), the other of the task's two uids
and a fresh RTC token, following Agora's retry ladder, and registers the new task as
running once ``query`` shows it running:

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

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace

from pydantic import SecretStr

from handlers.action_contract import Effects, Received, StateView, TransientError
from handlers.config import RecordingRules, RestartRules
from handlers.recording.client import RecordingApi
from handlers.recording.commands import (
    ACTION_NAME,
    LEDGER_SIZE,
    REACQUIRE_AFTER_S,
    TOKEN_VALID_S,
    Attempt,
    EndedCommand,
    FailoverCommand,
    GiveUpCommand,
    RestartActionCommand,
    RestartCommand,
    failover_key,
)
from handlers.recording.decide import Decision, Evidence, QueryAnswer, Vanished, decide_ending
from handlers.recording.ending_evidence import channel_answer, query_answer
from handlers.recording.errors import RecordingApiError
from handlers.recording.ladder import Ladder
from handlers.recording.metrics import RestartMetrics
from handlers.recording.restart_records import Records, updated_record
from handlers.recording.restart_triage import triage
from handlers.recording.session_registry import (
    ENDED,
    SessionRecord,
    SessionStore,
    channel_tasks,
    lookup,
    utc_from_ms,
)
from handlers.recording.signals import LIVENESS_EVENT_TYPES
from webhook.shared.clock import Clock, SystemClock
from webhook.shared.kafka_settings import TopicNames

log = logging.getLogger(__name__)

# -------------------------------------------------------------------------------- action


class RestartAction(Ladder, Records):
    """See the module documentation. ``sessions`` reads the registry (live) and writes
    in-flight restarts durably; ``profiles`` must keep ``${NAME}`` references as written
    (``registry.raw_rules``); ``env`` resolves them when a request is sent."""

    name = ACTION_NAME
    event_types = LIVENESS_EVENT_TYPES  # other callbacks are finished without decoding

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
        self._ledger: OrderedDict[str, Attempt] = OrderedDict()
        # The runtime runs different keys on worker threads at once: one lock keeps the
        # ledger's check-then-evict steps whole.
        self._ledger_lock = threading.Lock()

    @property
    def metrics(self) -> RestartMetrics:
        return self._metrics

    # --------------------------------------------------------------------------- decide

    def decide(self, event: Received, state: StateView) -> RestartActionCommand | None:
        notification = event.notification
        cname = notification.payload.cname
        tasks = channel_tasks(self._sessions, cname) if cname else []
        return triage(notification, tasks, state, profiles=self._profiles, rules=self._rules)

    def prepare(self) -> None:
        """Before the runner starts: the registry writer connects in the background, so
        an incident's first restart does not wait for it between its acquire and its
        start (whose resource goes stale within seconds)."""
        prepare = getattr(self._sessions, "prepare", None)
        if callable(prepare):
            prepare()

    # ------------------------------------------------------------------------------ run

    def run(self, command: RestartActionCommand) -> Effects:
        if isinstance(command, FailoverCommand):
            return Effects(state={failover_key(command.cname, command.sid): {
                "at_ms": command.at_ms, "noticeId": command.notice_id,
                "newUid": command.new_uid}})
        if isinstance(command, GiveUpCommand):
            return self._gave_up(command)
        if isinstance(command, EndedCommand):
            return self._ended(command)
        return self._restart(command)

    def _ended(self, cmd: EndedCommand) -> Effects:
        current = lookup(self._sessions, cmd.key or cmd.cname)
        if current is None or current.sid != cmd.sid or current.status != "running":
            return Effects()  # restarted, stopped or rewritten meanwhile: not ours to end
        log.info("recording ended normally", extra={"cname": cmd.cname, "sid": cmd.sid})
        record = updated_record(current, status=ENDED, pending=None,
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
        with self._ledger_lock:
            remembered = self._ledger.get(failure.key)
        attempt = remembered or self._resumed(cmd, current)
        if attempt is None:
            if cmd.confirm:
                alive = self._confirm(cmd)
                if alive is not None:
                    return alive
            attempt = Attempt(uid=cmd.next_uid)
        self._remember(failure.key, attempt)
        try:
            effects = self._drive(cmd, attempt)
        except TransientError:
            raise
        except BaseException:
            self._forget(failure.key)
            raise
        self._forget(failure.key)
        return effects

    def _current(self, cmd: RestartCommand) -> SessionRecord | None:
        return lookup(self._sessions, cmd.session.key)

    def _resumed(self, cmd: RestartCommand, current: SessionRecord | None) -> Attempt | None:
        """The attempt a crashed or concurrent run left in the registry, if any."""
        pending = current.pending if current is not None else None
        if pending is None or pending.failed_sid != cmd.failure.sid:
            return None
        log.info("resuming a restart in flight", extra={
            "cname": cmd.failure.cname, "sid": cmd.failure.sid, "uid": pending.uid})
        return Attempt(
            uid=pending.uid, resource_id=pending.resource_id,
            acquired_at_ms=pending.acquired_at_ms,
            previous=[*pending.previous_resource_ids], journaled=True,
        )

    def _remember(self, key: str, attempt: Attempt) -> None:
        with self._ledger_lock:
            self._ledger[key] = attempt
            self._ledger.move_to_end(key)
            while len(self._ledger) > LEDGER_SIZE:
                self._ledger.popitem(last=False)

    def _forget(self, key: str) -> None:
        with self._ledger_lock:
            self._ledger.pop(key, None)

    # ------------------------------------------------------------------- confirmation

    def _confirm(self, cmd: RestartCommand) -> Effects | None:
        """Settle an ambiguous end with the decision table (:mod:`.decide`): ``None`` when
        the task must be restarted; the effects of a ``not_needed`` outcome (marking the
        record ended when it ended) otherwise. Raises ``TransientError`` while it waits."""
        failure = cmd.failure
        current = self._current(cmd)
        evidence = Evidence(
            registry_status=current.status if current is not None
            and current.sid in (None, failure.sid) else None,
            query=self._query(cmd),
            wait_left_s=(cmd.grace_until_ms - self._clock.now_ms()) / 1000,
            recorder_uids=cmd.recorder_uids,
        )
        ruling = decide_ending(evidence)
        if ruling.decision is Decision.ASK_CHANNEL:
            evidence = replace(evidence, channel=channel_answer(self._api, failure.cname))
            ruling = decide_ending(evidence)
        reason = f"{ruling.row}: {ruling.reason}"
        if ruling.decision is Decision.RESTART:
            log.info("confirmed: %s", reason, extra={"cname": failure.cname,
                                                     "sid": failure.sid})
            return None
        if ruling.decision is Decision.WAIT:
            left = max(evidence.wait_left_s, 0.0)
            raise TransientError(f"not settled yet ({reason})",
                                 retry_after_s=min(left, 30.0) + 1.0 if left else None)
        if ruling.decision is Decision.UNKNOWN:
            raise self._failed(cmd, None, reason, "refused")
        if ruling.decision is Decision.ENDED:
            return self._not_needed(cmd, reason, mark="ended", end=current)
        return self._not_needed(cmd, reason)

    def _query(self, cmd: RestartCommand) -> QueryAnswer:
        session, sid = cmd.session, cmd.failure.sid
        if session.resource_id is None:
            return Vanished()
        try:
            return query_answer(self._api, session.mode, session.resource_id, sid)
        except RecordingApiError as exc:
            raise self._failed(cmd, None, f"cannot confirm the failure: {exc}",
                               "refused") from None
