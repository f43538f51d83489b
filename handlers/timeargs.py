"""``--since``/``--until`` values of the operator commands: a time, or how long ago."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import click

_AGO = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EXPECTED = (
    "expected an ISO 8601 time (2026-12-02T20:15:00Z; no zone = UTC), a duration ago "
    "(90s, 15m, 2h, 7d) or milliseconds since the epoch"
)


def parse_time(text: str, now_ms: int) -> int:
    """Milliseconds since the epoch; ValueError with :data:`EXPECTED` otherwise."""
    value = text.strip()
    ago = _AGO.match(value)
    if ago:
        return now_ms - int(ago.group(1)) * _UNIT_S[ago.group(2)] * 1000
    if value.isdigit() and len(value) >= 10:
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(EXPECTED) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def format_ms(ms: int) -> str:
    """``2026-12-02T20:15:00.123Z``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class TimeParam(click.ParamType[int]):
    """A click option value parsed by :func:`parse_time` (to ms since the epoch)."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_time(str(value), int(time.time() * 1000))
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


TIME = TimeParam()


def check_range(since_ms: int | None, until_ms: int | None) -> None:
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise click.BadParameter("must be later than --since", param_hint="--until")


def until_after_since(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Option callback of ``--until`` (with ``--since`` declared ``is_eager``): refused at
    parse time, before anything is read."""
    check_range(ctx.params.get("since_ms"), value)
    return value
