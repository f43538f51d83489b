"""A fake Agora Cloud Recording REST server: a real threaded HTTP server on 127.0.0.1.

It implements acquire, start, query, update, updateLayout and stop for the individual,
mix and web modes with the rules clients trip over (reference/agora-facts.md 2): Basic
auth (401 bodies as the gateway sends them), resourceIds that expire (433), an optional
"start within N seconds of acquire" rule, one task per cname+uid (53), a second start on
a resourceId (201 + code 7), per-App-ID QPS limiting (429), and the HA failover window
(404 for a sid for a while). Time comes from an injected clock, so expiry is tested by
advancing a ``FakeClock``, never by sleeping.

Scripted faults replace the next answers of an endpoint (``fail_next``): 206/65, 500/62,
502, 429, a dropped connection, or a hang. A fault with ``apply=True`` is still carried
out before its answer is replaced, like a request that reached Agora's backend but whose
answer was lost.

Every request is logged in :attr:`FakeAgora.calls` (thread-safe) for assertions.

Demo: ``cd tests && python -m support.fake_agora --port 0`` prints its URL and
credentials and serves until interrupted.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import signal
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import pytest

from handlers.recording.client import CloudRecordingClient
from webhook.clock import Clock, FakeClock, SystemClock

ENDPOINTS = ("acquire", "start", "query", "update", "updateLayout", "stop", "channel_users")
_MODES = "individual|mix|web"
_ROUTES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
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
MAX_UID = 2**32 - 1


@dataclass(frozen=True)
class Fault:
    """One scripted answer. ``disconnect`` closes the connection without answering;
    ``hang_s`` waits (until the server stops at the latest) before answering; ``apply``
    carries the request out first and only replaces its answer."""

    status: int = 500
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    disconnect: bool = False
    hang_s: float = 0.0
    apply: bool = False


def agora_error(status: int, code: int, reason: str, *, apply: bool = False) -> Fault:
    """A service error: ``{"code": ..., "reason": ...}``."""
    return Fault(status=status, body={"code": code, "reason": reason}, apply=apply)


def gateway_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Fault:
    """A gateway error: ``{"message": ...}``."""
    return Fault(status=status, body={"message": message}, headers=dict(headers or {}))


def response_timeout_65(*, apply: bool = False) -> Fault:
    """206 + 65: the request reached the backend, the answer timed out."""
    return agora_error(206, 65, "request timeout", apply=apply)


def upstream_timeout_62(endpoint: str = "start") -> Fault:
    """62: 500 on start, 504 on the others."""
    return agora_error(500 if endpoint == "start" else 504, 62, "upstream timeout")


def no_worker_502() -> Fault:
    """500 + 502 on start: no worker could be allocated."""
    return agora_error(500, 502, "Failed to allocate worker")


def bad_gateway() -> Fault:
    return gateway_error(502, "An invalid response was received from the upstream server")


def rate_limited(retry_after: str | None = None) -> Fault:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return gateway_error(429, "API rate limit exceeded", headers)


def no_recorded_data_435() -> Fault:
    """206 + 435 on stop: nobody published, nothing was recorded."""
    return agora_error(206, 435, "no recorded data", apply=True)


def disconnect() -> Fault:
    return Fault(disconnect=True)


def hang(seconds: float) -> Fault:
    return Fault(status=200, body={}, hang_s=seconds)


@dataclass(frozen=True)
class Call:
    """One request as the server saw it: ``endpoint`` is ``None`` for unknown routes;
    ``body`` is the parsed JSON (``None`` for no or unparseable body); ``at`` is the
    clock's monotonic time; ``status`` is what the server answered (0: no answer)."""

    method: str
    path: str
    endpoint: str | None
    body: Any
    headers: Mapping[str, str]
    at: float
    status: int


@dataclass
class Resource:
    resource_id: str
    cname: str
    uid: str
    acquired_at: float
    scene: int
    expired_hours: int
    sid: str | None = None


