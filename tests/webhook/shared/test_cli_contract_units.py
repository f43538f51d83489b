"""Pure parts of the operator commands: time arguments, the broker address check,
environment variable names in errors, replay positions, and configuration errors never
classed as transient."""

from __future__ import annotations

import io

import pytest
from pydantic import SecretStr, ValidationError

from handlers.progress import TerminalProgress
from handlers.runtime.replay import (
    Position,
    _Coverage,
    advance,
    decode_settled,
    encode_settled,
    parse_letter_id,
)
from handlers.settings import HandlerSettings, WhiteboardSettings
from handlers.timeargs import parse_time
from handlers.whiteboard.client import HttpWhiteboardClient, WhiteboardError
from handlers.whiteboard.tokens import StaticToken
from webhook.shared.cli_contract import ConfigurationError, bootstrap_addresses, settings_problems

NOW = 1_796_000_000_000


@pytest.mark.parametrize(("text", "expected"), [
    ("15m", NOW - 15 * 60_000),
    ("2h", NOW - 2 * 3_600_000),
    ("7d", NOW - 7 * 86_400_000),
    ("90s", NOW - 90_000),
    ("2026-12-02T20:15:00Z", 1796242500000),
    ("2026-12-02T20:15:00", 1796242500000),
    ("2026-12-02T21:15:00+01:00", 1796242500000),
    ("1796242500000", 1796242500000),
])
def test_time_arguments(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "15", "-2h", "2026-13-01", ""])
def test_bad_time_arguments_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected an ISO 8601 time"):
        parse_time(text, NOW)


def test_bootstrap_addresses() -> None:
    assert bootstrap_addresses("a:9092, b:9093") == [("a", 9092), ("b", 9093)]
    assert bootstrap_addresses("[::1]:9092") == [("::1", 9092)]
    for bad in ("kafka", "kafka:", "kafka:99999", ":9092", " , "):
        with pytest.raises(ConfigurationError, match="KAFKA_BOOTSTRAP_SERVERS"):
            bootstrap_addresses(bad)


def test_settings_errors_name_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGORA_HANDLERS_MAX_ATTEMPTS", "0")
    monkeypatch.setenv("AGORA_LOG_LEVEL", "INFO")
    with pytest.raises(ValidationError) as caught:
        HandlerSettings()
    assert settings_problems(caught.value) == [
        "AGORA_HANDLERS_MAX_ATTEMPTS: Input should be greater than or equal to 1"]
    monkeypatch.delenv("AGORA_HANDLERS_MAX_ATTEMPTS")
    monkeypatch.setenv("WHITEBOARD_API_BASE", "https//secret-value")
    with pytest.raises(ValidationError) as caught:
        WhiteboardSettings()
    (problem,) = settings_problems(caught.value)
    assert problem.startswith("WHITEBOARD_API_BASE: Value error, expected an absolute http")
    assert "secret-value" not in problem


def test_a_bad_whiteboard_base_is_not_retried() -> None:
    # Settings refuse it at load; a client built around them still never calls it
    # transient (retrying cannot fix a scheme).
    client = HttpWhiteboardClient("ftp://x", StaticToken(SecretStr("t")), default_region="us-sv")
    with client, pytest.raises(WhiteboardError) as caught:
        client.room("room-1")
    assert caught.value.retryable is False
    assert "bad API base URL" in str(caught.value)


def test_settled_offsets_round_trip_as_ranges() -> None:
    assert encode_settled([7, 3, 8, 9, 12]) == "settled:3,7-9,12"
    assert decode_settled("settled:3,7-9,12") == {3, 7, 8, 9, 12}
    assert decode_settled("") == frozenset()
    assert decode_settled(None) == frozenset()
    assert encode_settled([]) == ""


def test_positions_move_only_over_what_was_read() -> None:
    # Letters of this handler at 0, 2, 5 (others in between); 2 settled by a filter.
    position = advance(Position(), [2], _Coverage(0, 6), seen=[0, 2, 5])
    assert position == Position(0, frozenset({2}))
    assert [position.pending(o) for o in (0, 2, 5)] == [True, False, True]
    # Then 0 settled: the watermark moves to the first pending letter (5).
    position = advance(position, [0], _Coverage(0, 6), seen=[0, 2, 5])
    assert position == Position(5, frozenset())
    # A read that started above the watermark (--since) only lists what it settled.
    position = advance(Position(5), [9], _Coverage(8, 10), seen=[9])
    assert position == Position(5, frozenset({9}))
    # Everything of the handler up to the end settled: past the last one.
    assert advance(Position(5, frozenset({9})), [5], _Coverage(0, 12), seen=[5, 9]) == (
        Position(10, frozenset()))


def test_letter_ids() -> None:
    assert parse_letter_id("agora.dlq/2/17", "agora.dlq") == (2, 17)
    for bad in ("agora.dlq/2", "other/2/17", "agora.dlq/x/1", "17"):
        with pytest.raises(ValueError, match=r"expected agora\.dlq/PARTITION/OFFSET"):
            parse_letter_id(bad, "agora.dlq")


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_is_drawn_on_a_terminal_only_and_erased() -> None:
    terminal = _Terminal(tty=True)
    with TerminalProgress(terminal, interval_s=0) as progress:
        progress("agora.ncs.events", 10, 100)  # too short a read to bother
        progress("agora.ncs.events", 1500, 6000)
    assert terminal.getvalue() == (
        "\rreading agora.ncs.events: 1500/6000 records (25%)\033[K\r\033[K")
    pipe = _Terminal(tty=False)
    with TerminalProgress(pipe, interval_s=0) as progress:
        progress("agora.ncs.events", 1500, 6000)
    assert pipe.getvalue() == ""
