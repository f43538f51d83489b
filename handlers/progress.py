"""Progress of long reads, on a terminal only: pipes and logs get the results alone."""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIN_TOTAL = 2000
"""Reads shorter than this finish too fast to need a progress line."""


class TerminalProgress:
    """``progress(label, done, total)`` drawing one self-erasing line on stderr."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.enabled = self.stream.isatty()
        self._last = 0.0
        self._drawn = False

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or total < MIN_TOTAL or now - self._last < self.interval_s:
            return
        self._last = now
        percent = 100 * done // max(total, 1)
        self.stream.write(f"\rreading {label}: {done}/{total} records ({percent}%)\033[K")
        self.stream.flush()
        self._drawn = True

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
