"""Whiteboard tests start from a known environment: no WHITEBOARD_* variable leaks in."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_whiteboard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("WHITEBOARD_"):
            monkeypatch.delenv(name)
