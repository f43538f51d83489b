"""Fixtures that start the fakes of :mod:`handlers.testing` for one test and stop them after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fake_whiteboard import FakeWhiteboard
from webhook.shared.clock import FakeClock, SystemClock


@pytest.fixture
def fake_agora() -> Iterator[FakeAgora]:
    """A started fake with a ``FakeClock`` (advance it with ``fake_agora.clock.advance``)."""
    with FakeAgora(clock=FakeClock()) as fake:
        yield fake


@pytest.fixture
def live_agora() -> Iterator[FakeAgora]:
    """A started fake on the system clock, for tests where other processes (the webhook,
    the handlers) talk to it in real time."""
    with FakeAgora(clock=SystemClock()) as fake:
        yield fake


@pytest.fixture
def fake_whiteboard() -> Iterator[FakeWhiteboard]:
    """A started fake with no rooms; add them with ``add_room``."""
    with FakeWhiteboard() as fake:
        yield fake


@pytest.fixture
def fake_sinks() -> Iterator[FakeSinks]:
    """A started :class:`FakeSinks`, stopped after the test."""
    with FakeSinks() as fake:
        yield fake
