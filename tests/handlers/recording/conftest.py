"""Fixtures of the restart tests."""

from collections.abc import Iterator

import pytest
from support.restart_env import close_clients


@pytest.fixture(autouse=True)
def _close_action_clients() -> Iterator[None]:
    yield
    close_clients()
