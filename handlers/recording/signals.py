"""Which NCS events mean a recording failed (SPEC 3.4, reference/agora-facts.md 1.8-1.10).

Pure: :func:`classify` looks at one notification and the channel's registry record and
returns a :class:`Signal` with a short reason. The rules, first match wins:

1. not a Cloud Recording event (``productId`` 3), or no ``cname`` or ``sid``, or a
   callback of the console's health check (``cname`` ``test_webhook`` or ``uid``
   ``12121212``): IRRELEVANT.
2. the registry tracks another ``sid`` for the callback's task (matched by sid, then by
   recorder uid among the channel's tasks: the event is about an older task, e.g. a
   duplicate arriving after a restart): IRRELEVANT. A failure of the *new* task is
   classified by the same rules once the registry holds its sid.
3. the registry says ``starting`` (a start by hand is in progress, it registers its sid
   when done): IRRELEVANT.
4. the registry says ``stopping``/``stopped``: we stopped it, so any end is BENIGN;
   ``ended``: the task already ended on its own, so anything after is BENIGN.
5. per event type:

   - 11 ``session_exit``: ``exitStatus`` 1 FAILURE; 0 BENIGN with ``ended`` set (the
     task is over: the registry should say so); any other (undocumented) value
     NEEDS_CONFIRMATION.
   - 41 ``recorder_leave``: ``leaveCode`` 0 (initialisation failed) FAILURE; only the bits
     SIG (2), NO_USERS (4), TIMER_CATCH (8) BENIGN; any other bit (CLIENT_LEAVE 16,
     undocumented ones) NEEDS_CONFIRMATION.
   - 1 ``cloud_recording_error``: ``errorLevel`` 5 (fatal) NEEDS_CONFIRMATION; lower
     levels BENIGN.
   - 71 ``web_recorder_stopped``: ``code`` 0 (stopped) or 1 (max recording hour) BENIGN;
     any other code FAILURE.
   - 12 ``session_failover``: BENIGN with ``failover`` set (Agora moves the task itself).
   - anything else: IRRELEVANT.

NEEDS_CONFIRMATION means "settle it with the decision table" (:mod:`.decide`): ``query``
status 20 is a failure, another status is alive; a 404 waits for the task's
``session_exit`` during the failover grace, then the channel user list decides: a
restart only while people other than our recorders are in the channel. ``failover`` on
a BENIGN result starts that grace window for the sid. Reconciler events (``synthetic:
true``) are session_exit with ``exitStatus`` 1, already settled by the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from handlers.recording.session_registry import ENDED, OWN_STOP_STATUSES, SessionRecord
from webhook.shared.events import (
    CLOUD_RECORDING_PRODUCT_ID,
    CloudRecordingErrorDetails,
    Notification,
    RecorderLeaveDetails,
    SessionExitDetails,
    SessionFailoverDetails,
    WebRecorderStoppedDetails,
    parse_details_as,
)

HEALTH_CHECK_CNAME = "test_webhook"
HEALTH_CHECK_UID = "12121212"
"""What the console's "Check" sends (facts 1.1): synthetic callbacks of no real task."""

SESSION_EXIT = 11
SESSION_FAILOVER = 12
RECORDER_LEAVE = 41
CLOUD_RECORDING_ERROR = 1
WEB_RECORDER_STOPPED = 71

LIVENESS_EVENT_TYPES = frozenset(
    {SESSION_EXIT, SESSION_FAILOVER, RECORDER_LEAVE, CLOUD_RECORDING_ERROR, WEB_RECORDER_STOPPED}
)
"""The event types rule 5 reads; every other type classifies as IRRELEVANT or as BENIGN
with nothing to note, so the restart action never acts on it."""


class Signal(StrEnum):
    FAILURE = "failure"
    """The task is dead: restart it."""
    NEEDS_CONFIRMATION = "needs_confirmation"
    """Maybe dead: ``query`` first."""
    BENIGN = "benign"
    """An expected end or a transition Agora handles itself."""
    IRRELEVANT = "irrelevant"
    """Not about the task the registry tracks, or not about liveness at all."""


