from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from handlers.action_contract import (
    ActionFailed,
    Effects,
    InvalidEvent,
    Received,
    StateView,
    TransientError,
)
from handlers.runtime.dispatch import (
    Handled,
    Invalid,
    Transient,
    Work,
    attempt,
    skipped_by_type,
    work_from_record,
)
from handlers.runtime.dlq import REPLAY_FOR
from handlers.testing.ncs_callbacks import callback_body


class EmptyState:
    def get(self, key: str) -> None:
        return None


@dataclass
class Scripted:
    """decide raises ``decide_error`` if set; run raises ``run_error`` or returns ``result``."""

    decide_error: BaseException | None = None
    run_error: BaseException | None = None
    command: Any = "cmd"
    result: Any = field(default_factory=Effects)
    name: str = "t"
    decided: int = 0
    ran: int = 0

    def decide(self, event: Received, state: StateView) -> Any:
        self.decided += 1
        if self.decide_error:
            raise self.decide_error
        return self.command

    def run(self, command: Any) -> Effects:
        self.ran += 1
        if self.run_error:
            raise self.run_error
        return self.result  # type: ignore[no-any-return]


def work(value: bytes | None = None, headers: tuple[tuple[str, bytes], ...] = ()) -> Work:
    body = callback_body(cname="c1") if value is None else value
    return work_from_record("t", "events", 0, 5, b"c1", body, headers)


def test_a_record_is_decoded_into_received() -> None:
    w = work(headers=(("noticeId", b"n1"), ("sid", b"s1")))
    assert w.received is not None
    assert w.received.key == "c1"
    assert w.received.headers == {"noticeId": "n1", "sid": "s1"}
    assert w.received.notification.payload.cname == "c1"
    assert w.log_context == {
        "handler": "t", "noticeId": "n1", "cname": "c1", "sid": "s1", "source": "events/0/5",
    }
    assert not w.replayed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"{nope", "InvalidEvent: EventError: invalid notification: body is not valid JSON"),
        (b'{"noticeId": "x"}', "InvalidEvent: EventError: invalid notification: productId"),
        (b"\xff\xfe", "InvalidEvent: EventError: invalid notification"),
    ],
)
def test_an_undecodable_record_is_invalid(value: bytes, expected: str) -> None:
    w = work(value)
    assert w.received is None
    result = attempt(Scripted(), w, EmptyState())
    assert isinstance(result, Invalid)
    assert result.error.startswith(expected)
    assert w.attempts == 0


def test_a_tombstone_is_invalid() -> None:
    w = work_from_record("t", "events", 0, 1, b"k", None, ())
    assert w.parse_error == "InvalidEvent: ValueError: the record has no value (tombstone)"


def test_ok_ignored_and_failed() -> None:
    effects = Effects(state={"k": {"v": 1}})
    assert attempt(Scripted(result=effects), work(), EmptyState()) == Handled("ok", effects)
    assert attempt(Scripted(command=None), work(), EmptyState()) == Handled("ignored", Effects())
    failed = ActionFailed("404 room not found", effects)
    assert attempt(Scripted(run_error=failed), work(), EmptyState()) == Handled(
        "failed", effects, "ActionFailed: 404 room not found"
    )


@pytest.mark.parametrize("where", ["decide", "run"])
def test_exceptions_route_the_record(where: str) -> None:
    def scripted(error: BaseException) -> Scripted:
        if where == "decide":
            return Scripted(decide_error=error)
        return Scripted(run_error=error)

    assert attempt(scripted(InvalidEvent("bad")), work(), EmptyState()) == Invalid(
        "InvalidEvent: bad"
    )
    assert attempt(scripted(TransientError("503", 7.5)), work(), EmptyState()) == Transient(
        "TransientError: 503", 7.5
    )
    # A bug is retried (then dead-lettered), never dropped.
    assert attempt(scripted(KeyError("x")), work(), EmptyState()) == Transient("KeyError: 'x'")


def test_a_retry_reuses_the_decided_command() -> None:
    action = Scripted(run_error=TransientError("timeout"))
    w = work()
    attempt(action, w, EmptyState())
    action.run_error = None
    assert attempt(action, w, EmptyState()) == Handled("ok", Effects())
    assert (action.decided, action.ran, w.attempts) == (1, 2, 2)


def test_run_must_return_effects() -> None:
    result = attempt(Scripted(result={"not": "effects"}), work(), EmptyState())
    assert result == Transient("TypeError: run returned dict, expected Effects")


def test_replays_are_marked() -> None:
    assert work(headers=(("replay-for", b"t"),)).replayed


@pytest.mark.parametrize(("event_types", "headers", "skipped"), [
    (None, (("eventType", b"40"),), False),
    (frozenset({11}), (("eventType", b"40"),), True),
    (frozenset({11}), (("eventType", b"11"),), False),
    (frozenset({11}), (), False),
    (frozenset({11}), (("eventType", b"x"),), False),
    (frozenset({11}), (("eventType", b"40"), (REPLAY_FOR, b"restart")), False),
], ids=["undeclared", "other type", "declared type", "no header", "unreadable header",
        "dlq replay"])
def test_only_callbacks_of_other_declared_types_are_skipped_unread(
    event_types: frozenset[int] | None, headers: tuple[tuple[str, bytes], ...], skipped: bool
) -> None:
    assert skipped_by_type(event_types, headers) is skipped
