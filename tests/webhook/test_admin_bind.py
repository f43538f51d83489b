"""The admin bind's routing rule and settings (pure); the real split is exercised under
gunicorn in tests/faults/test_readiness_off_request_path.py."""

from __future__ import annotations

import pytest

from webhook.admin import served_here
from webhook.settings import ServeSettings


@pytest.mark.parametrize(
    ("path", "on_admin", "served"),
    [
        ("/ncs", False, True),
        ("/ncs", True, False),
        ("/metrics", False, False),
        ("/metrics", True, True),
        ("/readyz", False, False),
        ("/readyz", True, True),
        ("/healthz", False, True),
        ("/healthz", True, True),
    ],
)
def test_each_listener_answers_only_its_paths(path: str, on_admin: bool, served: bool) -> None:
    assert served_here(path, on_admin) is served


def test_the_admin_bind_needs_its_own_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGORA_WEBHOOK_ADMIN_BIND", "127.0.0.1:8080")
    with pytest.raises(ValueError, match="AGORA_WEBHOOK_ADMIN_BIND"):
        ServeSettings().check_binds("0.0.0.0:8080")
    ServeSettings().check_binds("0.0.0.0:8081")
    assert ServeSettings().admin_port() == "8080"


def test_no_admin_bind_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGORA_WEBHOOK_ADMIN_BIND", "")
    assert ServeSettings().admin_port() is None