@dataclass(frozen=True, slots=True)
class Classification:
    signal: Signal
    reason: str
    failover: bool = False
    ended: bool = False
    """The task ended normally (BENIGN): nothing will run under this sid any more."""
    new_uid: str | None = None
    """``session_failover``: the uid Agora moves the recorder to."""


def is_health_check(cname: str | None, uid: str | None) -> bool:
    """A callback of the console's health check (channel ``test_webhook`` or uid
    ``12121212``): accepted and published like any callback, never acted on."""
    return cname == HEALTH_CHECK_CNAME or uid == HEALTH_CHECK_UID


def _irrelevant(reason: str) -> Classification:
    return Classification(Signal.IRRELEVANT, reason)


def classify(notification: Notification, record: SessionRecord | None) -> Classification:
    """Apply the rules of the module documentation. Raises ``webhook.shared.events.EventError``
    (naming the field) when a liveness event's details do not fit their model."""
    payload = notification.payload
    if notification.product_id != CLOUD_RECORDING_PRODUCT_ID:
        return _irrelevant(f"productId {notification.product_id} is not Cloud Recording")
    if not payload.cname or not payload.sid:
        return _irrelevant("no cname or sid")
    if is_health_check(payload.cname, payload.uid):
        return _irrelevant("the console's health check (published, never acted on)")
    if record is not None:
        if record.sid is not None and record.sid != payload.sid:
            return _irrelevant(f"sid {payload.sid} is not the registered task {record.sid}")
        if record.status == "starting":
            return _irrelevant("the session is being started")
        if record.status in OWN_STOP_STATUSES:
            return Classification(Signal.BENIGN, f"we stopped it (status {record.status})")
        if record.status == ENDED:
            return Classification(Signal.BENIGN, "the task already ended (status ended)")
    return _by_event(notification)


def _by_event(notification: Notification) -> Classification:
    event_type = notification.event_type
    if event_type == SESSION_EXIT:
        status = parse_details_as(notification, SessionExitDetails).exit_status
        if status == 1:
            return Classification(Signal.FAILURE, "session_exit exitStatus 1")
        if status == 0:
            return Classification(Signal.BENIGN, "session_exit exitStatus 0", ended=True)
        return Classification(Signal.NEEDS_CONFIRMATION, f"session_exit exitStatus {status}")
    if event_type == RECORDER_LEAVE:
        leave = parse_details_as(notification, RecorderLeaveDetails)
        if leave.leave_code == 0:
            return Classification(Signal.FAILURE, "recorder_leave leaveCode 0 (init failed)")
        if leave.is_benign:
            return Classification(Signal.BENIGN, f"recorder_leave leaveCode {leave.leave_code}")
        return Classification(
            Signal.NEEDS_CONFIRMATION, f"recorder_leave leaveCode {leave.leave_code}"
        )
    if event_type == CLOUD_RECORDING_ERROR:
        error = parse_details_as(notification, CloudRecordingErrorDetails)
        if error.is_fatal:
            return Classification(
                Signal.NEEDS_CONFIRMATION,
                f"cloud_recording_error errorLevel 5 (module {error.module}, "
                f"errorCode {error.error_code})",
            )
        return Classification(
            Signal.BENIGN, f"cloud_recording_error errorLevel {error.error_level}"
        )
    if event_type == WEB_RECORDER_STOPPED:
        code = parse_details_as(notification, WebRecorderStoppedDetails).code
        if code in (0, 1):
            return Classification(Signal.BENIGN, f"web_recorder_stopped code {code}")
        return Classification(Signal.FAILURE, f"web_recorder_stopped code {code}")
    if event_type == SESSION_FAILOVER:
        moved = parse_details_as(notification, SessionFailoverDetails).new_uid
        return Classification(Signal.BENIGN, "session_failover (Agora moves the task)",
                              failover=True, new_uid=str(moved) if moved else None)
    return _irrelevant(f"eventType {event_type} says nothing about liveness")
