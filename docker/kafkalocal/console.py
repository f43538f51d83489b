"""What the user sees: progress on stderr, the one-line error, log tails quoted in errors."""

from __future__ import annotations

import sys
from pathlib import Path

LOG_TAIL_LINES = 40


class LocalKafkaError(Exception):
    """A failure reported to the user as one clear line (plus any log tail) and exit status 1."""


def say(message: str) -> None:
    """Progress for humans; stdout stays reserved for the bootstrap line or the JSON object."""
    print(f"kafka_local: {message}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a text file ('' if missing)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return last_lines(text, lines)


def last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.splitlines()[-lines:])
