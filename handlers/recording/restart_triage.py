"""What a Cloud Recording callback asks of the restart action (pure): nothing, a note of
a failover, marking a task that ended on purpose ``ended``, giving up (too many restarts
in the window) or restarting the task, as the command ``run`` carries out.

It reads the callback's verdict (:mod:`handlers.recording.signals`), the task's registry
record (found by sid and uid among the channel's tasks, else described by its profile)
and the action's state; see :mod:`handlers.recording.restart` for the guarantees.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from handlers.action_contract import InvalidEvent, StateView
from handlers.config import RecordingRules, RestartRules
from handlers.recording.commands import (
    EndedCommand,
    FailoverCommand,
    Failure,
    GiveUpCommand,
    RestartActionCommand,
    RestartCommand,
    bounds_key,
    failover_key,
)
from handlers.recording.session_registry import SessionRecord, find_task, utc_from_ms
from handlers.recording.signals import Classification, Signal, classify
from webhook.shared.events import EventError, Notification

log = logging.getLogger(__name__)


def triage(notification: Notification, tasks: list[SessionRecord], state: StateView, *,
           profiles: RecordingRules, rules: RestartRules) -> RestartActionCommand | None:
    """The command for ``notification`` given the channel's registered ``tasks`` and the
    action's ``state``; ``None`` when there is nothing to do. Raises ``InvalidEvent`` for
    a callback that cannot be read."""
    cname, sid = notification.payload.cname, notification.payload.sid
    record = find_task(tasks, sid, notification.payload.uid)
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
                                   notification.notice_id, verdict.new_uid)
        if verdict.ended and record is not None and record.status == "running":
            return EndedCommand(cname, sid, record.key)
        log.debug("not a failure: %s", verdict.reason, extra=context)
        return None
    failure = _failure(notification, cname, sid, verdict)
    if state.get(failure.key) is not None:
        log.info("failure already handled", extra=context)
        return None
    session = record or session_from_profile(profiles, failure, tasks)
    if session is None:
        log.warning("failed recording not restarted: no session record and no profile "
                    "matches the channel", extra=context)
        return None
    resuming = session.pending is not None and session.pending.failed_sid == sid
    confirm = verdict.signal is Signal.NEEDS_CONFIRMATION
    recent = _recent(state.get(bounds_key(session)), failure.event_ms, rules.window_s * 1000)
    if len(recent) >= rules.max_restarts and not resuming:
        return GiveUpCommand(failure, session, recent)
    failover = state.get(failover_key(cname, sid)) or {}
    grace_from = max(failure.event_ms, int(failover.get("at_ms", 0)))
    next_uid = session.next_uid if session.next_uid != failure.uid else session.uid
    moved_to = failover.get("newUid")
    recorders = {session.uid, session.backup_uid, *([str(moved_to)] if moved_to else []),
                 *(uid for task in tasks for uid in task.recorder_uids())}
    return RestartCommand(
        failure=failure, session=session, next_uid=next_uid, confirm=confirm,
        grace_until_ms=grace_from + rules.failover_grace_s * 1000,
        recent_restarts_ms=recent, recorder_uids=frozenset(recorders),
    )


def session_from_profile(profiles: RecordingRules, failure: Failure,
                         tasks: list[SessionRecord]) -> SessionRecord | None:
    """An unregistered task described by its profile: the matching profile whose uid
    pair holds the callback's uid; the first matching one only while the channel has
    no registered task (a callback of another task must not restart this one)."""
    matching = [p for p in profiles.profiles if p.matches(failure.cname)]
    profile = next((p for p in matching if failure.uid in (p.uid, p.backup_uid)), None)
    if profile is None and not tasks and matching:
        profile = matching[0]
    if profile is None:
        return None
    uid, backup = profile.uid, profile.backup_uid
    if failure.uid == backup:
        uid, backup = backup, uid
    try:
        return SessionRecord(
            cname=failure.cname, mode=profile.mode, profile=profile.name,
            task=profile.name, uid=uid,
            backup_uid=backup, sid=failure.sid, status="running",
            client_request=profile.client_request,
            acquire_client_request=profile.acquire_client_request,
            updated_at=utc_from_ms(failure.event_ms),
        )
    except ValueError as exc:
        log.error("profile %r cannot describe a session: %s", profile.name, exc,
                  extra={"cname": failure.cname})
        return None


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