@dataclass
class Session:
    sid: str
    resource_id: str
    cname: str
    uid: str
    mode: str
    client_request: Mapping[str, Any]
    started_at: float
    started_ms: int
    expires_at: float
    status: int
    ended: bool = False
    failover_until: float | None = None
    onhold: bool = False
    layout: Mapping[str, Any] | None = None
    updates: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def screenshot_only(self) -> bool:
        return (self.mode == "individual" and "snapshotConfig" in self.client_request
                and "recordingFileConfig" not in self.client_request)

    @property
    def with_mp4(self) -> bool:
        config = self.client_request.get("recordingFileConfig") or {}
        return "mp4" in (config.get("avFileType") or [])


@dataclass
class Channel:
    """An RTC channel's people as the channel user list reports them (mode 1
    COMMUNICATION keeps everyone in ``broadcasters`` and lists them as ``users``)."""

    mode: int = 1
    broadcasters: set[str] = field(default_factory=set)
    audience: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Mapping[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)
    disconnect: bool = False
    hang_s: float = 0.0


def _ok(body: Mapping[str, Any]) -> _Answer:
    return _Answer(200, body)


def _err(status: int, code: int, reason: str, **extra: Any) -> _Answer:
    return _Answer(status, {"code": code, "reason": reason, **extra})


_NOT_FOUND = _Answer(404, {"code": 404, "reason": "failed to find worker"})


def _valid_uid(uid: Any) -> bool:
    return isinstance(uid, str) and uid.isdigit() and not uid.startswith("0") \
        and 1 <= int(uid) <= MAX_UID


