"""Keeps the operators' endpoints off the callback port when ``AGORA_WEBHOOK_ADMIN_BIND``
is set: gunicorn listens on both addresses, and this WSGI wrapper tells them apart by the
listener's port (``SERVER_PORT``), so ``/metrics`` and ``/readyz`` answer only there and
``/ncs`` answers only on the callback bind. ``/healthz`` answers on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

ADMIN_PATHS = frozenset({"/metrics", "/readyz"})
BOTH_PATHS = frozenset({"/healthz"})

_NOT_FOUND = b'{"error":"not_found","detail":"not served on this address"}'


def served_here(path: str, on_admin: bool) -> bool:
    """Pure routing rule: which paths a listener answers."""
    if path in BOTH_PATHS:
        return True
    return (path in ADMIN_PATHS) == on_admin


class AdminSplit:
    def __init__(self, app: Callable[..., Iterable[bytes]], admin_port: str) -> None:
        self._app = app
        self._admin_port = admin_port

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        on_admin = str(environ.get("SERVER_PORT")) == self._admin_port
        if served_here(environ.get("PATH_INFO", ""), on_admin):
            return self._app(environ, start_response)
        start_response(
            "404 NOT FOUND",
            [("Content-Type", "application/json"), ("Content-Length", str(len(_NOT_FOUND)))],
        )
        return [_NOT_FOUND]
