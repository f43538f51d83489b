"""Figures printed by fault scenarios and soak tests.

A scenario calls ``figure("broker restart under load", answered_200=..., on_topic=...)``; the
figures are printed as the scenario runs (visible with ``-s``) and again, all together, in the
terminal summary so a plain ``pytest`` run (CI) shows them too.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_FIGURES: list[str] = []

Figure = Callable[..., None]


def _format(scenario: str, values: dict[str, object]) -> str:
    parts = ", ".join(f"{name}={value}" for name, value in values.items())
    return f"{scenario}: {parts}"


@pytest.fixture
def figure() -> Figure:
    def record(scenario: str, **values: object) -> None:
        line = _format(scenario, values)
        _FIGURES.append(line)
        print(f"\nFIGURE {line}", flush=True)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("scenario figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
