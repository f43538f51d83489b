"""The whiteboard handler: on a trigger event of a linked channel, capture the room's scene
directory once (screenshot-list) and publish the screenshots.

Exactly one capture per trigger. The trigger is (cname, sid, eventType), not noticeId:
NCS's redundant channel sends the same event with different noticeIds. Each trigger, once
handled, is written to the handler's state in the same transaction as the output, so a
duplicate notice finds it and ``decide`` returns ``None``. Permanent failures are recorded
too, so duplicates of a failed trigger do not cause a storm of failing calls.

A crash between the call and that transaction must not capture twice either: the answer
is saved as a note (``note/capture/...``, :mod:`handlers.runtime.notes`) as soon as it
arrives, and the next attempt publishes the noted answer instead of calling; the
transaction that publishes it deletes the note. Only a crash while the call itself is in
flight (no answer yet) leads to a second call.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from handlers.action_contract import (
    ActionFailed,
    Effects,
    Output,
    Received,
    StateView,
    TableView,
    TransientError,
)
from handlers.config import WhiteboardLink, WhiteboardRules
from handlers.recording.signals import is_health_check
from handlers.runtime.notes import Notes, StateNotes
from handlers.settings import HandlerSettings
from handlers.whiteboard.client import HttpWhiteboardClient, WhiteboardApi, WhiteboardError
from handlers.whiteboard.models import (
    CaptureCommand,
    CaptureFailedReport,
    InvalidCaptureRequest,
    InvalidLink,
    RoomLink,
    Screenshot,
    ScreenshotsRecord,
    link_from_session,
    room_link,
)
from webhook.shared.clock import Clock, SystemClock
from webhook.shared.event_records import HEADER_SCHEMA_VERSION, SCHEMA_VERSION
from webhook.shared.events import CLOUD_RECORDING_PRODUCT_ID
from webhook.shared.kafka_settings import TopicNames

log = logging.getLogger(__name__)

ACTION_NAME: Final = "whiteboard"
# The runtime namespaces state keys by action ("whiteboard/capture/..." on the topic).
TRIGGER_STATE_PREFIX = "capture/"
NOTE_STATE_PREFIX = "note/"
_ANSWERS_KEPT = 1000

LinksLookup = Callable[[str], RoomLink | None]
"""Returns the session registry's link for a cname (see ``link_from_session``), or None.
May raise ``InvalidLink`` for a malformed record; the rules file is then used instead."""


def trigger_key(cname: str, sid: str, event_type: int) -> str:
    """State key of one trigger. JSON keeps it unambiguous whatever the cname contains."""
    return TRIGGER_STATE_PREFIX + json.dumps([cname, sid, event_type], separators=(",", ":"))


def note_key(trigger: str) -> str:
    """State key of the noted answer of a trigger's call (see the module docstring)."""
    return NOTE_STATE_PREFIX + trigger


def _noted(note: Mapping[str, Any] | None) -> tuple[Screenshot, ...] | None:
    if note is None:
        return None
    try:
        return tuple(Screenshot.model_validate(s) for s in note["screenshots"])
    except (KeyError, TypeError, ValueError):
        log.warning("ignoring a malformed capture note")
        return None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def _rule_link(rule: WhiteboardLink, index: int) -> RoomLink:
    return room_link(rule, f"whiteboard.links[{index}]")


def _no_registry(_cname: str) -> RoomLink | None:
    return None


def session_links(sessions: TableView) -> LinksLookup:
    """Links read from the session registry view (``agora.recording.sessions``): the
    first of the channel's task records that carries one (one record per task; a
    version-1 record is keyed by the cname itself)."""
    from handlers.recording.store import channel_values

    def lookup(cname: str) -> RoomLink | None:
        record = sessions.get(cname)
        if record is None or record.get("whiteboard") is None:
            record = next((v for v in channel_values(sessions, cname)
                           if v.get("whiteboard") is not None), record)
        return link_from_session(record, where=f"session {cname!r} whiteboard")

    return lookup


