"""The per-channel incident state machine: open once, resolve on recovery, ignore stale
news. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.notify.incidents import Recovery, plan, record_deliveries
from handlers.notify.rules import Trigger, incident_key

SINKS = ("ops", "pd")


def trigger(
    rule: str = "fatal", sid: str | None = "s1", at: int | None = 100, kind: str = "event"
) -> Trigger:
    key_sid = sid if kind == "event" else None
    return Trigger(
        rule=rule, kind=kind, severity="error", sinks=SINKS,  # type: ignore[arg-type]
        incident=incident_key(rule, "c1", key_sid), sid=sid, summary=f"{rule} on c1",
        component="cloud-recording", alert_class="x", occurred_ms=at,
    )


def run_plan(
    current: dict[str, Any] | None,
    triggers: Sequence[Trigger] = (),
    recovery: Recovery | None = None,
    episode: str = "n1",
) -> Any:
    return plan(current, cname="c1", triggers=list(triggers), recovery=recovery, episode=episode,
                configured_sinks=SINKS)


def delivered_everywhere(state: dict[str, Any]) -> dict[str, Any]:
    return record_deliveries(state, {key: list(SINKS) for key in state["incidents"]})


def test_first_trigger_opens_an_incident_and_sends_a_trigger() -> None:
    result = run_plan(None, [trigger()])
    [alert] = result.alerts
    assert alert.transition == "trigger"
    assert alert.sinks == SINKS
    assert alert.episode == "n1"
    key = incident_key("fatal", "c1", "s1")
    assert result.state["incidents"][key]["sinks"] == []
    assert result.state["incidents"][key]["opened_ts"] == 100


def test_duplicates_of_an_open_incident_send_nothing() -> None:
    opened = delivered_everywhere(run_plan(None, [trigger()]).state)
    again = run_plan(opened, [trigger(at=100)], episode="n2")
    assert again.alerts == ()
    assert again.state is None
    later = run_plan(opened, [trigger(at=500)], episode="n3")
    assert later.alerts == ()


def test_another_session_is_another_incident() -> None:
    opened = run_plan(None, [trigger(sid="s1")]).state
    result = run_plan(opened, [trigger(sid="s2")], episode="n2")
    assert [a.incident for a in result.alerts] == [incident_key("fatal", "c1", "s2")]
    assert len(result.state["incidents"]) == 2


def test_recovery_resolves_to_the_sinks_that_got_the_trigger() -> None:
    opened = run_plan(None, [trigger()]).state
    opened = record_deliveries(opened, {incident_key("fatal", "c1", "s1"): ["pd"]})
    result = run_plan(opened, recovery=Recovery(ts=200, origin="noticeId r1"), episode="r1")
    [alert] = result.alerts
    assert alert.transition == "resolve"
    assert alert.sinks == ("pd",)
    assert alert.episode == "n1"  # the episode it resolves, so ids pair up
    assert alert.summary == "fatal on c1"
    assert result.state == {"recovered_ts": 200, "incidents": {}}


def test_a_recovery_older_than_the_incident_does_not_resolve_it() -> None:
    opened = delivered_everywhere(run_plan(None, [trigger(at=300)]).state)
    result = run_plan(opened, recovery=Recovery(ts=200, origin="old"))
    assert result.alerts == ()
    assert result.state["recovered_ts"] == 200
    assert incident_key("fatal", "c1", "s1") in result.state["incidents"]


def test_failure_older_than_the_last_recovery_opens_nothing() -> None:
    recovered = run_plan(None, recovery=Recovery(ts=200, origin="r")).state
    assert recovered == {"recovered_ts": 200, "incidents": {}}
    stale = run_plan(recovered, [trigger(at=150)])
    assert stale.alerts == ()
    assert stale.state is None
    fresh = run_plan(recovered, [trigger(at=250)])
    assert [a.transition for a in fresh.alerts] == ["trigger"]


def test_duplicate_arriving_after_the_resolve_does_not_reopen() -> None:
    opened = delivered_everywhere(run_plan(None, [trigger(at=100)]).state)
    resolved = run_plan(opened, recovery=Recovery(ts=200, origin="r")).state
    duplicate = run_plan(resolved, [trigger(at=100)], episode="n1-redundant")
    assert duplicate.alerts == ()


def test_a_new_failure_after_recovery_is_a_new_episode() -> None:
    opened = delivered_everywhere(run_plan(None, [trigger(at=100)], episode="n1").state)
    resolved = run_plan(opened, recovery=Recovery(ts=200, origin="r")).state
    again = run_plan(resolved, [trigger(at=300)], episode="n7")
    [alert] = again.alerts
    assert alert.episode == "n7"
    first = run_plan(None, [trigger(at=100)], episode="n1").alerts[0]
    assert alert.dedup_key == first.dedup_key
    assert alert.message_id != first.message_id


def test_unknown_times_never_block_an_alert_or_a_resolve() -> None:
    recovered = run_plan(None, recovery=Recovery(ts=200, origin="r")).state
    untimed = run_plan(recovered, [trigger(rule="gave-up", sid=None, at=None)])
    assert [a.transition for a in untimed.alerts] == ["trigger"]
    resolved = run_plan(untimed.state, recovery=Recovery(ts=None, origin="restarted"))
    assert [a.transition for a in resolved.alerts] == ["resolve"]
    assert resolved.state["recovered_ts"] == 200


def test_a_record_never_resolves_the_incident_it_triggers() -> None:
    opened = delivered_everywhere(run_plan(None, [trigger(at=100)]).state)
    both = run_plan(opened, [trigger(at=300)], recovery=Recovery(ts=300, origin="same"))
    assert both.alerts == ()


def test_sinks_no_longer_configured_are_skipped() -> None:
    result = plan(None, cname="c1", triggers=[trigger()], recovery=None, episode="n1",
                  configured_sinks=["pd"])
    assert result.alerts[0].sinks == ("pd",)


def test_a_session_recovery_resolves_only_that_sessions_event_incidents() -> None:
    opened = run_plan(None, [trigger(rule="fatal", sid="s1"), trigger(rule="fatal", sid="s2"),
                             trigger(rule="gave-up", sid="s1", kind="outcome")])
    state = delivered_everywhere(opened.state)
    uploaded = run_plan(state, recovery=Recovery(ts=200, origin="uploaded", sid="s1"))
    assert [a.incident for a in uploaded.alerts] == [incident_key("fatal", "c1", "s1")]
    assert set(uploaded.state["incidents"]) == {
        incident_key("fatal", "c1", "s2"), incident_key("gave-up", "c1", None)
    }
    # It says nothing about the channel: older failures of other sessions still alert.
    assert uploaded.state["recovered_ts"] is None
    other = run_plan(uploaded.state, [trigger(rule="fatal", sid="s3", at=150)])
    assert [a.transition for a in other.alerts] == ["trigger"]


def test_a_session_recovery_with_nothing_to_resolve_changes_nothing() -> None:
    result = run_plan(None, recovery=Recovery(ts=200, origin="uploaded", sid="s1"))
    assert result.state is None
    assert result.alerts == ()
