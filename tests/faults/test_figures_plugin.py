"""The figures plugin formats what scenarios report."""

from __future__ import annotations

from support.figures import Figure, _format


def test_figures_are_formatted_in_call_order() -> None:
    assert _format("broker restart", {"answered": 10, "on_topic": 10}) == (
        "broker restart: answered=10, on_topic=10"
    )


def test_the_fixture_prints_the_figure(figure: Figure, capsys: object) -> None:
    figure("example", lost=0)
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "FIGURE example: lost=0" in out