class FakeAgora:
    """The fake server. Start it with ``with FakeAgora() as fake:`` (or :meth:`start` /
    :meth:`stop`); ``base_url``, ``app_id``, ``customer_id`` and ``customer_secret`` are
    what a client needs."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        app_id: str | None = None,
        customer_id: str = "fake-customer",
        customer_secret: str | None = None,
        resource_ttl_s: float = 300.0,
        start_deadline_s: float | None = None,
        qps_limit: int | None = None,
        initial_status: int = 5,
        publishers: tuple[str, ...] = ("1001",),
        port: int = 0,
        latency_s: Mapping[str, float] | None = None,
    ) -> None:
        self.clock: Clock = clock or FakeClock()
        # Seconds each endpoint takes to answer (e.g. {"acquire": 0.2, "start": 0.8}).
        self.latency_s: dict[str, float] = dict(latency_s or {})
        self.app_id = app_id or secrets.token_hex(16)
        self.customer_id = customer_id
        self.customer_secret = customer_secret or "fake-secret-" + secrets.token_hex(8)
        self.resource_ttl_s = resource_ttl_s
        self.start_deadline_s = start_deadline_s
        self.qps_limit = qps_limit
        self.initial_status = initial_status
        self.publishers = publishers
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._faults: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self._calls: list[Call] = []
        self._recent: deque[float] = deque()
        self.resources: dict[str, Resource] = {}
        self.sessions: dict[str, Session] = {}
        self.channels: dict[str, Channel] = {}
        """People in each channel (our recorders are added from the running tasks)."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- life cycle

    def start(self) -> FakeAgora:
        self._server = _Server(("127.0.0.1", self._port), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-agora", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAgora:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, **kwargs: Any) -> CloudRecordingClient:
        """Our client, pointed at this fake."""
        options: dict[str, Any] = {
            "app_id": self.app_id, "customer_id": self.customer_id,
            "customer_secret": self.customer_secret, "api_base": self.base_url,
            "timeout_s": 5.0, **kwargs,
        }
        return CloudRecordingClient(**options)

    # ------------------------------------------------------------------ scripting

    def fail_next(self, endpoint: str, *faults: Fault) -> None:
        """Answer the next ``len(faults)`` calls to ``endpoint`` with these faults."""
        if endpoint not in self._faults:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}; got {endpoint!r}")
        with self._lock:
            self._faults[endpoint].extend(faults)

    def failover(self, sid: str, window_s: float = 90.0) -> None:
        """Agora moves the task: query/update/updateLayout/stop of ``sid`` answer 404 until
        the clock passes ``window_s`` from now."""
        with self._lock:
            self.sessions[sid].failover_until = self.clock.monotonic() + window_s

    def set_status(self, sid: str, status: int) -> None:
        """What query reports next for ``sid`` (e.g. 20, exited abnormally)."""
        with self._lock:
            self.sessions[sid].status = status

    def end_session(self, sid: str) -> None:
        """The task dies silently: from now on its sid is not found (404)."""
        with self._lock:
            self.sessions[sid].ended = True

    def join(self, cname: str, *uids: str, role: str = "users") -> None:
        """People join ``cname`` (``role``: ``users`` in a COMMUNICATION channel,
        ``broadcasters`` or ``audience`` in a LIVE_BROADCASTING one)."""
        with self._lock:
            channel = self.channels.setdefault(
                cname, Channel(mode=1 if role == "users" else 2))
            getattr(channel, "broadcasters" if role == "users" else role).update(uids)

    def leave(self, cname: str, *uids: str) -> None:
        """People leave ``cname`` (all of them when no uid is given)."""
        with self._lock:
            channel = self.channels.get(cname)
            if channel is None:
                return
            for group in (channel.broadcasters, channel.audience):
                group.difference_update(uids or set(group))

    def running(self) -> list[Session]:
        with self._lock:
            return [s for s in self.sessions.values() if not s.ended]

    @property
    def calls(self) -> list[Call]:
        """A snapshot of the call log, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    # -------------------------------------------------------------------- serving

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str],
               raw_body: bytes) -> _Answer:
        """Route one request and log it (called from the server threads)."""
        path = raw_path.split("?", 1)[0]
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = None
        with self._lock:
            try:
                endpoint, answer = self._answer(method, path, headers, body)
            except Exception as exc:  # a bug in the fake must show up as an answer, not a hang
                endpoint, answer = None, _Answer(500, {"message": f"fake server error: {exc!r}"})
            self._calls.append(Call(
                method=method, path=path, endpoint=endpoint, body=body, headers=dict(headers),
                at=self.clock.monotonic(), status=0 if answer.disconnect else answer.status,
            ))
        delay = self.latency_s.get(endpoint or "", 0.0)
        if delay:
            answer = replace(answer, hang_s=answer.hang_s + delay)
        return answer

    def _answer(self, method: str, path: str, headers: Mapping[str, str],
                body: Any) -> tuple[str | None, _Answer]:
        route = next(
            ((name, m) for verb, name, pattern in _ROUTES
             if verb == method and (m := pattern.fullmatch(path))), None,
        )
        if route is None:
            return None, _Answer(404, {"message": "no Route matched with those values"})
        endpoint, match = route
        params = {k: unquote(v) for k, v in match.groupdict().items()}
        auth = headers.get("authorization")
        if auth is None:
            return endpoint, _Answer(401, {"message": "Unauthorized"})
        expected = "Basic " + base64.b64encode(
            f"{self.customer_id}:{self.customer_secret}".encode()).decode()
        if auth != expected:
            return endpoint, _Answer(401, {"message": "Invalid authentication credentials"})
        if params["app"] != self.app_id:
            return endpoint, _Answer(400, {"message": "appid is invalid"})
        if self._rate_limited():
            return endpoint, _Answer(429, {"message": "API rate limit exceeded"})
        fault = self._faults[endpoint].popleft() if self._faults[endpoint] else None
        if fault is not None and not fault.apply:
            return endpoint, _from_fault(fault)
        answer = self._serve(endpoint, method, params, headers, body)
        return endpoint, _from_fault(fault) if fault is not None else answer

    def _rate_limited(self) -> bool:
        if self.qps_limit is None:
            return False
        now = self.clock.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.qps_limit:
            return True
        self._recent.append(now)
        return False

    def _serve(self, endpoint: str, method: str, params: Mapping[str, str],
               headers: Mapping[str, str], body: Any) -> _Answer:
        if method == "POST":
            content_type = headers.get("content-type", "")
            if not content_type.startswith("application/json"):
                return _err(400, 8, "invalid Content-Type header")
            if not isinstance(body, dict):
                return _err(400, 8, "invalid JSON body")
        if endpoint == "channel_users":
            return self._channel_users(params["cname"])
        if endpoint == "acquire":
            return self._acquire(body)
        if endpoint == "start":
            return self._start(params, body)
        return self._session_call(endpoint, params, body)

    def _acquire(self, body: Mapping[str, Any]) -> _Answer:
        cname, uid = body.get("cname"), body.get("uid")
        request = body.get("clientRequest")
        if not isinstance(cname, str) or not cname:
            return _err(400, 2, "invalid cname")
        if not _valid_uid(uid):
            return _err(400, 2, "invalid uid")
        if not isinstance(request, dict):
            return _err(400, 2, "invalid clientRequest")
        resource_id = secrets.token_urlsafe(96)
        self.resources[resource_id] = Resource(
            resource_id=resource_id, cname=cname, uid=str(uid),
            acquired_at=self.clock.monotonic(), scene=int(request.get("scene", 0)),
            expired_hours=int(request.get("resourceExpiredHour", 72)),
        )
        return _ok({"cname": cname, "uid": uid, "resourceId": resource_id})

    def _start(self, params: Mapping[str, str], body: Mapping[str, Any]) -> _Answer:
        resource = self.resources.get(params["rid"])
        cname, uid = body.get("cname"), body.get("uid")
        if resource is None:
            return _err(400, 1001, "resourceId cannot be parsed")
        if resource.sid is not None:
            return _Answer(201, {"cname": resource.cname, "uid": resource.uid,
                                 "resourceId": resource.resource_id, "sid": resource.sid,
                                 "code": 7, "reason": "already recording"})
        age = self.clock.monotonic() - resource.acquired_at
        if age > self.resource_ttl_s:
            return _err(400, 433, "resource expired")
        if self.start_deadline_s is not None and age > self.start_deadline_s:
            return _err(400, 433, "start came too late after acquire")
        if cname != resource.cname or uid != resource.uid:
            return _err(400, 432, "cname or uid does not match the resourceId")
        if (resource.scene == 1) != (params["mode"] == "web"):
            return _err(400, 2, "mode does not match the acquire scene")
        if any(s.cname == cname and s.uid == uid and not s.ended
               for s in self.sessions.values()):
            return _err(400, 53, "task conflict: a task with this cname and uid exists")
        request = body.get("clientRequest")
        if not isinstance(request, dict) or not isinstance(request.get("storageConfig"), dict):
            return _err(400, 2, "clientRequest.storageConfig is required")
        sid = secrets.token_hex(16)
        now = self.clock.monotonic()
        resource.sid = sid
        self.sessions[sid] = Session(
            sid=sid, resource_id=resource.resource_id, cname=resource.cname, uid=resource.uid,
            mode=params["mode"], client_request=request, started_at=now,
            started_ms=self.clock.now_ms(), expires_at=now + resource.expired_hours * 3600,
            status=self.initial_status,
        )
        return _ok({"cname": cname, "uid": uid, "resourceId": resource.resource_id, "sid": sid})

    def _session_call(self, endpoint: str, params: Mapping[str, str],
                      body: Mapping[str, Any] | None) -> _Answer:
        session = self.sessions.get(params["sid"])
        now = self.clock.monotonic()
        if session is None or session.ended or session.resource_id != params["rid"] \
                or session.mode != params["mode"]:
            return _NOT_FOUND
        if now > session.expires_at:
            return _err(400, 433, "resource expired (resourceExpiredHour)")
        if session.failover_until is not None and now < session.failover_until:
            return _NOT_FOUND
        ids = {"cname": session.cname, "uid": session.uid,
               "resourceId": session.resource_id, "sid": session.sid}
        if endpoint == "query":
            return _ok({**ids, "serverResponse": self._query_view(session)})
        if body is not None and (body.get("cname") != session.cname
                                 or body.get("uid") != session.uid):
            return _err(400, 432, "cname or uid does not match the resourceId")
        request = (body or {}).get("clientRequest") or {}
        if endpoint == "update":
            problem = _update_problem(request)
            if problem is not None:
                return _err(400, 2, problem)
            session.updates.append(request)
            web = request.get("webRecordingConfig")
            if isinstance(web, dict) and isinstance(web.get("onhold"), bool):
                session.onhold = web["onhold"]
            return _ok(ids)
        if endpoint == "updateLayout":
            if session.mode != "mix":
                return _err(400, 2, "updateLayout applies only in mix mode")
            if _layout_problem(request):
                return _err(400, 1028, "invalid updateLayout body")
            session.layout = request
            return _ok(ids)
        session.ended = True
        return _ok({**ids, "serverResponse": self._stop_view(session)})

    def _channel_users(self, cname: str) -> _Answer:
        """The documented answer: ``channel_exist`` false (no other field) when nobody is
        in it; our running recorders are in it like any user."""
        channel = self.channels.get(cname) or Channel(mode=1)
        recorders = {s.uid for s in self.sessions.values() if s.cname == cname and not s.ended}
        people = channel.broadcasters | recorders
        if not people and not channel.audience:
            return _ok({"success": True, "data": {"channel_exist": False}})
        total = len(people) + len(channel.audience)
        if channel.mode == 1:
            data: dict[str, Any] = {"channel_exist": True, "mode": 1, "total": total,
                                    "users": sorted(int(u) for u in people)}
        else:
            data = {"channel_exist": True, "mode": 2, "total": total,
                    "broadcasters": sorted(int(u) for u in people),
                    "audience": sorted(int(u) for u in channel.audience),
                    "audience_total": len(channel.audience)}
        return _ok({"success": True, "data": data})

    # ----------------------------------------------------------------- responses

    def _files(self, session: Session) -> tuple[str, Any]:
        ms = session.started_ms
        if session.mode == "individual":
            return "json", [
                {"fileName": f"{session.sid}_{session.cname}__uid_s_{u}__uid_e_{t}.m3u8",
                 "trackType": t, "uid": u, "mixedAllUser": False, "isPlayable": True,
                 "sliceStartTime": ms}
                for u in self.publishers for t in ("audio", "video")
            ]
        playlist = f"{session.sid}_{session.cname}.m3u8"
        if not session.with_mp4:
            return "string", playlist
        return "json", [
            {"fileName": name, "trackType": "audio_and_video", "uid": "0",
             "mixedAllUser": True, "isPlayable": True, "sliceStartTime": ms}
            for name in (playlist, f"{session.sid}_{session.cname}_0.mp4")
        ]

    def _web_recorder(self, session: Session, state: str) -> dict[str, Any]:
        return {"serviceName": "web_recorder_service", "payload": {
            "state": state, "onhold": session.onhold,
            "fileList": [{"filename": f"{session.sid}_{session.cname}_0.mp4",
                          "sliceStartTime": session.started_ms}],
        }}

    def _query_view(self, session: Session) -> dict[str, Any]:
        if session.mode == "web":
            return {"status": session.status,
                    "extensionServiceState": [self._web_recorder(session, "inProgress")]}
        if session.screenshot_only:
            return {"status": session.status, "sliceStartTime": session.started_ms}
        mode, files = self._files(session)
        return {"status": session.status, "fileListMode": mode, "fileList": files,
                "sliceStartTime": session.started_ms}

    def _stop_view(self, session: Session) -> dict[str, Any]:
        if session.mode == "web":
            return {"extensionServiceState": [
                {"serviceName": "upload_service", "payload": {"uploadingStatus": "uploaded"}},
                self._web_recorder(session, "exit"),
            ]}
        if session.screenshot_only:
            return {"uploadingStatus": "uploaded"}
        mode, files = self._files(session)
        return {"uploadingStatus": "uploaded", "fileListMode": mode, "fileList": files}


def _update_problem(request: Mapping[str, Any]) -> str | None:
    """Code 2 (invalid parameter) for the update rules of facts 2.7: lists of at most 32
    uids, subscribe and unsubscribe of one media exclusive, at most one RTMP output."""
    subscribe = request.get("streamSubscribe") or {}
    for media, prefix in (("audioUidList", "Audio"), ("videoUidList", "Video")):
        lists = subscribe.get(media) or {}
        sub, unsub = lists.get(f"subscribe{prefix}Uids"), lists.get(f"unsubscribe{prefix}Uids")
        if sub is not None and unsub is not None:
            return f"{media}: subscribe and unsubscribe are exclusive"
        for listed in (sub, unsub):
            if listed is not None and (not isinstance(listed, list) or len(listed) > 32):
                return f"{media}: at most 32 uids"
    outputs = (request.get("rtmpPublishConfig") or {}).get("outputs")
    if outputs is not None and (not isinstance(outputs, list) or len(outputs) > 1):
        return "rtmpPublishConfig.outputs: at most 1 entry"
    return None


def _layout_problem(request: Mapping[str, Any]) -> bool:
    """Code 1028: a layout Agora cannot read (unknown mixedVideoLayout, vertical without
    maxResolutionUid, custom without regions, more than 17 regions)."""
    layout = request.get("mixedVideoLayout", 0)
    regions = request.get("layoutConfig")
    if layout not in (0, 1, 2, 3):
        return True
    if layout == 2 and not request.get("maxResolutionUid"):
        return True
    if layout == 3 and (not isinstance(regions, list) or not regions):
        return True
    return isinstance(regions, list) and len(regions) > 17


def _from_fault(fault: Fault) -> _Answer:
    return _Answer(fault.status, fault.body, fault.headers, fault.disconnect, fault.hang_s)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left is part of the scenarios, not a server bug.
        return


def _handler_for(fake: FakeAgora) -> type[BaseHTTPRequestHandler]:
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
            answer = fake.handle(self.command, self.path, headers, raw)
            if answer.hang_s:
                fake._stopping.wait(answer.hang_s)
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


@pytest.fixture
def fake_agora() -> Iterator[FakeAgora]:
    """A started fake with a ``FakeClock`` (advance it with ``fake_agora.clock.advance``)."""
    with FakeAgora(clock=FakeClock()) as fake:
        yield fake


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Agora Cloud Recording API.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--qps", type=int, default=None, help="requests per second per App ID")
    parser.add_argument("--resource-ttl", type=float, default=300.0)
    parser.add_argument("--latency", action="append", default=[], metavar="ENDPOINT=SECONDS",
                        help="answer ENDPOINT after SECONDS (repeatable), e.g. start=0.8")
    args = parser.parse_args(argv)
    latency = {name: float(seconds) for name, _, seconds in
               (item.partition("=") for item in args.latency)}
    fake = FakeAgora(clock=SystemClock(), qps_limit=args.qps,
                     resource_ttl_s=args.resource_ttl, port=args.port, latency_s=latency).start()
    print(f"fake Agora Cloud Recording API at {fake.base_url}", flush=True)
    print(f"AGORA_API_BASE={fake.base_url}", flush=True)
    print(f"AGORA_APP_ID={fake.app_id}", flush=True)
    print(f"AGORA_CUSTOMER_ID={fake.customer_id}", flush=True)
    print(f"AGORA_CUSTOMER_SECRET={fake.customer_secret}", flush=True)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        done.wait()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
