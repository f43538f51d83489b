"""The notify action end to end without Kafka: decide, run against the fake sinks, and the
state written back the way the runtime does after each commit."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from support.rules_files import pagerduty_sink, slack_sink, webhook_sink

from handlers.action_catalog import ActionContext, default_registry
from handlers.action_contract import (
    Action,
    ActionFailed,
    Effects,
    InvalidEvent,
    Received,
    TransientError,
)
from handlers.config import ConfigError, parse_rules
from handlers.notify.action import NotifyAction, NotifyCommand, build_notify_action
from handlers.notify.sinks import SinkConfigError
from handlers.runtime.dispatch import Handled, Transient, attempt, work_from_record
from handlers.settings import HandlerSettings
from handlers.testing.fake_sinks import FakeSinks
from webhook.shared.clock import SystemClock
from webhook.shared.kafka_settings import TopicNames

CNAME = "class-101"
SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
T0 = 1_700_000_000_000
OPS_SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LWZvci1vcHMtaG9vaw=="
PD_KEY = "PDR0UT1NGKEY0123456789abcdefABCD"
TOPICS = TopicNames()

RULES_TOML = webhook_sink("${OPS_SECRET}") + slack_sink() + pagerduty_sink() + """
[[alerts.rules]]
name = "fatal-error"
events = [1]
where = { errorLevel = 5 }
sinks = ["ops", "pd"]
severity = "critical"

[[alerts.rules]]
name = "abnormal-exit"
events = [11]
where = { exitStatus = 1 }
sinks = ["chat"]

[[alerts.rules]]
name = "restart-gave-up"
outcomes = ["restart gave up"]
sinks = ["pd", "chat"]

