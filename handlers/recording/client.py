"""Cloud Recording REST client (``{api_base}/v1/apps/{appid}/cloud_recording/...``).

Synchronous httpx, HTTP Basic auth from the customer id and secret, the exact
``Content-Type`` Agora documents. Every call is one HTTP request: the client never
retries, because the caller owns the budget (the restart policy backs off per Agora's
recipe, the CLI asks the operator). Failures raise :class:`RecordingApiError` whose
``advice`` says what to do next. Start and acquire requests are validated first; an
invalid one raises before anything is sent.

Nothing here logs or raises a credential: request bodies (storage keys, RTC tokens) are
never logged, and the auth header is built per request from a ``SecretStr``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import SecretStr

from handlers.closing_http import ClosingHttpClient
from handlers.recording.api_hosts import PRIMARY_HOSTS, failover_bases, host_of, is_dns_failure
from handlers.recording.api_requests import (
    AcquireRequest,
    ChannelUsersRequest,
    InvalidIdentifier,
    Mode,
    QueryRequest,
    RecordingRequest,
    StartRequest,
    StopRequest,
    UpdateRequest,
    check_mode,
    checked_id,
    uid_string,
)
from handlers.recording.api_responses import (
    AcquireResponse,
    ChannelUsers,
    QueryResponse,
    StartResponse,
    StopResponse,
    UnexpectedResponse,
    UpdateResponse,
    parse_channel_users,
    parse_query,
    parse_simple,
    parse_stop,
)
from handlers.recording.errors import Advice, RecordingApiError, RecordingNotConfigured
from handlers.recording.http_answers import (
    code_of,
    is_gateway_refusal,
    json_or_none,
    reason_of,
    retry_after,
)
from handlers.recording.pacer import Pacer, shared_pacer
from handlers.recording.validation import validate_acquire, validate_start, validate_update
from handlers.settings import AgoraSettings

log = logging.getLogger(__name__)
_R = TypeVar("_R")

CONTENT_TYPE = "application/json;charset=utf-8"


class RecordingApi(Protocol):
    """The Cloud Recording calls. Every method raises :class:`RecordingApiError` when the
    call fails and a ``RequestInvalid`` subclass (naming the field) before sending an
    invalid acquire, start or update."""

    def acquire(
        self, cname: str, uid: str | int, client_request: Mapping[str, Any] | None = None,
        *, mode: Mode | None = None,
    ) -> AcquireResponse: ...

    def start(
        self, mode: Mode, resource_id: str, cname: str, uid: str | int,
        client_request: Mapping[str, Any],
    ) -> StartResponse: ...

    def query(self, mode: Mode, resource_id: str, sid: str) -> QueryResponse: ...

    def update(
        self, mode: Mode, resource_id: str, sid: str, cname: str, uid: str | int,
        client_request: Mapping[str, Any],
    ) -> UpdateResponse: ...

    def update_layout(
        self, resource_id: str, sid: str, cname: str, uid: str | int,
        client_request: Mapping[str, Any], *, mode: Mode = "mix",
    ) -> UpdateResponse: ...

    def stop(
        self, mode: Mode, resource_id: str, sid: str, cname: str, uid: str | int,
        *, async_stop: bool = False,
    ) -> StopResponse: ...

    def channel_users(self, cname: str) -> ChannelUsers: ...


class CloudRecordingClient(ClosingHttpClient):
    """:class:`RecordingApi` over HTTP. Blocks for at most ``timeout_s`` per call;
    thread-safe as httpx is. ``transport`` is for tests that need one."""

    def __init__(
        self,
        *,
        app_id: str,
        customer_id: str,
        customer_secret: SecretStr | str,
        api_base: str = "https://api.sd-rtn.com",
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        api_bases: tuple[str, ...] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self._pacer = pacer  # paces every request at the App ID's QPS when given
        if not app_id or not customer_id or not customer_secret:
            raise RecordingNotConfigured(
                "app_id, customer_id and customer_secret are all required"
            )
        try:
            self.app_id = checked_id("appid", app_id)
        except InvalidIdentifier as exc:
            raise RecordingNotConfigured(f"AGORA_APP_ID: {exc}") from None
        self._customer_id = customer_id
        self._secret = (
            customer_secret if isinstance(customer_secret, SecretStr)
            else SecretStr(customer_secret)
        )
        self.api_base = api_base.rstrip("/")
        self.api_bases = api_bases or (self.api_base,)
        """Hosts tried in order on network errors, timeouts and 5xx (never on 4xx)."""
        self._other_primary = frozenset(
            base for base in self.api_bases[1:2]
            if host_of(base) in PRIMARY_HOSTS and host_of(self.api_bases[0]) in PRIMARY_HOSTS)
        """Agora: try the other primary domain only when the primary failed to resolve;
        after another network error, go on to the regional host."""
        self._prefix = f"/v1/apps/{app_id}/cloud_recording"
        self._http = httpx.Client(
            base_url=self.api_base, timeout=timeout_s, transport=transport,
            headers={"Content-Type": CONTENT_TYPE, "Accept": "application/json"},
        )

    @classmethod
    def from_settings(
        cls, settings: AgoraSettings, *, transport: httpx.BaseTransport | None = None
    ) -> CloudRecordingClient:
        """Raises :class:`RecordingNotConfigured` naming the missing variables."""
        missing = [
            name for name, value in (
                ("AGORA_APP_ID", settings.app_id),
                ("AGORA_CUSTOMER_ID", settings.customer_id),
                ("AGORA_CUSTOMER_SECRET", settings.customer_secret),
            ) if not value
        ]
        if missing or settings.app_id is None or settings.customer_id is None \
                or settings.customer_secret is None:
            raise RecordingNotConfigured(
                f"Cloud Recording REST credentials missing: set {', '.join(missing)}"
            )
        return cls(
            app_id=settings.app_id,
            customer_id=settings.customer_id,
            customer_secret=settings.customer_secret,
            api_base=settings.api_base,
            timeout_s=settings.request_timeout_s,
            transport=transport,
            api_bases=failover_bases(settings.api_base, settings.api_region,
                                     settings.api_fallbacks),
            pacer=shared_pacer(settings.app_id),
        )

    def __repr__(self) -> str:
        return f"CloudRecordingClient(app_id={self.app_id!r}, api_base={self.api_base!r})"

    # ------------------------------------------------------------------------- calls

    def acquire(
        self, cname: str, uid: str | int, client_request: Mapping[str, Any] | None = None,
        *, mode: Mode | None = None,
    ) -> AcquireResponse:
        """Reserve a resourceId (valid ~5 minutes; start it within seconds). With ``mode``,
        ``clientRequest.scene`` and ``startParameter`` are checked against it."""
        uid = uid_string(uid)
        validate_acquire(cname, uid, client_request, mode=mode)
        request = AcquireRequest(cname, uid, client_request or {})
        return self._call(request, lambda body: parse_simple(AcquireResponse, body))

    def start(
        self, mode: Mode, resource_id: str, cname: str, uid: str | int,
        client_request: Mapping[str, Any],
    ) -> StartResponse:
        """Start recording with an acquired resourceId; returns the ``sid``. A 200 only
        means the request was accepted: confirm with :meth:`query` (status 4 or 5)."""
        mode = check_mode(mode)
        uid = uid_string(uid)
        validate_start(mode, client_request, cname=cname, uid=uid)
        request = StartRequest(mode, resource_id, cname, uid, client_request)
        return self._call(request, lambda body: parse_simple(StartResponse, body))

    def query(self, mode: Mode, resource_id: str, sid: str) -> QueryResponse:
        """The task's status and files, parsed for ``mode``. 404 (advice NOT_FOUND) while
        Agora moves the task or after it ended."""
        request = QueryRequest(check_mode(mode), resource_id, sid)
        return self._call(request, lambda body: parse_query(request.mode, body), sid=sid)

    def update(
        self, mode: Mode, resource_id: str, sid: str, cname: str, uid: str | int,
        client_request: Mapping[str, Any],
    ) -> UpdateResponse:
        """Change subscriptions, web ``onhold``, the RTMP URL or refresh storage STS keys."""
        mode = check_mode(mode)
        validate_update(mode, client_request)
        request = UpdateRequest(mode, resource_id, sid, cname, uid_string(uid), client_request)
        return self._call(request, lambda body: parse_simple(UpdateResponse, body), sid=sid)

    def update_layout(
        self, resource_id: str, sid: str, cname: str, uid: str | int,
        client_request: Mapping[str, Any], *, mode: Mode = "mix",
    ) -> UpdateResponse:
        """Replace the composite layout (unset fields revert to their defaults)."""
        mode = check_mode(mode)
        validate_update(mode, client_request, layout=True)
        request = UpdateRequest(
            mode, resource_id, sid, cname, uid_string(uid), client_request, layout=True
        )
        return self._call(request, lambda body: parse_simple(UpdateResponse, body), sid=sid)

    def stop(
        self, mode: Mode, resource_id: str, sid: str, cname: str, uid: str | int,
        *, async_stop: bool = False,
    ) -> StopResponse:
        """Stop the task. Code 49 or 435 (advice GONE) mean it is over anyway."""
        request = StopRequest(check_mode(mode), resource_id, sid, cname, uid_string(uid),
                              async_stop)
        return self._call(request, lambda body: parse_stop(request.mode, body), sid=sid)

    def channel_users(self, cname: str) -> ChannelUsers:
        """Who is in ``cname`` now (RTC channel user list, same host and credentials).
        Settles whether a recording that vanished was still wanted."""
        request = ChannelUsersRequest(self.app_id, cname)
        return self._call(request, parse_channel_users)

    # ----------------------------------------------------------------------- plumbing

    def _auth_header(self) -> str:
        pair = f"{self._customer_id}:{self._secret.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _send(self, request: RecordingRequest, *, sid: str | None) -> tuple[int, Any]:
        """The status and decoded JSON body of a successful answer, else
        :class:`RecordingApiError`."""
        cname = getattr(request, "cname", None)
        body = request.body()
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        try:
            path = request.path() if getattr(request, "absolute", False) \
                else self._prefix + request.path()
        except InvalidIdentifier as exc:
            # An id that would change the URL (".." or "/"): nothing is sent.
            raise RecordingApiError(request.endpoint, http_status=None, code=None,
                                    reason=str(exc), cname=None, sid=None,
                                    advice=Advice.STOP) from None
        response: httpx.Response | None = None
        failure: RecordingApiError | None = None
        resolved = False  # a network error that was not DNS: skip the other primary
        for base in self.api_bases:
            if resolved and base in self._other_primary:
                continue
            # Domain failover (facts 2.1): the next host only after a network error, a
            # timeout or a 5xx; a 4xx is the same answer everywhere.
            if self._pacer is not None:
                self._pacer.acquire(request.endpoint)
            try:
                response = self._http.request(
                    request.method, base + path, content=content,
                    headers={"Authorization": self._auth_header()},
                )
            except httpx.TimeoutException as exc:
                failure = RecordingApiError(
                    request.endpoint, http_status=None, code=None,
                    reason=f"request timed out ({type(exc).__name__})", cname=cname, sid=sid,
                )
            except httpx.TransportError as exc:
                resolved = resolved or not is_dns_failure(exc)
                failure = RecordingApiError(
                    request.endpoint, http_status=None, code=None,
                    reason=f"network error ({type(exc).__name__}: {exc})", cname=cname,
                    sid=sid,
                )
            else:
                failure = None
                if self._pacer is not None:
                    self._pacer.answered(response.status_code)
                if response.status_code < 500:
                    break
            if base != self.api_bases[-1]:
                log.warning("cloud recording %s failed on %s; trying the next host",
                            request.endpoint, base,
                            extra={"endpoint": request.endpoint, "cname": cname,
                                   "http_status": response.status_code
                                   if failure is None and response is not None else None})
        if failure is not None:
            raise failure
        assert response is not None
        data = json_or_none(response)
        code = code_of(data)
        log.debug(
            "cloud recording %s -> HTTP %s", request.endpoint, response.status_code,
            extra={"endpoint": request.endpoint, "cname": cname, "sid": sid,
                   "http_status": response.status_code, "code": code},
        )
        # A 2xx with an Agora code is still a failure (201 + 7, 206 + 65/435).
        if response.is_success and not code:
            if data is None:
                raise RecordingApiError(
                    request.endpoint, http_status=response.status_code, code=None,
                    reason="the answer is not JSON", cname=cname, sid=sid, advice=Advice.STOP,
                )
            return response.status_code, data
        if sid is None and isinstance(data, Mapping) and isinstance(data.get("sid"), str):
            sid = data["sid"] or None  # 201 + 7 names the task that already runs
        gateway = is_gateway_refusal(response.status_code, data)
        raise RecordingApiError(
            request.endpoint, http_status=response.status_code, code=code,
            reason=reason_of(data, response),
            retry_after_s=retry_after(response), cname=cname, sid=sid,
            advice=Advice.STOP if gateway else None, configuration=gateway,
        )

    def _call(
        self, request: RecordingRequest, parse: Callable[[Any], _R], *, sid: str | None = None
    ) -> _R:
        """Send, then parse a successful answer. A success whose body lacks what Agora
        documents (no ``resourceId``, an empty ``sid``) is advice STOP: retrying an answer
        we cannot read only hides the problem."""
        status, body = self._send(request, sid=sid)
        try:
            return parse(body)
        except UnexpectedResponse as exc:
            raise RecordingApiError(
                request.endpoint, http_status=status, code=None,
                reason=f"unexpected answer: {exc}", cname=getattr(request, "cname", None),
                sid=sid, advice=Advice.STOP,
            ) from None
