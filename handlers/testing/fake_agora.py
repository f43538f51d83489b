"""A fake Agora Cloud Recording REST server: a real threaded HTTP server on 127.0.0.1.

It implements acquire, start, query, update, updateLayout and stop for the individual,
mix and web modes with the rules clients trip over (reference/agora-facts.md 2): Basic
auth (401 bodies as the gateway sends them), resourceIds that expire (433), an optional
"start within N seconds of acquire" rule, one task per cname+uid (53), a second start on
a resourceId (201 + code 7), per-App-ID QPS limiting (429), and the HA failover window
(404 for a sid for a while). Time comes from an injected clock, so expiry is tested by
advancing a ``FakeClock``, never by sleeping.

Scripted faults (:mod:`handlers.testing.agora_faults`) replace the next answers of an
endpoint (``fail_next``): 206/65, 500/62, 502, 429, a dropped connection, or a hang. A
fault with ``apply=True`` is still carried out before its answer is replaced, like a
request that reached Agora's backend but whose answer was lost.

Every request is logged in :attr:`FakeAgora.calls` (thread-safe) for assertions.

This module keeps the state and applies the rules; :mod:`~handlers.testing.agora_http`
routes and serves the requests, :mod:`~handlers.testing.agora_tasks` holds the records
and the documented answer bodies.

Demo: ``python -m handlers.testing.fake_agora --port 0`` prints its URL and
credentials and serves until interrupted.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import signal
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from handlers.recording.client import CloudRecordingClient
from handlers.testing.agora_faults import Fault
from handlers.testing.agora_http import ENDPOINTS, AgoraServer, handler_for, route
from handlers.testing.agora_tasks import (
    NOT_FOUND,
    Answer,
    Channel,
    Resource,
    Session,
    channel_users,
    err,
    from_fault,
    layout_problem,
    ok,
    query_view,
    stop_view,
    update_problem,
    valid_uid,
)
from webhook.shared.clock import Clock, FakeClock, SystemClock


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
        self._server = AgoraServer(("127.0.0.1", self._port),
                                   handler_for(self.handle, self._stopping))
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

    def env(self) -> dict[str, str]:
        """The ``AGORA_*`` variables that point our services at this fake."""
        return {"AGORA_API_BASE": self.base_url, "AGORA_APP_ID": self.app_id,
                "AGORA_CUSTOMER_ID": self.customer_id,
                "AGORA_CUSTOMER_SECRET": self.customer_secret}

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
               raw_body: bytes) -> Answer:
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
            # A bug in the fake must show up as an answer, not a hang.
            except Exception as exc:  # noqa: BLE001
                endpoint, answer = None, Answer(500, {"message": f"fake server error: {exc!r}"})
            self._calls.append(Call(
                method=method, path=path, endpoint=endpoint, body=body, headers=dict(headers),
                at=self.clock.monotonic(), status=0 if answer.disconnect else answer.status,
            ))
        delay = self.latency_s.get(endpoint or "", 0.0)
        if delay:
            answer = replace(answer, hang_s=answer.hang_s + delay)
        return answer

    def _answer(self, method: str, path: str, headers: Mapping[str, str],
                body: Any) -> tuple[str | None, Answer]:
        found = route(method, path)
        if found is None:
            return None, Answer(404, {"message": "no Route matched with those values"})
        endpoint, params = found
        auth = headers.get("authorization")
        if auth is None:
            return endpoint, Answer(401, {"message": "Unauthorized"})
        expected = "Basic " + base64.b64encode(
            f"{self.customer_id}:{self.customer_secret}".encode()).decode()
        if auth != expected:
            return endpoint, Answer(401, {"message": "Invalid authentication credentials"})
        if params["app"] != self.app_id:
            return endpoint, Answer(400, {"message": "appid is invalid"})
        if self._rate_limited():
            return endpoint, Answer(429, {"message": "API rate limit exceeded"})
        fault = self._faults[endpoint].popleft() if self._faults[endpoint] else None
        if fault is not None and not fault.apply:
            return endpoint, from_fault(fault)
        answer = self._serve(endpoint, method, params, headers, body)
        return endpoint, from_fault(fault) if fault is not None else answer

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
               headers: Mapping[str, str], body: Any) -> Answer:
        if method == "POST":
            content_type = headers.get("content-type", "")
            if not content_type.startswith("application/json"):
                return err(400, 8, "invalid Content-Type header")
            if not isinstance(body, dict):
                return err(400, 8, "invalid JSON body")
        if endpoint == "channel_users":
            cname = params["cname"]
            recorders = (s.uid for s in self.sessions.values()
                         if s.cname == cname and not s.ended)
            return channel_users(self.channels.get(cname) or Channel(mode=1), recorders)
        if endpoint == "acquire":
            return self._acquire(body)
        if endpoint == "start":
            return self._start(params, body)
        return self._session_call(endpoint, params, body)

    def _acquire(self, body: Mapping[str, Any]) -> Answer:
        cname, uid = body.get("cname"), body.get("uid")
        request = body.get("clientRequest")
        if not isinstance(cname, str) or not cname:
            return err(400, 2, "invalid cname")
        if not valid_uid(uid):
            return err(400, 2, "invalid uid")
        if not isinstance(request, dict):
            return err(400, 2, "invalid clientRequest")
        resource_id = secrets.token_urlsafe(96)
        self.resources[resource_id] = Resource(
            resource_id=resource_id, cname=cname, uid=str(uid),
            acquired_at=self.clock.monotonic(), scene=int(request.get("scene", 0)),
            expired_hours=int(request.get("resourceExpiredHour", 72)),
        )
        return ok({"cname": cname, "uid": uid, "resourceId": resource_id})

    def _start(self, params: Mapping[str, str], body: Mapping[str, Any]) -> Answer:
        resource = self.resources.get(params["rid"])
        cname, uid = body.get("cname"), body.get("uid")
        if resource is None:
            return err(400, 1001, "resourceId cannot be parsed")
        if resource.sid is not None:
            return Answer(201, {"cname": resource.cname, "uid": resource.uid,
                                 "resourceId": resource.resource_id, "sid": resource.sid,
                                 "code": 7, "reason": "already recording"})
        age = self.clock.monotonic() - resource.acquired_at
        if age > self.resource_ttl_s:
            return err(400, 433, "resource expired")
        if self.start_deadline_s is not None and age > self.start_deadline_s:
            return err(400, 433, "start came too late after acquire")
        if cname != resource.cname or uid != resource.uid:
            return err(400, 432, "cname or uid does not match the resourceId")
        if (resource.scene == 1) != (params["mode"] == "web"):
            return err(400, 2, "mode does not match the acquire scene")
        if any(s.cname == cname and s.uid == uid and not s.ended
               for s in self.sessions.values()):
            return err(400, 53, "task conflict: a task with this cname and uid exists")
        request = body.get("clientRequest")
        if not isinstance(request, dict) or not isinstance(request.get("storageConfig"), dict):
            return err(400, 2, "clientRequest.storageConfig is required")
        sid = secrets.token_hex(16)
        now = self.clock.monotonic()
        resource.sid = sid
        self.sessions[sid] = Session(
            sid=sid, resource_id=resource.resource_id, cname=resource.cname, uid=resource.uid,
            mode=params["mode"], client_request=request, started_at=now,
            started_ms=self.clock.now_ms(), expires_at=now + resource.expired_hours * 3600,
            status=self.initial_status,
        )
        return ok({"cname": cname, "uid": uid, "resourceId": resource.resource_id, "sid": sid})

    def _session_call(self, endpoint: str, params: Mapping[str, str],
                      body: Mapping[str, Any] | None) -> Answer:
        session = self.sessions.get(params["sid"])
        now = self.clock.monotonic()
        if session is None or session.ended or session.resource_id != params["rid"] \
                or session.mode != params["mode"]:
            return NOT_FOUND
        if now > session.expires_at:
            return err(400, 433, "resource expired (resourceExpiredHour)")
        if session.failover_until is not None and now < session.failover_until:
            return NOT_FOUND
        ids = {"cname": session.cname, "uid": session.uid,
               "resourceId": session.resource_id, "sid": session.sid}
        if endpoint == "query":
            return ok({**ids, "serverResponse": query_view(session, self.publishers)})
        if body is not None and (body.get("cname") != session.cname
                                 or body.get("uid") != session.uid):
            return err(400, 432, "cname or uid does not match the resourceId")
        request = (body or {}).get("clientRequest") or {}
        if endpoint == "update":
            problem = update_problem(request)
            if problem is not None:
                return err(400, 2, problem)
            session.updates.append(request)
            web = request.get("webRecordingConfig")
            if isinstance(web, dict) and isinstance(web.get("onhold"), bool):
                session.onhold = web["onhold"]
            return ok(ids)
        if endpoint == "updateLayout":
            if session.mode != "mix":
                return err(400, 2, "updateLayout applies only in mix mode")
            if layout_problem(request):
                return err(400, 1028, "invalid updateLayout body")
            session.layout = request
            return ok(ids)
        session.ended = True
        return ok({**ids, "serverResponse": stop_view(session, self.publishers)})


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
    for name, value in fake.env().items():
        print(f"{name}={value}", flush=True)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        done.wait()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
