"""What a restart writes: the registry record, the outcome on ``agora.actions`` and the
action's state entries, for each way a restart ends (restarted, failed, gave up, not
needed)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field

from handlers.action_contract import ActionFailed, Effects, Output
from handlers.recording.commands import (
    ACTION_NAME,
    ActionParts,
    Attempt,
    Failure,
    Found,
    GiveUpCommand,
    Outcome,
    RestartCommand,
    bounds_key,
)
from handlers.recording.metrics import GaveUpReason
from handlers.recording.session_registry import (
    ACTIVE_STATUSES,
    ENDED,
    MAX_HISTORY,
    RestartEntry,
    SessionRecord,
    SessionRecordError,
    lookup,
    parse_session,
    utc_from_ms,
)
from handlers.reports import TYPED_REPORT_CONFIG, ActionReport
from webhook.shared.event_records import HEADER_SCHEMA_VERSION, SCHEMA_VERSION

log = logging.getLogger(__name__)


class Records(ActionParts):
    """The record builders of :class:`.restart.RestartAction`."""

    def _restarted(self, cmd: RestartCommand, attempt: Attempt, found: Found) -> Effects:
        failure = cmd.failure
        now = self._clock.now_ms()
        base = self._current(cmd) or cmd.session
        entry = RestartEntry(at=utc_from_ms(now), old_sid=failure.sid, new_sid=found.sid,
                             uid=attempt.uid, reason=failure.reason,
                             notice_id=failure.notice_id)
        history = [*base.restarts, entry][-MAX_HISTORY:]
        record = updated_record(
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
                bounds_key(cmd.session): {"restarts_ms": [*cmd.recent_restarts_ms, now]},
            },
        )

    def _failed(self, cmd: RestartCommand, attempt: Attempt | None,
                error: str, why: GaveUpReason) -> ActionFailed:
        """The restart cannot succeed by retrying: record it, alert, and stop."""
        failure = cmd.failure
        now = self._clock.now_ms()
        base = self._current(cmd) or cmd.session
        record = updated_record(base, status="failed", pending=None, error=error[:500],
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
        current = lookup(self._sessions, cmd.session.key)
        outputs: tuple[Output, ...] = ()
        if current is None or current.sid in (None, failure.sid):  # never clobber a newer task
            record = updated_record(current or cmd.session, status="gave_up", pending=None,
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

    def _not_needed(self, cmd: RestartCommand, reason: str, mark: str | None = None,
                    end: SessionRecord | None = None) -> Effects:
        """A ``not_needed`` outcome saying why; with ``end`` (the task's running record),
        the record is marked ``ended`` so nothing queries or restarts it again."""
        failure = cmd.failure
        now = self._clock.now_ms()
        log.info("no restart needed: %s", reason, extra={"cname": failure.cname,
                                                         "sid": failure.sid})
        state: dict[str, Mapping[str, Any] | None] = {}
        if mark is not None:
            state[failure.key] = {"status": mark, "at_ms": now, "noticeId": failure.notice_id}
        outputs: tuple[Output, ...] = ()
        if end is not None and end.sid == failure.sid and end.status in ACTIVE_STATUSES:
            record = updated_record(end, status=ENDED, pending=None, error=None,
                              updated_at=utc_from_ms(now))
            outputs = (record.output(self._topics.sessions),)
        return Effects(
            outputs=(*outputs, self._outcome(failure, "not_needed", now, detail=reason)),
            state=state)

    def _outcome(self, failure: Failure, outcome: Outcome, now_ms: int, *,
                 alert: bool = False, **extra: str | None) -> Output:
        report = RestartReport(
            schema_version=SCHEMA_VERSION, handler=ACTION_NAME, action=ACTION_NAME,
            outcome=outcome, alert=alert, cname=failure.cname, sid=failure.sid,
            reason=failure.reason, notice_id=failure.notice_id,
            event_type=failure.event_type, synthetic=failure.synthetic, at=now_ms,
            **{k: v for k, v in extra.items() if v is not None},
        )
        headers = {"noticeId": failure.notice_id, "sid": failure.sid, "outcome": outcome,
                   HEADER_SCHEMA_VERSION: SCHEMA_VERSION}
        return report.output(self._topics.actions, **headers)


class RestartReport(ActionReport):
    """The restart action's report on ``agora.actions``: how handling one failed task
    ended. ``alert`` is true for ``failed`` and ``gave_up``."""

    model_config = TYPED_REPORT_CONFIG | ConfigDict(title="agora.actions restart report")

    handler: Literal["restart"] = Field(description="Always restart.")
    action: Literal["restart"] = Field(description="Always restart.")
    outcome: Outcome = Field(description="restarted, gave_up, not_needed or failed.")
    reason: str | None = Field(default=None, description="Why the task counts as failed.")
    synthetic: bool | None = Field(
        default=None, description="The failure was found by the reconciler, not sent by NCS."
    )
    new_sid: str | None = Field(default=None, description="restarted: the new task's sid.")
    uid: str | None = Field(default=None, description="Recorder uid of the restart attempt.")
    detail: str | None = Field(default=None, description="not_needed: why not.")


def updated_record(record: SessionRecord, **changes: Any) -> SessionRecord:
    """A validated copy of ``record`` with ``changes`` (JSON-able values)."""
    try:
        return parse_session({**record.model_dump(by_alias=True), **changes})
    except SessionRecordError as exc:  # our own changes are valid; a bug if not
        raise RuntimeError(str(exc)) from None


