"""A fake Interactive Whiteboard REST service: a real threaded HTTP server on 127.0.0.1.

It knows rooms (with their region) and their scenes, checks the ``token`` and ``region``
headers and the JSON body the way the service documents, answers screenshot calls with
201 and one entry per scene directly in the directory, and can be scripted per room to
answer with any status and ``message`` (or to hold the answer, for timeouts). Every call
is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The token the fake accepts as is: a made-up value, never a real credential.
FAKE_TOKEN = "NETLESSSDK_fake-static-token"  # noqa: S105
BUCKET = "fake-bucket"
STORAGE_REGION = "oss-fake-region"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or the raw text when it was not JSON, or None

    @property
    def room(self) -> str | None:
        parts = self.path.split("/")
        return parts[3] if len(parts) > 3 and parts[1:3] == ["v5", "rooms"] else None

    @property
    def endpoint(self) -> str:
        """``screenshot-list``, ``screenshots``, ``scenes`` or ``room``."""
        parts = self.path.split("/")
        return parts[4] if len(parts) > 4 else "room"


@dataclass(frozen=True)
class _Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass
class _Room:
    region: str
    scenes: list[str]


def _parent(scene: str) -> str:
    head = scene.rsplit("/", 1)[0]
    return head or "/"


def _normalise_dir(path: str) -> str:
    return path.rstrip("/") or "/"


def screenshot_entry(room_uuid: str, scene: str) -> dict[str, str]:
    """The entry the fake returns for one scene (tests compare against it)."""
    key = f"room_cover/2811/{room_uuid}{scene}.png"
    return {"url": f"https://{BUCKET}.example.invalid/{key}", "key": key,
            "bucket": BUCKET, "region": STORAGE_REGION}


def verify_sdk_token(token: str, access_key: str, secret_access_key: str, now_ms: int) -> bool:
    """Check a netless SDK token independently of the code under test."""
    prefix = "NETLESSSDK_"
    if not token.startswith(prefix):
        return False
    encoded = token[len(prefix):]
    try:
        query = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return False
    fields = dict(urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True))
    sig = fields.pop("sig", "")
    signed = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    expected = hmac.new(secret_access_key.encode(), signed.encode(), hashlib.sha256).hexdigest()
    if fields.get("ak") != access_key or not hmac.compare_digest(sig, expected):
        return False
    return "expireAt" not in fields or int(fields["expireAt"]) > now_ms


class FakeWhiteboard:
    """Start with ``with FakeWhiteboard() as fake:`` (or the tests' ``fake_whiteboard`` fixture);
    ``fake.url`` is the API base. Accepts ``token`` as is, and SDK tokens signed with
    ``sdk_keys`` (access key, secret access key) when given."""

    def __init__(
        self, token: str = FAKE_TOKEN, *, sdk_keys: tuple[str, str] | None = None
    ) -> None:
        self.token = token
        self.sdk_keys = sdk_keys
        self._rooms: dict[str, _Room] = {}
        self._scripts: dict[str, deque[_Scripted]] = defaultdict(deque)
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown (and so every test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeWhiteboard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let held answers finish
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeWhiteboard:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- set-up -----------------------------------------------------------------------

    def add_room(self, uuid: str, *, region: str = "us-sv",
                 scenes: tuple[str, ...] = ("/init",)) -> None:
        with self._lock:
            self._rooms[uuid] = _Room(region=region, scenes=list(scenes))

    def respond(self, room_uuid: str, status: int, message: str | None = None, *,
                body: Any = None, retry_after: str | None = None) -> None:
        """Queue one scripted answer for the next call on this room (FIFO)."""
        payload = body if body is not None else {"message": message or f"scripted {status}"}
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._scripts[room_uuid].append(_Scripted(status, payload, headers))

    def hang(self, room_uuid: str) -> None:
        """The next call on this room gets no answer until the fake stops."""
        with self._lock:
            self._scripts[room_uuid].append(_Scripted(500, {"message": "held"}, hang=True))

    # --- inspection -------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    # --- serving ----------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                split = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body: Any = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode(errors="replace")
                call = Call(
                    method=self.command,
                    path=split.path,
                    query=dict(urllib.parse.parse_qsl(split.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                status, payload, headers = fake._answer(call)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _authorised(self, token: str | None) -> bool:
        if token is None:
            return False
        if hmac.compare_digest(token, self.token):
            return True
        if self.sdk_keys is None:
            return False
        access_key, secret = self.sdk_keys
        return verify_sdk_token(token, access_key, secret, int(time.time() * 1000))

    def _answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._calls.append(call)
            queue = self._scripts.get(call.room or "")
            scripted = queue.popleft() if queue else None
            room = self._rooms.get(call.room or "")
        if scripted is not None:
            if scripted.hang:
                self._release.wait(timeout=30)
            return scripted.status, scripted.body, scripted.headers
        if not self._authorised(call.headers.get("token")):
            return 401, {"message": "token is missing or invalid"}, {}
        region = call.headers.get("region")
        if not region:
            return 400, {"message": "region header is required"}, {}
        if room is None or room.region != region or call.room is None:
            return 404, {"message": f"room {call.room} not found in region {region}"}, {}
        return self._route(call, call.room, room)

    def _route(self, call: Call, uuid: str, room: _Room) -> tuple[int, Any, dict[str, str]]:
        endpoint = (call.method, call.endpoint)
        if endpoint == ("GET", "room"):
            return 200, {"uuid": uuid, "teamUUID": "team", "appUUID": "app", "isRecord": False,
                         "isBan": False, "createdAt": "2024-01-01T00:00:00.000Z",
                         "limit": 0}, {}
        if endpoint == ("GET", "scenes"):
            scene_dir = _normalise_dir(call.query.get("sceneDir", "/"))
            return 200, [s for s in room.scenes if _parent(s) == scene_dir], {}
        if call.method != "POST" or call.endpoint not in ("screenshot-list", "screenshots"):
            return 404, {"message": f"no route {call.method} {call.path}"}, {}
        problem = _body_problem(call.body, path_required=call.endpoint == "screenshot-list")
        if problem:
            return 400, {"message": problem}, {}
        if call.endpoint == "screenshots":
            scene = call.body.get("path", "/init")
            if scene not in room.scenes:
                return 404, {"message": f"scene {scene} not found"}, {}
            return 201, screenshot_entry(uuid, scene), {}
        scene_dir = _normalise_dir(call.body["path"])
        direct = [s for s in room.scenes if _parent(s) == scene_dir]
        if not direct:
            return 404, {"message": f"scene directory {scene_dir} not found"}, {}
        return 201, [screenshot_entry(uuid, s) for s in direct], {}


def _body_problem(body: Any, *, path_required: bool) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    for name in ("width", "height"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return f"{name} must be a positive integer"
    if "path" not in body and not path_required:
        return None
    path = body.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        return "path must be a string starting with /"
    return None
