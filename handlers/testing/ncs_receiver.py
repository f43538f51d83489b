"""A stand-in NCS receiver: a real HTTP server on loopback that checks both Agora signatures
over the exact raw bytes (computed here with hashlib, independently of webhook.shared.signature),
records every request, and answers with a configurable status."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    body: bytes
    path: str
    content_type: str | None
    v1_valid: bool
    v2_valid: bool


class NcsReceiver:
    """``status_for(body)`` picks the answer; 200 by default."""

    def __init__(self, secret: str, status_for: Callable[[bytes], int] = lambda _: 200) -> None:
        self.secret = secret
        self.status_for = status_for
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._record(self.path, body, self.headers.get("Content-Type"),
                                 self.headers.get("Agora-Signature"),
                                 self.headers.get("Agora-Signature-V2"))
                status = receiver.status_for(body)
                answer = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/ncs"

    def _record(
        self, path: str, body: bytes, content_type: str | None, v1: str | None, v2: str | None
    ) -> None:
        key = self.secret.encode()
        v1_expected = hmac.new(key, body, hashlib.sha1).hexdigest()
        v2_expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        delivery = Delivery(
            body=body,
            path=path,
            content_type=content_type,
            v1_valid=v1 is not None and hmac.compare_digest(v1, v1_expected),
            v2_valid=v2 is not None and hmac.compare_digest(v2, v2_expected),
        )
        with self._lock:
            self._deliveries.append(delivery)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._deliveries)

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def running_receiver(
    secret: str, status_for: Callable[[bytes], int] = lambda _: 200
) -> Iterator[NcsReceiver]:
    receiver = NcsReceiver(secret, status_for)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
