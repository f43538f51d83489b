"""The notify handler: derived file records and alerts.

Inputs: NCS events (``agora.ncs.events``) and action records (``agora.actions``, see
:mod:`handlers.notify.action_signals`); the action declares the second one in
``extra_inputs``. ``decide`` is pure: from one record and the handler's state it computes
the file records not yet published and the incident transitions (see
:mod:`handlers.notify.incidents`). ``run`` delivers the transitions to their sinks and
returns the records, the state updates and an outcome record.

State entries (the runtime namespaces them under ``notify/``):

- ``file/<record id>``: the record was published; duplicates and redundant notices of the
  same file are dropped in ``decide``.
- ``alerts/<cname>``: the channel's open incidents and last recovery time.

One alert per incident across retries: each (transition, sink) delivery that succeeded is
remembered in memory by a deterministic delivery id, so when ``run`` is retried after a
partial failure (two sinks, one answered 500) only the sinks that failed are called again.
A sink that failed for good is not retried either; ``run`` then raises ``ActionFailed``
carrying everything else, so the records and the incident state are still published. The
state records where each trigger was delivered, and resolves go to those sinks only.

Across crashes: a record that sent alerts asks the runtime to commit at once
(``Effects.commit_now``), so a crash repeats at most the deliveries of the record in hand,
with the same ``webhook-id`` and ``dedup_key``. Every attempt decides again
(``decide_each_attempt``) against the channel's current state.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

from handlers.action_contract import (
    ActionFailed,
    Effects,
    InvalidEvent,
    Output,
    Received,
    StateView,
    TransientError,
)
from handlers.config import AlertRules, ConfigError, RulesConfig
from handlers.notify.action_signals import NOTIFY, normalise_name, parse_action_record
from handlers.notify.alerts import Alert
from handlers.notify.delivery_report import AlertDelivery, AlertsReport
from handlers.notify.files import FileRecord, FileRecordError, derive_file_records
from handlers.notify.incidents import Plan, Recovery, plan, record_deliveries, state_key
from handlers.notify.rules import Trigger, event_triggers, outcome_triggers
from handlers.notify.sinks import Sink, SinkConfigError, build_sinks
from handlers.recording.signals import is_health_check
from handlers.settings import HandlerSettings
from webhook.shared.clock import Clock, SystemClock
from webhook.shared.event_records import HEADER_SCHEMA_VERSION, SCHEMA_VERSION
from webhook.shared.events import CLOUD_RECORDING_PRODUCT_ID
from webhook.shared.kafka_settings import TopicNames

if TYPE_CHECKING:
    from handlers.action_catalog import ActionContext

log = logging.getLogger(__name__)

ACTION_NAME = NOTIFY
FILE_STATE_PREFIX = "file/"

# The channel is recording (again): the recorder or the web recorder started.
CHANNEL_RECOVERY_EVENTS = frozenset({40, 70})
# A session's files are safe in storage: resolves that session's event incidents only.
SESSION_RECOVERY_EVENTS = frozenset({31, 32})
_NOTHING = Plan(state=None, alerts=())
# Deliveries remembered for retries; far more than can be in flight at once.
_LEDGER_SIZE = 10_000


class InputRecord(Protocol):
    """What ``decide`` needs of any consumed record. :class:`handlers.action_contract.Received` (an
    NCS event) fits; records of ``agora.actions`` arrive undecoded in the same shape."""

    @property
    def raw(self) -> bytes: ...

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> str | None: ...


def file_state_key(record_id: str) -> str:
    return FILE_STATE_PREFIX + record_id


@dataclass(frozen=True, slots=True)
class NotifyCommand:
    """What one consumed record asks of ``run``.

    ``alert_state`` is the channel's planned ``alerts/<cname>`` entry (``None``: unchanged);
    ``run`` adds where each trigger was delivered before writing it.
    """

    cname: str | None
    sid: str | None
    notice_id: str | None
    event_type: int | None
    source: str
    records: tuple[FileRecord, ...] = ()
    alerts: tuple[Alert, ...] = ()
    alert_state: Mapping[str, Any] | None = None


DeliveryStatus = Literal["delivered", "failed", "retrying"]


class NotifyAction:
    """See the module documentation. Construction raises ``SinkConfigError`` for a sink
    that can never deliver (e.g. a malformed ``whsec_`` secret)."""

    name = ACTION_NAME
    extra_inputs = ("actions",)
    """Fields of :class:`TopicNames` consumed besides ``events``."""
    decide_each_attempt = True
    """A channel's records on the two inputs are ordered separately: while one waits for
    a retry, a record of the other input may change the channel's alert state, and the
    retry must plan against that (the ledger keeps deliveries already made)."""

    def __init__(
        self,
        *,
        alerts: AlertRules,
        topics: TopicNames,
        client: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._rules = alerts
        self._topics = topics
        self._clock = clock or SystemClock()
        self._client = client or httpx.Client(follow_redirects=False)
        self._sinks: dict[str, Sink] = build_sinks(alerts.sinks, self._client, self._clock)
        # delivery id -> (final status, error); bounded, oldest forgotten first.
        self._ledger: OrderedDict[str, tuple[DeliveryStatus, str]] = OrderedDict()

    def close(self) -> None:
        self._client.close()

    # --- decide ---------------------------------------------------------------------------

    def decide(self, event: InputRecord, state: StateView) -> NotifyCommand | None:
        if event.topic == self._topics.actions:
            return self._decide_action_record(event, state)
        if not isinstance(event, Received):
            return None  # an input this action does not know
        return self._decide_notification(event, state)

    def _decide_notification(self, event: Received, state: StateView) -> NotifyCommand | None:
        notification = event.notification
        payload = notification.payload
        if is_health_check(payload.cname, payload.uid):
            return None  # the console's check: published, never acted on (no files, no alerts)
        try:
            derived = derive_file_records(notification)
        except FileRecordError as exc:
            raise InvalidEvent(str(exc)) from None
        records = tuple(r for r in derived if state.get(file_state_key(r.id)) is None)

        planned = _NOTHING
        # Rules name Cloud Recording event types; other NCS products reuse the numbers.
        if payload.cname and notification.product_id == CLOUD_RECORDING_PRODUCT_ID:
            triggers = event_triggers(
                self._rules,
                cname=payload.cname,
                sid=payload.sid,
                uid=payload.uid,
                event_type=notification.event_type,
                notice_id=notification.notice_id,
                details=payload.details,
                sendts=payload.send_ts,
            )
            recovery = _recovery(notification.event_type, payload.details, payload.send_ts,
                                 payload.sid, notification.notice_id)
            planned = self._plan(state, payload.cname, triggers, recovery,
                                 episode=notification.notice_id)
        if not records and planned.state is None:
            return None
        return NotifyCommand(
            cname=payload.cname,
            sid=payload.sid,
            notice_id=notification.notice_id,
            event_type=notification.event_type,
            source=f"{event.topic}/{event.partition}/{event.offset}",
            records=records,
            alerts=planned.alerts,
            alert_state=planned.state,
        )

    def _decide_action_record(self, event: InputRecord, state: StateView) -> NotifyCommand | None:
        record = parse_action_record(event.raw)
        if record is None or normalise_name(record.handler_name) == NOTIFY:
            return None  # not an outcome, or our own: never alert about alerting
        cname = record.cname or event.key
        if not cname:
            return None
        source = f"{event.topic}/{event.partition}/{event.offset}"
        recovery = None
        if record.is_recovery:
            recovery = Recovery(record.at, f"{record.handler_name} {record.outcome}")
        triggers = outcome_triggers(self._rules, record, cname)
        planned = self._plan(state, cname, triggers, recovery, episode=source)
        if planned.state is None:
            return None
        return NotifyCommand(
            cname=cname,
            sid=record.sid,
            notice_id=record.notice_id,
            event_type=record.event_type,
            source=source,
            alerts=planned.alerts,
            alert_state=planned.state,
        )

    def _plan(
        self,
        state: StateView,
        cname: str,
        triggers: list[Trigger],
        recovery: Recovery | None,
        *,
        episode: str,
    ) -> Plan:
        if not triggers and recovery is None:
            return _NOTHING  # no state read, no write
        current = state.get(state_key(cname))
        if current is None and not self._rules.rules:
            # No rule can open an incident: a recovery would only add an entry per
            # channel (its recovered_ts) that nothing ever needs.
            return _NOTHING
        return plan(
            current,
            cname=cname,
            triggers=triggers,
            recovery=recovery,
            episode=episode,
            configured_sinks=self._sinks,
        )

    # --- run ------------------------------------------------------------------------------

    def run(self, command: NotifyCommand) -> Effects:
        transient: list[TransientError] = []
        permanent: list[str] = []
        report: list[AlertDelivery] = []
        delivered: dict[str, list[str]] = {}
        for alert in command.alerts:
            sent: list[str] = []
            failed: list[str] = []
            for sink_name in alert.sinks:
                status = self._deliver(alert, sink_name, transient, permanent)
                if status == "delivered":
                    sent.append(sink_name)
                elif status == "failed":
                    failed.append(sink_name)
            if alert.transition == "trigger":
                delivered[alert.incident] = sent
            report.append(AlertDelivery.of(alert, sent, failed))
        if transient:
            retry_after = max((e.retry_after_s or 0.0 for e in transient), default=0.0)
            raise TransientError(
                "; ".join(str(e) for e in transient), retry_after_s=retry_after or None
            )

        now_ms = self._clock.now_ms()
        outputs: list[Output] = [r.output(self._topics.files) for r in command.records]
        # "at" lets an expiry job drop old entries: dedup only matters for recent notices.
        state: dict[str, Mapping[str, Any] | None] = {
            file_state_key(r.id): {"cname": r.cname, "sid": r.sid, "noticeId": r.notice_id,
                                   "at": now_ms}
            for r in command.records
        }
        if command.alert_state is not None and command.cname:
            alert_state = record_deliveries(command.alert_state, delivered)
            state[state_key(command.cname)] = {**alert_state, "at": now_ms}
        if report:
            outputs.append(self._outcome(command, report, failed=bool(permanent), now_ms=now_ms))
        if command.records or report:
            log.info(
                "notified",
                extra={"cname": command.cname, "sid": command.sid,
                       "noticeId": command.notice_id, "records": len(command.records),
                       "alerts": len(report)},
            )
        # Alerts went out: commit now, so a crash cannot send them again after a later
        # transition (a trigger repeated after its resolve opens a new PagerDuty incident).
        effects = Effects(outputs=tuple(outputs), state=state, commit_now=bool(report))
        if permanent:
            raise ActionFailed("; ".join(permanent), effects)
        return effects

    def _deliver(
        self,
        alert: Alert,
        sink_name: str,
        transient: list[TransientError],
        permanent: list[str],
    ) -> DeliveryStatus:
        delivery = alert.delivery_id(sink_name)
        known = self._ledger.get(delivery)
        if known is not None:
            status, error = known
            if status == "failed":
                permanent.append(error)
            return status
        sink = self._sinks.get(sink_name)
        if sink is None:
            return "failed"  # planning only names configured sinks; defensive
        try:
            sink.send(alert)
        except TransientError as exc:
            transient.append(exc)
            return "retrying"
        except ActionFailed as exc:
            permanent.append(str(exc))
            self._remember(delivery, "failed", str(exc))
            return "failed"
        self._remember(delivery, "delivered", "")
        return "delivered"

    def _remember(self, delivery: str, status: DeliveryStatus, error: str) -> None:
        self._ledger[delivery] = (status, error)
        self._ledger.move_to_end(delivery)
        while len(self._ledger) > _LEDGER_SIZE:
            self._ledger.popitem(last=False)

    def _outcome(
        self, command: NotifyCommand, report: list[AlertDelivery], *, failed: bool, now_ms: int
    ) -> Output:
        """Our own record on ``agora.actions``: which alerts went where."""
        value = AlertsReport(
            schema_version=SCHEMA_VERSION,
            handler=ACTION_NAME,
            action="alert",
            outcome="failed" if failed else "notified",
            cname=command.cname,
            sid=command.sid,
            notice_id=command.notice_id,
            event_type=command.event_type,
            source=command.source,
            at=now_ms,
            alerts=report,
        )
        headers = {HEADER_SCHEMA_VERSION: SCHEMA_VERSION, "action": ACTION_NAME}
        if command.notice_id:
            headers["noticeId"] = command.notice_id
        return value.output(self._topics.actions, **headers)


def _recovery(
    event_type: int, details: Mapping[str, Any], sendts: int | None, sid: str | None,
    notice_id: str,
) -> Recovery | None:
    if details.get("status", 0) != 0:
        return None
    origin = f"noticeId {notice_id}"
    if event_type in CHANNEL_RECOVERY_EVENTS:
        return Recovery(sendts, origin)
    if event_type in SESSION_RECOVERY_EVENTS and sid:
        return Recovery(sendts, origin, sid=sid)
    return None


def build_notify_action(
    settings: HandlerSettings, rules: RulesConfig, *, clock: Clock | None = None
) -> NotifyAction:
    """The action with its own HTTP client (pooled connections to the sinks).

    Raises :class:`ConfigError` naming the sink when one can never deliver, so a bad
    rules file stops the process at start-up instead of at the first incident.
    """
    try:
        return NotifyAction(alerts=rules.alerts, topics=settings.topics, clock=clock)
    except SinkConfigError as exc:
        raise ConfigError(f"alerts.sinks: {exc}") from None


def create_action(context: ActionContext) -> NotifyAction:
    """The registry's factory (``handlers.notify.action:create_action``). Without alert
    rules the action still publishes derived file records."""
    return build_notify_action(context.settings, context.rules, clock=context.clock)
