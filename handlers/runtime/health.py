"""Liveness of the handler process: a health file and ``/healthz`` next to ``/metrics``.

Every action's poll loop calls :meth:`Liveness.beat` once per turn. The process is live
while every registered loop has turned within ``stale_after_s`` (default: the consumer's
``max.poll.interval.ms``, past which Kafka would evict it from its group anyway). A loop
stuck in a hung remote call, or dead, makes the process stale.

Two probes read that:

- the health file (``AGORA_HANDLERS_HEALTH_FILE``): touched (mtime updated) at most once
  a second while live. An exec probe such as
  ``test $(( $(date +%s) - $(stat -c %Y FILE) )) -lt 60`` detects a stale process.
- ``GET /healthz`` on the metrics port (``AGORA_HANDLERS_METRICS_PORT``; 0 disables the
  server): 200 ``{"status": "ok"}`` or 503 ``{"status": "stale", "stale": [...]}``
  naming the stale actions. ``GET /metrics`` serves the Prometheus exposition.

The server listens on 127.0.0.1 unless told otherwise (``AGORA_HANDLERS_METRICS_HOST``),
gives every connection :data:`REQUEST_TIMEOUT_S` to send its request, and serves at most
:data:`MAX_CONNECTIONS` at once (more are closed at once): slow or half-open clients cannot
pile up threads in the handlers process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Liveness:
    """Heartbeats of the poll loops of one process. Thread-safe."""

    def __init__(
        self,
        stale_after_s: float,
        health_file: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stale_after_s = stale_after_s
        self._health_file = health_file
        self._monotonic = monotonic
        self._beats: dict[str, float] = {}
        self._stopped: set[str] = set()
        self._last_touch = float("-inf")
        self._lock = threading.Lock()

    def register(self, name: str) -> None:
        with self._lock:
            self._beats[name] = self._monotonic()

    def stopped(self, name: str) -> None:
        """The loop ended on purpose (shutdown): its silence is not staleness."""
        with self._lock:
            self._stopped.add(name)

    def beat(self, name: str) -> None:
        now = self._monotonic()
        with self._lock:
            self._beats[name] = now
            touch = not self._stale_locked(now) and now - self._last_touch >= 1.0
            if touch:
                self._last_touch = now
        if touch and self._health_file is not None:
            self._health_file.touch()

    def stale(self) -> list[str]:
        with self._lock:
            return self._stale_locked(self._monotonic())

    def _stale_locked(self, now: float) -> list[str]:
        return sorted(
            name
            for name, at in self._beats.items()
            if name not in self._stopped and now - at > self._stale_after_s
        )


REQUEST_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 16


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, but never more than ``max_connections`` of them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class HealthServer:
    """``/metrics`` and ``/healthz`` over HTTP, in a daemon thread; ``close`` stops it."""

    def __init__(
        self,
        registry: CollectorRegistry,
        liveness: Liveness,
        host: str,
        port: int,
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        handler = _handler_class(registry, liveness, timeout_s)
        self._server = _BoundedServer((host, port), handler, max_connections)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="handlers-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(
    registry: CollectorRegistry, liveness: Liveness, timeout_s: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = timeout_s  # socket timeout for reading the request and writing the answer

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                stale = liveness.stale()
                body = {"status": "stale", "stale": stale} if stale else {"status": "ok"}
                self._send(503 if stale else 200, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "application/json", b'{"error":"not found"}')

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes every few seconds would flood the log; stay quiet."""

    return Handler