class WhiteboardCaptureAction:
    """``decide`` is pure (reads the event, the links and the state); ``run`` makes one
    screenshot-list call and returns what to publish.

    ``run`` raises ``TransientError`` for 429/5xx/timeouts/connection errors and
    ``ActionFailed`` (with an alert record on the actions topic and the trigger marked
    failed) for anything permanent. Construction raises ``InvalidLink`` naming the rules
    entry when a configured link is out of range.
    """

    name = ACTION_NAME

    def __init__(
        self,
        api: WhiteboardApi,
        *,
        rules: WhiteboardRules,
        topics: TopicNames,
        default_region: str,
        links_lookup: LinksLookup = _no_registry,
        clock: Clock | None = None,
        notes: Notes | None = None,
    ) -> None:
        self._api = api
        self._notes = notes
        # Answers not yet published, for a retry in this process (an aborted transaction).
        self._answers: OrderedDict[str, tuple[Screenshot, ...]] = OrderedDict()
        self._rules = [(rule, _rule_link(rule, i)) for i, rule in enumerate(rules.links)]
        self._topics = topics
        self._default_region = default_region
        self._links_lookup = links_lookup
        self._clock = clock or SystemClock()

    def link_for(self, cname: str) -> RoomLink | None:
        """The session registry's link first (it is per session), else the first rule."""
        try:
            link = self._links_lookup(cname)
        except InvalidLink as exc:
            log.warning("ignoring malformed whiteboard link in session record",
                        extra={"cname": cname, "error": str(exc)})
            link = None
        if link is not None:
            return link
        return next((room for rule, room in self._rules if rule.matches(cname)), None)

    def decide(self, event: Received, state: StateView) -> CaptureCommand | None:
        notification = event.notification
        payload = notification.payload
        cname, sid, event_type = payload.cname, payload.sid, notification.event_type
        # Links name Cloud Recording event types; other NCS products reuse the numbers.
        if not cname or notification.product_id != CLOUD_RECORDING_PRODUCT_ID:
            return None
        if is_health_check(cname, payload.uid):
            return None  # the console's check: published, never acted on
        link = self.link_for(cname)
        if link is None or event_type not in link.on_events:
            return None
        context = {"cname": cname, "noticeId": notification.notice_id, "eventType": event_type}
        if not sid:
            log.warning("trigger event without sid, no capture", extra=context)
            return None
        key = trigger_key(cname, sid, event_type)
        if state.get(key) is not None:
            log.info("trigger already handled", extra={**context, "sid": sid})
            return None
        return CaptureCommand(
            cname=cname,
            sid=sid,
            notice_id=notification.notice_id,
            event_type=event_type,
            room_uuid=link.room_uuid,
            path=link.path,
            width=link.width,
            height=link.height,
            region=link.region or self._default_region,
            trigger_key=key,
            noted=_noted(state.get(note_key(key))),
        )

    def run(self, command: CaptureCommand) -> Effects:
        shots = command.noted
        if shots is None:
            shots = self._answers.get(command.trigger_key)
        if shots is None:
            shots = self._capture(command)
        now = _iso(self._clock.now_ms())
        record = ScreenshotsRecord(schema_version=SCHEMA_VERSION, **command.record_fields(),
                                   captured_at=now, screenshots=list(shots))
        log.info("whiteboard captured",
                 extra={"cname": command.cname, "sid": command.sid, "count": len(shots)})
        state: dict[str, Mapping[str, Any] | None] = {
            command.trigger_key: {
                "status": "captured",
                "noticeId": command.notice_id,
                "at": now,
                "screenshots": len(shots),
            }
        }
        if self._notes is not None or command.noted is not None:
            state[note_key(command.trigger_key)] = None  # published now: the note is done
        return Effects(
            outputs=(self._output(self._topics.screenshots, command, record),), state=state
        )

    def _capture(self, command: CaptureCommand) -> tuple[Screenshot, ...]:
        """One screenshot-list call; its answer is noted before anything else happens."""
        try:
            shots = tuple(self._api.screenshot_list(
                command.room_uuid,
                path=command.path,
                width=command.width,
                height=command.height,
                region=command.region,
            ))
        except WhiteboardError as exc:
            if exc.retryable:
                raise TransientError(str(exc), retry_after_s=exc.retry_after_s) from exc
            raise ActionFailed(str(exc), self._failure(command, exc.message, exc.status)) from exc
        except InvalidCaptureRequest as exc:
            raise ActionFailed(str(exc), self._failure(command, str(exc), None)) from exc
        self._answers[command.trigger_key] = shots
        while len(self._answers) > _ANSWERS_KEPT:
            self._answers.popitem(last=False)
        if self._notes is not None:
            try:
                self._notes.save(note_key(command.trigger_key), {
                    "screenshots": [shot.model_dump() for shot in shots],
                    "noticeId": command.notice_id, "at": _iso(self._clock.now_ms())})
            except Exception as exc:  # noqa: BLE001 - the answer is in hand: publish it
                log.warning("could not note the capture (%s); a crash before it is "
                            "published would capture again", type(exc).__name__,
                            extra={"cname": command.cname, "sid": command.sid})
        return shots

    def _failure(self, command: CaptureCommand, message: str, status: int | None) -> Effects:
        now_ms = self._clock.now_ms()
        now = _iso(now_ms)
        report = CaptureFailedReport(
            schema_version=SCHEMA_VERSION,
            handler=ACTION_NAME,
            action="screenshot-list",
            outcome="failed",
            alert=True,
            **command.record_fields(),
            status=status,
            error=message,
            at=now_ms,
        )
        return Effects(
            outputs=(report.output(self._topics.actions, **_record_headers(command)),),
            state={
                command.trigger_key: {
                    "status": "failed",
                    "noticeId": command.notice_id,
                    "at": now,
                    "http_status": status,
                    "error": message,
                }
            },
        )

    @staticmethod
    def _output(topic: str, command: CaptureCommand, record: ScreenshotsRecord) -> Output:
        return Output.json(topic, command.cname, record.model_dump(mode="json", by_alias=True),
                           **_record_headers(command))


def _record_headers(command: CaptureCommand) -> dict[str, str]:
    """The headers of both records of a capture (screenshots or failure report)."""
    return {"noticeId": command.notice_id, "sid": command.sid,
            HEADER_SCHEMA_VERSION: SCHEMA_VERSION}


def build_whiteboard_action(
    settings: HandlerSettings,
    rules: WhiteboardRules,
    *,
    links_lookup: LinksLookup = _no_registry,
    clock: Clock | None = None,
) -> WhiteboardCaptureAction:
    """The action with an HTTP client from ``settings.whiteboard``.

    Raises ``TokenConfigError`` without credentials and ``InvalidLink`` for a bad rule, so a
    misconfigured handler fails at start-up rather than on its first trigger.
    """
    return WhiteboardCaptureAction(
        HttpWhiteboardClient.from_settings(settings.whiteboard),
        rules=rules,
        topics=settings.topics,
        default_region=settings.whiteboard.region,
        links_lookup=links_lookup,
        clock=clock,
        notes=StateNotes(settings.kafka.client_config(), settings.topics.state, ACTION_NAME),
    )
