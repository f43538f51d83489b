"""Attack 6 (metrics server): it listened on every interface and 200 half-open requests held
202 threads. Against the real HealthServer and the real ``agora-events handlers`` option."""

from __future__ import annotations

import socket
import threading
import time

import httpx
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from handlers.cli import handlers_command
from handlers.runtime.health import MAX_CONNECTIONS, HealthServer, Liveness
from handlers.settings import HandlerSettings


def _server(**options: float) -> HealthServer:
    return HealthServer(CollectorRegistry(), Liveness(60), "127.0.0.1", 0, **options).start()  # type: ignore[arg-type]


def test_half_open_requests_cannot_pile_up_threads() -> None:
    server = _server(timeout_s=1.0, max_connections=8)
    before = threading.active_count()
    sockets = []
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            sockets.append(sock)
        time.sleep(0.5)
        assert threading.active_count() - before <= 8
        # Each held connection is dropped once its time to send the request is up.
        time.sleep(1.5)
        assert sockets[0].recv(1024) == b""
        answer = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert answer.status_code == 200
    finally:
        for sock in sockets:
            sock.close()
        server.close()


def test_defaults_are_bounded() -> None:
    assert MAX_CONNECTIONS <= 32
    server = _server()
    try:
        assert server._server.server_address[0] == "127.0.0.1"
    finally:
        server.close()


def test_the_handlers_command_listens_on_loopback_by_default() -> None:
    assert HandlerSettings().metrics_host == "127.0.0.1"
    help_text = CliRunner().invoke(handlers_command, ["--help"]).output
    assert "AGORA_HANDLERS_METRICS_HOST" in help_text
