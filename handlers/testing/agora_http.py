"""The HTTP side of the fake Agora: the routes Agora serves, and a threaded server that
hands each request to a ``handle`` function and writes its :class:`Answer`."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from handlers.testing.agora_tasks import Answer

ENDPOINTS = ("acquire", "start", "query", "update", "updateLayout", "stop", "channel_users")
_MODES = "individual|mix|web"
ROUTES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("POST", "acquire", re.compile(r"/v1/apps/(?P<app>[^/]+)/cloud_recording/acquire")),
    ("POST", "start", re.compile(
        rf"/v1/apps/(?P<app>[^/]+)/cloud_recording/resourceid/(?P<rid>[^/]+)"
        rf"/mode/(?P<mode>{_MODES})/start")),
    *(
        (method, name, re.compile(
            rf"/v1/apps/(?P<app>[^/]+)/cloud_recording/resourceid/(?P<rid>[^/]+)"
            rf"/sid/(?P<sid>[^/]+)/mode/(?P<mode>{_MODES})/{name}"))
        for method, name in (("GET", "query"), ("POST", "update"),
                             ("POST", "updateLayout"), ("POST", "stop"))
    ),
    # RTC channel management (facts 2.12): same host and credentials.
    ("GET", "channel_users", re.compile(r"/dev/v1/channel/user/(?P<app>[^/]+)/(?P<cname>[^/]+)")),
)


def route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The endpoint ``method path`` names and its (unquoted) path parameters."""
    found = next(
        ((name, m) for verb, name, pattern in ROUTES
         if verb == method and (m := pattern.fullmatch(path))), None,
    )
    if found is None:
        return None
    endpoint, match = found
    return endpoint, {k: unquote(v) for k, v in match.groupdict().items()}


Handle = Callable[[str, str, Mapping[str, str], bytes], Answer]
"""``handle(method, raw_path, lower-case headers, raw body)``."""


class AgoraServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left is part of the scenarios, not a server bug.
        return


def handler_for(handle: Handle, stopping: threading.Event) -> type[BaseHTTPRequestHandler]:
    """The request handler class; a hanging answer is cut short once ``stopping`` is set."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per answer, sent at once: split writes meet delayed ACKs (~40 ms each).
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = handle(self.command, self.path, headers, raw)
            if answer.hang_s:
                stopping.wait(answer.hang_s)
            if answer.disconnect:
                self.close_connection = True
                return
            payload = json.dumps(answer.body or {}).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
