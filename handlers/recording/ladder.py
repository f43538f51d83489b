"""The restart ladder: ``acquire`` then ``start`` with Agora's retry rules, the durable
note before each start, finding our own task after a 53, and the ``query`` that confirms
the new task runs; see the table in :mod:`handlers.recording.restart`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NoReturn

from handlers.action_contract import Effects, TransientError
from handlers.recording.api_responses import RUNNING_STATUSES, STATUS_EXITED_ABNORMALLY
from handlers.recording.commands import (
    CONFIRM_RETRY_S,
    CONFIRM_START_S,
    CONFLICT_LOOKUPS,
    CONFLICT_RETRY_S,
    MAX_ACQUIRES_PER_RUN,
    START_BACKOFF_S,
    START_FAILURES_BEFORE_REACQUIRE,
    ActionParts,
    Attempt,
    Conflict,
    Found,
    RestartCommand,
)
from handlers.recording.errors import Advice, RecordingApiError
from handlers.recording.restart_records import updated_record
from handlers.recording.session_registry import (
    PendingRestart,
    ReferenceProblem,
    allowed_references,
    prepare_requests,
    utc_from_ms,
)
from handlers.recording.tokens import TokenError
from handlers.recording.validation import RequestInvalid

log = logging.getLogger(__name__)


class Ladder(ActionParts):
    """The acquire/start ladder of :class:`.restart.RestartAction`."""

    def _drive(self, cmd: RestartCommand, attempt: Attempt) -> Effects:
        if attempt.started is not None:
            return self._confirm_start(cmd, attempt, attempt.started)
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
                except Conflict:
                    found = self._find_own(cmd, attempt, request)
                    if found is not None:
                        return self._confirm_start(cmd, attempt, found)
                    self._on_conflict(cmd, attempt)
            assert attempt.resource_id is not None
            if not attempt.journaled:
                self._journal(cmd, attempt)
            try:
                started = self._api.start(mode, attempt.resource_id, cname, attempt.uid, request)
            except RecordingApiError as exc:
                if exc.advice is Advice.ALREADY_RUNNING and exc.sid:
                    return self._confirm_start(cmd, attempt, Found(attempt.resource_id, exc.sid))
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
                        return self._confirm_start(cmd, attempt, found)
                    self._on_conflict(cmd, attempt)
                raise self._failed(cmd, attempt, str(exc), "refused") from None
            return self._confirm_start(cmd, attempt, Found(attempt.resource_id, started.sid))

    def _confirm_start(self, cmd: RestartCommand, attempt: Attempt, found: Found) -> Effects:
        """The registry says ``running`` only once ``query`` shows the new task running
        (status 4 or 5). Until then the record stays ``restarting`` and the action asks
        again after :data:`CONFIRM_RETRY_S`; a task that exits at once (status 20) or
        does not run within :data:`CONFIRM_START_S` fails the restart with an alert
        rather than starting another task next to one that may still come up."""
        now = self._clock.now_ms()
        if attempt.started != found:
            attempt.started, attempt.started_at_ms = found, now
        waited_s = (now - (attempt.started_at_ms or now)) / 1000
        try:
            status = self._api.query(cmd.session.mode, found.resource_id, found.sid).status
        except RecordingApiError as exc:
            if exc.advice not in (Advice.NOT_FOUND, Advice.RETRY_SAME):
                raise self._failed(cmd, attempt, f"cannot confirm the new task {found.sid}: "
                                   f"{exc}", "refused") from None
            status = None
        if status in RUNNING_STATUSES:
            return self._restarted(cmd, attempt, found)
        if status == STATUS_EXITED_ABNORMALLY:
            raise self._failed(cmd, attempt, f"the new task {found.sid} exited at once "
                               "(query status 20)", "refused")
        if waited_s >= CONFIRM_START_S:
            raise self._failed(cmd, attempt, f"the new task {found.sid} did not reach the "
                               f"running status (4/5) within {CONFIRM_START_S:.0f} s "
                               f"(last status {status})", "refused")
        # 5 s, then back off (5, 10, 20, 30 s...): Agora's advice, and it keeps the 90 s
        # inside the runtime's attempts and budget.
        raise TransientError(f"the new task {found.sid} is not running yet (status {status})",
                             retry_after_s=min(30.0, max(CONFIRM_RETRY_S, waited_s)))

    def _needs_acquire(self, attempt: Attempt) -> bool:
        if attempt.resource_id is None or attempt.acquired_at_ms is None:
            return True
        too_old = self._clock.now_ms() - attempt.acquired_at_ms > self._reacquire_after_ms
        if too_old or attempt.start_failures >= START_FAILURES_BEFORE_REACQUIRE:
            # It may have been started (a 65 reached the backend): keep it to look for.
            attempt.previous.append(attempt.resource_id)
            attempt.resource_id = None
            return True
        return False

    def _acquire(self, cmd: RestartCommand, attempt: Attempt,
                 acquire_request: Mapping[str, Any]) -> None:
        """Acquire for ``attempt.uid`` and note the attempt in the registry (no start is
        ever sent on a resourceId that is not noted). Raises ``Conflict`` on 53."""
        try:
            acquired = self._api.acquire(cmd.failure.cname, attempt.uid, acquire_request,
                                         mode=cmd.session.mode)
        except RequestInvalid as exc:
            raise self._failed(cmd, attempt, str(exc), "invalid_request") from None
        except RecordingApiError as exc:
            if exc.advice is Advice.NEW_UID:
                raise Conflict(str(exc)) from None
            if exc.advice in (Advice.RETRY_SAME, Advice.REACQUIRE):
                raise TransientError(str(exc), exc.retry_after_s) from None
            raise self._failed(cmd, attempt, str(exc), "refused") from None
        attempt.resource_id = acquired.resource_id
        attempt.acquired_at_ms = self._clock.now_ms()
        attempt.start_failures = 0
        attempt.journaled = False
        self._journal(cmd, attempt)

    def _journal(self, cmd: RestartCommand, attempt: Attempt) -> None:
        assert attempt.resource_id is not None
        assert attempt.acquired_at_ms is not None
        base = self._current(cmd) or cmd.session
        pending = PendingRestart(
            failed_sid=cmd.failure.sid, uid=attempt.uid, resource_id=attempt.resource_id,
            acquired_at_ms=attempt.acquired_at_ms, previous_resource_ids=attempt.previous[-10:],
            notice_id=cmd.failure.notice_id,
        )
        record = updated_record(base, status="restarting",
                                pending=pending.model_dump(by_alias=True),
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

    def _find_own(self, cmd: RestartCommand, attempt: Attempt,
                  request: Mapping[str, Any]) -> Found | None:
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
                    return self._confirmed(cmd, Found(rid, exc.sid))
                if exc.advice is Advice.RETRY_SAME:
                    raise TransientError(f"looking for our own task after 53: {exc}",
                                         exc.retry_after_s) from None
                continue
            return Found(rid, started.sid)
        return None

    def _confirmed(self, cmd: RestartCommand, found: Found) -> Found:
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

    def _on_conflict(self, cmd: RestartCommand, attempt: Attempt) -> NoReturn:
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
                                    allowed=allowed_references(self._profiles),
                                    certificate=self._certificate,
                                    token_valid_s=self._token_valid_s)
        except (ReferenceProblem, TokenError, RequestInvalid) as exc:
            raise self._failed(cmd, None, str(exc), "invalid_request") from None