[[alerts.rules]]
name = "whiteboard-failed"
outcomes = ["whiteboard failed"]
sinks = ["ops"]
"""

FATAL = {"msgName": "cloud_recording_error", "module": 2, "errorLevel": 5, "errorCode": 52,
         "stat": 1, "errorMsg": "service start timeout"}
STARTED = {"msgName": "recorder_started", "status": 0}
MP4 = f"{SID}_{CNAME}_0.mp4"
M3U8 = f"{SID}_{CNAME}.m3u8"


@dataclass
class MemoryState:
    """StateView plus what the runtime does with ``Effects.state`` after a commit."""

    entries: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, key: str) -> Mapping[str, Any] | None:
        return self.entries.get(key)

    def apply(self, effects: Effects) -> None:
        for key, value in effects.state.items():
            if value is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = json.loads(json.dumps(value))  # as the topic stores it


@dataclass
class Harness:
    """Feeds records through decide/run like the runtime (no retries unless asked)."""

    action: NotifyAction
    state: MemoryState
    published: list[Effects] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def decide(self, event: Any) -> NotifyCommand | None:
        return self.action.decide(event, self.state)

    def run(self, command: NotifyCommand) -> Effects:
        try:
            effects = self.action.run(command)
        except ActionFailed as exc:
            self.errors.append(str(exc))
            effects = exc.effects
            self._commit(effects)
            raise
        except TransientError as exc:
            self.errors.append(str(exc))
            raise
        self._commit(effects)
        return effects

    def handle(self, event: Any) -> Effects | None:
        command = self.decide(event)
        return None if command is None else self.run(command)

    def _commit(self, effects: Effects) -> None:
        self.state.apply(effects)
        self.published.append(effects)

    def outputs(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(o.value) for e in self.published for o in e.outputs if o.topic == topic]


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


@pytest.fixture
def env(fake_sinks: FakeSinks) -> dict[str, str]:
    return {
        "OPS_URL": fake_sinks.webhook_url("ops", OPS_SECRET),
        "OPS_SECRET": OPS_SECRET,
        "SLACK_URL": fake_sinks.slack_url("chat"),
        "PD_URL": fake_sinks.pagerduty_url("pd"),
        "PD_KEY": PD_KEY,
    }


@pytest.fixture
def harness(env: dict[str, str], client: httpx.Client) -> Harness:
    rules = parse_rules(RULES_TOML, env)
    action = NotifyAction(alerts=rules.alerts, topics=TOPICS, client=client, clock=SystemClock())
    return Harness(action, MemoryState())


Notice = Callable[..., Received]


# --- derived records -----------------------------------------------------------------------


def uploaded(*names: str) -> dict[str, Any]:
    return {"msgName": "uploaded", "status": 0,
            "fileList": [{"fileName": n, "trackType": "audio_and_video", "uid": "0"}
                         for n in names]}


def test_uploaded_files_are_published_once(
    harness: Harness, make_body: Callable[..., bytes], make_received: Callable[..., Received],
    make_notice: Notice,
) -> None:
    body = make_body(31, uploaded(MP4, M3U8), notice_id="n1")
    effects = harness.handle(make_received(body))
    assert effects is not None
    files = [o for o in effects.outputs if o.topic == TOPICS.files]
    assert [json.loads(o.value)["fileName"] for o in files] == [MP4, M3U8]
    assert {o.key for o in files} == {CNAME}

    # The same bytes again (NCS retry) and a redundant notice with another noticeId.
    assert harness.decide(make_received(body)) is None
    assert harness.decide(make_notice(31, uploaded(M3U8, MP4), notice_id="n2")) is None

    # A later notice listing one known and one new file publishes only the new one.
    later = harness.handle(make_notice(31, uploaded(MP4, f"{SID}_{CNAME}_1.mp4")))
    assert later is not None
    assert [json.loads(o.value)["fileName"] for o in later.outputs] == [f"{SID}_{CNAME}_1.mp4"]
    assert len(harness.outputs(TOPICS.files)) == 3


def test_file_records_of_other_sources_are_deduplicated_too(
    harness: Harness, make_notice: Notice
) -> None:
    shot = {"msgName": "recorder_snapshot_file", "fileName": "p/x.jpg"}
    assert harness.handle(make_notice(45, shot, notice_id="a")) is not None
    assert harness.decide(make_notice(45, shot, notice_id="b")) is None
    # The same playlist reported by event 4 and by event 31 are two facts.
    assert harness.handle(make_notice(4, {"fileList": M3U8})) is not None
    assert harness.handle(make_notice(31, uploaded(M3U8))) is not None


def test_a_file_event_that_does_not_fit_is_invalid(harness: Harness, make_notice: Notice) -> None:
    bad = {"msgName": "uploaded", "status": 0, "fileList": [{"trackType": "audio"}]}
    with pytest.raises(InvalidEvent, match=r"fileList\[0\]\.fileName"):
        harness.decide(make_notice(31, bad))


def test_events_that_concern_nobody_give_no_command(harness: Harness, make_notice: Notice) -> None:
    progress = {"msgName": "uploading_progress", "progress": 10}
    assert harness.decide(make_notice(33, progress)) is None
    assert harness.decide(make_notice(1, {**FATAL, "errorLevel": 2})) is None


def test_other_products_do_not_trigger_cloud_recording_rules(
    harness: Harness, make_body: Callable[..., bytes], make_received: Callable[..., Received]
) -> None:
    rtc = json.loads(make_body(1, FATAL))
    rtc["productId"] = 1
    assert harness.decide(make_received(json.dumps(rtc).encode())) is None


# --- incidents -----------------------------------------------------------------------------


def test_one_alert_per_incident_however_many_duplicates(
    harness: Harness, fake_sinks: FakeSinks, make_body: Callable[..., bytes],
    make_received: Callable[..., Received], make_notice: Notice,
) -> None:
    body = make_body(1, FATAL, notice_id="n1", sendts=T0)
    harness.handle(make_received(body))
    assert harness.decide(make_received(body)) is None
    assert harness.decide(make_notice(1, FATAL, notice_id="n1-redundant", sendts=T0)) is None
    assert harness.decide(make_notice(1, FATAL, notice_id="n2", sendts=T0 + 5000)) is None

    [hook] = fake_sinks.deliveries("ops")
    [page] = fake_sinks.deliveries("pd")
    assert hook.problems == ()
    assert page.problems == ()
    assert page.json["event_action"] == "trigger"
    assert page.json["payload"]["severity"] == "critical"
    assert "errorCode=52" in page.json["payload"]["summary"]
    assert fake_sinks.deliveries("chat") == []

    [outcome] = harness.outputs(TOPICS.actions)
    assert outcome["handler"] == "notify"
    assert outcome["outcome"] == "notified"
    assert "alert" not in outcome
    assert outcome["alerts"][0]["delivered"] == ["ops", "pd"]


def test_recovery_resolves_with_the_same_dedup_key(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice
) -> None:
    harness.handle(make_notice(1, FATAL, sendts=T0))
    resolved = harness.handle(make_notice(40, STARTED, sid="new-sid", sendts=T0 + 60_000))
    assert resolved is not None

    trigger, resolve = fake_sinks.deliveries("pd")
    assert resolve.json["event_action"] == "resolve"
    assert resolve.json["dedup_key"] == trigger.json["dedup_key"]
    hook_trigger, hook_resolve = fake_sinks.deliveries("ops")
    assert hook_resolve.json["type"] == "agora.alert.resolved"
    assert hook_resolve.headers["webhook-id"] != hook_trigger.headers["webhook-id"]

    # A late duplicate of the failure does not reopen; a new failure does.
    assert harness.decide(make_notice(1, FATAL, sendts=T0)) is None
    harness.handle(make_notice(1, FATAL, sid="new-sid", sendts=T0 + 120_000))
    assert [d.json["event_action"] for d in fake_sinks.deliveries("pd")] == [
        "trigger", "resolve", "trigger"
    ]


def test_failure_reported_after_the_recovery_is_not_alerted(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice
) -> None:
    harness.handle(make_notice(40, STARTED, sendts=T0 + 1000))
    assert harness.decide(make_notice(1, FATAL, sendts=T0)) is None
    assert fake_sinks.attempts() == []


def test_resolve_goes_only_where_the_trigger_went(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice
) -> None:
    harness.handle(make_notice(11, {"msgName": "session_exit", "exitStatus": 1}, sendts=T0))
    harness.handle(make_notice(40, STARTED, sendts=T0 + 1))
    assert [d.json["text"].split()[1] for d in fake_sinks.deliveries("chat")] == [
        "*ERROR*", "*RESOLVED*"
    ]
    assert fake_sinks.deliveries("pd") == []
    assert fake_sinks.deliveries("ops") == []


# --- retries and failures ------------------------------------------------------------------


def test_retry_after_a_partial_failure_sends_only_to_the_failed_sink(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice
) -> None:
    fake_sinks.script("pd", 500)
    command = harness.decide(make_notice(1, FATAL, sendts=T0))
    assert command is not None
    with pytest.raises(TransientError, match=r"'pd' \(pagerduty\): HTTP 500"):
        harness.run(command)
    assert harness.published == []  # nothing is committed on a transient failure

    effects = harness.run(command)  # the runtime retries the same command
    assert len(fake_sinks.deliveries("ops")) == 1
    assert len(fake_sinks.attempts("pd")) == 2
    assert len(fake_sinks.deliveries("pd")) == 1
    [alert_state] = [v for k, v in effects.state.items() if k.startswith("alerts/")]
    [incident] = alert_state["incidents"].values()  # type: ignore[index]
    assert incident["sinks"] == ["ops", "pd"]


def test_redecided_record_is_not_sent_twice(
    harness: Harness, fake_sinks: FakeSinks, make_body: Callable[..., bytes],
    make_received: Callable[..., Received],
) -> None:
    """After a rewind the runtime decides the record again from the committed state."""
    body = make_body(1, FATAL, sendts=T0)
    fake_sinks.script("pd", 503)
    first = harness.decide(make_received(body))
    assert first is not None
    with pytest.raises(TransientError):
        harness.run(first)
    again = harness.decide(make_received(body))
    assert again is not None
    harness.run(again)
    assert len(fake_sinks.deliveries("ops")) == 1
    assert len(fake_sinks.deliveries("pd")) == 1


def test_a_sink_that_keeps_failing_is_retried_alone(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice
) -> None:
    fake_sinks.fail_always("pd", 500)
    command = harness.decide(make_notice(1, FATAL, sendts=T0))
    assert command is not None
    for _ in range(3):
        with pytest.raises(TransientError):
            harness.run(command)
    assert len(fake_sinks.attempts("ops")) == 1
    assert len(fake_sinks.attempts("pd")) == 3


def test_permanent_failure_is_action_failed_and_still_publishes(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice
) -> None:
    fake_sinks.fail_always("pd", 400)
    shot = {"msgName": "uploaded", "status": 0, "fileList": [{"fileName": MP4}]}
    harness.handle(make_notice(31, shot, sendts=T0 - 10_000))  # records flow regardless
    command = harness.decide(make_notice(1, FATAL, sendts=T0))
    assert command is not None
    with pytest.raises(ActionFailed, match=r"'pd' \(pagerduty\): HTTP 400") as caught:
        harness.run(command)
    effects = caught.value.effects
    [outcome] = [json.loads(o.value) for o in effects.outputs if o.topic == TOPICS.actions]
    assert outcome["outcome"] == "failed"
    assert outcome["alerts"][0]["delivered"] == ["ops"]
    assert outcome["alerts"][0]["failed"] == ["pd"]

    # Committed as an open incident: a duplicate sends nothing, the resolve goes to ops only.
    assert harness.decide(make_notice(1, FATAL, notice_id="dup", sendts=T0)) is None
    fake_sinks.heal("pd")
    harness.handle(make_notice(40, STARTED, sendts=T0 + 10))
    assert len(fake_sinks.attempts("pd")) == 1
    assert [d.json["type"] for d in fake_sinks.deliveries("ops")] == [
        "agora.alert.triggered", "agora.alert.resolved"
    ]


def test_permanent_and_transient_together_retry_only_the_transient(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice
) -> None:
    fake_sinks.fail_always("ops", 410)
    fake_sinks.script("pd", 502)
    command = harness.decide(make_notice(1, FATAL, sendts=T0))
    assert command is not None
    with pytest.raises(TransientError):
        harness.run(command)
    with pytest.raises(ActionFailed, match="'ops'"):
        harness.run(command)
    assert len(fake_sinks.attempts("ops")) == 1
    assert len(fake_sinks.deliveries("pd")) == 1


def test_records_that_sent_alerts_ask_for_an_immediate_commit(
    harness: Harness, make_notice: Notice
) -> None:
    files_only = harness.handle(make_notice(31, uploaded(MP4), sendts=T0 - 1))
    alerted = harness.handle(make_notice(1, FATAL, sendts=T0))
    assert files_only is not None
    assert alerted is not None
    assert files_only.commit_now is False
    assert alerted.commit_now is True


def test_a_retry_plans_against_the_state_another_input_changed_meanwhile(
    harness: Harness, fake_sinks: FakeSinks, make_body: Callable[..., bytes],
    make_action_record: Callable[..., Any],
) -> None:
    """The runtime decides each attempt again (``decide_each_attempt``): a callback waiting
    for pd must not write back the channel state it read before an outcome record of the
    same channel opened another incident."""
    body = make_body(1, FATAL, sendts=T0)
    work = work_from_record("notify", TOPICS.events, 0, 5, CNAME.encode(), body, ())
    fake_sinks.script("pd", 503)
    assert isinstance(attempt(harness.action, work, harness.state), Transient)
    harness.handle(make_action_record(
        {"handler": "whiteboard", "action": "screenshot-list", "outcome": "failed",
         "alert": True, "cname": CNAME, "at": T0 + 1}))

    result = attempt(harness.action, work, harness.state)
    assert isinstance(result, Handled)
    harness.state.apply(result.effects)
    incidents = harness.state.entries[f"alerts/{CNAME}"]["incidents"]
    assert sorted(i["rule"] for i in incidents.values()) == ["fatal-error", "whiteboard-failed"]
    assert len(fake_sinks.deliveries("ops")) == 2  # one trigger per incident, ops not resent
    assert len(fake_sinks.deliveries("pd")) == 1


# --- action records ------------------------------------------------------------------------


def test_restart_gave_up_alerts_once_and_restart_success_resolves(
    harness: Harness, fake_sinks: FakeSinks, make_action_record: Callable[..., Any]
) -> None:
    gave_up = {"action": "restart", "outcome": "gave_up", "alert": True, "cname": CNAME,
               "sid": SID, "error": "3 restarts in 600 s", "at": T0}
    harness.handle(make_action_record(gave_up))
    assert harness.decide(make_action_record({**gave_up, "at": T0 + 1})) is None
    [page] = fake_sinks.deliveries("pd")
    assert page.json["payload"]["summary"].startswith("restart-gave-up: restart gave_up")
    assert page.json["payload"]["component"] == "restart"
    assert len(fake_sinks.deliveries("chat")) == 1

    restarted = {"action": "restart", "outcome": "restarted", "cname": CNAME, "sid": "s2",
                 "at": T0 + 5000}
    harness.handle(make_action_record(restarted))
    assert [d.json["event_action"] for d in fake_sinks.deliveries("pd")] == ["trigger", "resolve"]
    assert "RESOLVED" in fake_sinks.deliveries("chat")[-1].json["text"]


def test_upload_of_the_dead_session_does_not_resolve_a_gave_up(
    harness: Harness, fake_sinks: FakeSinks, make_notice: Notice,
    make_action_record: Callable[..., Any],
) -> None:
    harness.handle(make_notice(1, FATAL, sendts=T0))
    harness.handle(make_action_record({"action": "restart", "outcome": "gave_up", "alert": True,
                                       "cname": CNAME, "sid": SID, "at": T0 + 1000}))
    harness.handle(make_notice(31, uploaded(MP4), sendts=T0 + 2000))
    # The session's files are safe: its fatal error resolves, the channel is still down.
    pages = fake_sinks.deliveries("pd")
    assert [d.json["event_action"] for d in pages] == ["trigger", "trigger", "resolve"]
    assert pages[2].json["dedup_key"] == pages[0].json["dedup_key"]
    harness.handle(make_notice(40, STARTED, sid="s2", sendts=T0 + 3000))
    assert [d.json["event_action"] for d in fake_sinks.deliveries("pd")][3:] == ["resolve"]
    assert "RESOLVED" in fake_sinks.deliveries("chat")[-1].json["text"]


def test_whiteboard_failure_record_alerts(
    harness: Harness, fake_sinks: FakeSinks, make_action_record: Callable[..., Any]
) -> None:
    failure = {"schema_version": "1", "handler": "whiteboard", "action": "screenshot-list",
               "outcome": "failed", "alert": True, "cname": CNAME, "sid": SID,
               "noticeId": "n1", "eventType": 11, "status": 403, "error": "forbidden",
               "at": "2023-11-14T22:13:20.000Z"}
    runtime_failed = {"action": "whiteboard", "outcome": "failed", "cname": CNAME,
                      "attempts": 1, "duration_ms": 3.0, "at": T0, "source": "e/0/1"}
    harness.handle(make_action_record(failure))
    assert harness.decide(make_action_record(runtime_failed)) is None  # same incident
    [hook] = fake_sinks.deliveries("ops")
    assert hook.problems == ()
    assert hook.json["data"]["details"]["status"] == 403


def test_records_of_notify_itself_and_plain_outcomes_are_ignored(
    harness: Harness, make_action_record: Callable[..., Any]
) -> None:
    own = {"handler": "notify", "action": "alert", "outcome": "failed", "alert": True,
           "cname": CNAME}
    runtime_own = {"action": "notify", "outcome": "failed", "cname": CNAME, "at": T0}
    ok = {"action": "restart", "outcome": "ok", "cname": CNAME, "at": T0}
    for value in (own, runtime_own, ok):
        assert harness.decide(make_action_record(value)) is None
    assert harness.decide(make_action_record({"no": "outcome"})) is None


def test_the_record_key_names_the_channel_when_the_value_does_not(
    harness: Harness, fake_sinks: FakeSinks, make_action_record: Callable[..., Any]
) -> None:
    harness.handle(make_action_record({"action": "restart", "outcome": "gave up"}, key="k-9"))
    [page] = fake_sinks.deliveries("pd")
    assert page.json["payload"]["source"] == "k-9"
    assert harness.decide(make_action_record({"action": "restart", "outcome": "gave up"},
                                             key=None)) is None


# --- secrets and wiring --------------------------------------------------------------------


def test_secrets_never_leave_in_outputs_state_or_errors(
    harness: Harness, fake_sinks: FakeSinks, env: dict[str, str], make_notice: Notice,
    make_action_record: Callable[..., Any],
) -> None:
    fake_sinks.script("chat", 500)
    harness.handle(make_notice(1, FATAL, sendts=T0))
    command = harness.decide(make_notice(11, {"msgName": "session_exit", "exitStatus": 1},
                                         sendts=T0))
    assert command is not None
    with pytest.raises(TransientError):
        harness.run(command)
    harness.run(command)
    fake_sinks.fail_always("pd", 403)
    with pytest.raises(ActionFailed):
        harness.handle(make_action_record({"action": "restart", "outcome": "gave_up",
                                           "cname": CNAME, "at": T0}))
    fake_sinks.heal("pd")
    harness.handle(make_notice(40, STARTED, sendts=T0 + 1))

    published = b"\n".join(
        o.value + json.dumps(dict(o.headers)).encode()
        for e in harness.published for o in e.outputs
    )
    stored = json.dumps(harness.state.entries).encode()
    errors = "\n".join(harness.errors).encode()
    assert len(harness.errors) == 2
    secrets = [OPS_SECRET, OPS_SECRET.removeprefix("whsec_"), PD_KEY,
               fake_sinks.slack_token("chat"), env["OPS_URL"], env["SLACK_URL"], env["PD_URL"]]
    for secret in secrets:
        for where in (published, stored, errors):
            assert secret.encode() not in where
    # Only PagerDuty itself gets its routing key; no sink gets another's secret.
    assert PD_KEY.encode() not in b"".join(a.body for a in fake_sinks.attempts("ops"))


def test_the_action_fits_the_runtime_contract(env: dict[str, str]) -> None:
    rules = parse_rules(RULES_TOML, env)
    action = build_notify_action(HandlerSettings(), rules)
    contract: Action[NotifyCommand] = action  # mypy checks the protocol here
    assert contract.name == "notify"
    assert action.extra_inputs == ("actions",)
    assert action.decide_each_attempt is True
    action.close()


def test_a_sink_that_can_never_deliver_fails_at_start(env: dict[str, str]) -> None:
    rules = parse_rules(RULES_TOML, {**env, "OPS_SECRET": "whsec_***"})
    with pytest.raises(SinkConfigError, match="'ops'"):
        NotifyAction(alerts=rules.alerts, topics=TOPICS, client=httpx.Client())
    with pytest.raises(ConfigError, match=r"alerts\.sinks: .*'ops'") as caught:
        build_notify_action(HandlerSettings(), rules)
    assert "***" not in str(caught.value)


def test_the_registry_builds_the_action(env: dict[str, str]) -> None:
    context = ActionContext(HandlerSettings(), rules_config=parse_rules(RULES_TOML, env))
    action = default_registry().create("notify", context)
    assert isinstance(action, NotifyAction)
    action.close()
    empty = default_registry().create("notify", ActionContext(HandlerSettings()))
    assert isinstance(empty, NotifyAction)
    empty.close()


def test_the_console_health_check_triggers_no_alert_and_no_file_record(
    harness: Harness, make_notice: Notice,
) -> None:
    """The console's "Check" sends synthetic callbacks on channel test_webhook (facts
    1.1): published by the webhook, never acted on."""
    assert harness.decide(make_notice(1, FATAL)) is not None  # a real channel alerts
    assert harness.decide(make_notice(1, FATAL, cname="test_webhook")) is None
    assert harness.decide(make_notice(31, uploaded("a.m3u8"), cname="test_webhook")) is None
