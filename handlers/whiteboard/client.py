"""Interactive Whiteboard REST client: the screenshot calls and two look-ups.

Agora marks the screenshot endpoints deprecated, so callers depend on the narrow
:class:`WhiteboardApi` protocol, not on this HTTP implementation. The client does not
retry: the handler runtime retries ``TransientError`` with its own budget, and stacking a
second retry loop here would blow through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from handlers.closing_http import ClosingHttpClient
from handlers.settings import WhiteboardSettings
from handlers.whiteboard.models import (
    Room,
    Screenshot,
    check_capture,
    check_path,
    check_room_uuid,
)
from handlers.whiteboard.tokens import TokenSource, token_source

# Besides 5xx: rate limiting and a request timeout may pass. Other 4xx (400, 401, 403,
# 404...) will fail the same way again.
_RETRYABLE_STATUSES = frozenset({408, 429})
_MAX_MESSAGE_CHARS = 500
_SCREENSHOT_LIST = TypeAdapter(list[Screenshot])
_SCENE_LIST = TypeAdapter(list[str])
_SCREENSHOT = TypeAdapter(Screenshot)
T = TypeVar("T")


class WhiteboardError(Exception):
    """A whiteboard call failed. ``message`` is the service's own ``message`` when it gave
    one; ``status`` is ``None`` for transport failures; ``retryable`` says whether the same
    call may succeed later (429, 5xx, timeouts, connection errors)."""

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        status: int | None,
        retryable: bool,
        retry_after_s: float | None = None,
    ) -> None:
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"whiteboard {operation} failed ({where}): {message}")
        self.operation = operation
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class WhiteboardApi(Protocol):
    """The calls we make. Every method validates its input first and raises
    ``InvalidCaptureRequest`` (naming the field) before sending anything, and raises
    :class:`WhiteboardError` for any failed call. ``region`` ``None`` means the
    configured default."""

    def screenshot_list(
        self, room_uuid: str, *, path: str, width: int, height: int, region: str | None = None
    ) -> list[Screenshot]: ...

    def screenshot(
        self, room_uuid: str, *, path: str, width: int, height: int, region: str | None = None
    ) -> Screenshot: ...

    def room(self, room_uuid: str, *, region: str | None = None) -> Room: ...

    def scenes(self, room_uuid: str, *, scene_dir: str, region: str | None = None) -> list[str]: ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the runtime's own backoff applies


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])[:_MAX_MESSAGE_CHARS]
    text = response.text.strip()
    return text[:_MAX_MESSAGE_CHARS] if text else response.reason_phrase or "no message"


def _is_retryable(status: int) -> bool:
    return status in _RETRYABLE_STATUSES or status >= 500


class HttpWhiteboardClient(ClosingHttpClient):
    """:class:`WhiteboardApi` over HTTP (``{api_base}/v5/...``) with ``token`` and ``region``
    headers. Blocks for at most ``timeout_s`` per call. Thread-safe as httpx is."""

    def __init__(
        self,
        api_base: str,
        tokens: TokenSource,
        *,
        default_region: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._tokens = tokens
        self._default_region = default_region
        self._http = httpx.Client(
            base_url=api_base.rstrip("/"),
            timeout=timeout_s,
            transport=transport,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls, settings: WhiteboardSettings) -> HttpWhiteboardClient:
        """Raises ``TokenConfigError`` when no credentials are configured."""
        return cls(
            settings.api_base,
            token_source(settings),
            default_region=settings.region,
            timeout_s=settings.request_timeout_s,
        )

    def screenshot_list(
        self, room_uuid: str, *, path: str, width: int, height: int, region: str | None = None
    ) -> list[Screenshot]:
        check_capture(room_uuid, path, width, height)
        body = self._call(
            "screenshot-list", "POST", f"/v5/rooms/{room_uuid}/screenshot-list", region,
            expect=201, json_body={"width": width, "height": height, "path": path},
        )
        return _parse("screenshot-list", 201, _SCREENSHOT_LIST, body)

    def screenshot(
        self, room_uuid: str, *, path: str, width: int, height: int, region: str | None = None
    ) -> Screenshot:
        check_capture(room_uuid, path, width, height)
        body = self._call(
            "screenshots", "POST", f"/v5/rooms/{room_uuid}/screenshots", region,
            expect=201, json_body={"width": width, "height": height, "path": path},
        )
        return _parse("screenshots", 201, _SCREENSHOT, body)

    def room(self, room_uuid: str, *, region: str | None = None) -> Room:
        check_room_uuid("room_uuid", room_uuid)
        body = self._call("room", "GET", f"/v5/rooms/{room_uuid}", region, expect=200)
        if not isinstance(body, Mapping) or not isinstance(body.get("uuid"), str):
            raise _bad_body("room", 200, "an object with a string 'uuid'")
        return Room.from_api(body)

    def scenes(self, room_uuid: str, *, scene_dir: str, region: str | None = None) -> list[str]:
        check_room_uuid("room_uuid", room_uuid)
        check_path("scene_dir", scene_dir)
        body = self._call(
            "scenes", "GET", f"/v5/rooms/{room_uuid}/scenes", region,
            expect=200, params={"sceneDir": scene_dir},
        )
        return _parse("scenes", 200, _SCENE_LIST, body)

    def _call(
        self,
        operation: str,
        method: str,
        url: str,
        region: str | None,
        *,
        expect: int,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        headers = {"token": self._tokens.token(), "region": region or self._default_region}
        content = json.dumps(json_body).encode() if json_body is not None else None
        try:
            response = self._http.request(
                method, url, headers=headers, content=content, params=params
            )
        except httpx.TimeoutException:
            raise WhiteboardError(
                operation, "request timed out", status=None, retryable=True
            ) from None
        except httpx.UnsupportedProtocol as exc:  # a bad WHITEBOARD_API_BASE: configuration
            raise WhiteboardError(
                operation, f"bad API base URL: {exc}", status=None, retryable=False
            ) from None
        except httpx.TransportError as exc:
            # The exception text names the host and the OS error, never our headers.
            raise WhiteboardError(
                operation, f"connection failed: {exc}", status=None, retryable=True
            ) from None
        except httpx.RequestError as exc:  # redirects, undecodable content: not transient
            raise WhiteboardError(
                operation, f"request failed: {exc}", status=None, retryable=False
            ) from None
        if response.status_code != expect:
            raise WhiteboardError(
                operation,
                _error_message(response),
                status=response.status_code,
                retryable=_is_retryable(response.status_code),
                retry_after_s=_retry_after(response),
            )
        try:
            return response.json()
        except ValueError:
            raise _bad_body(operation, expect, "a JSON body") from None


def _parse(operation: str, status: int, adapter: TypeAdapter[T], body: Any) -> T:
    try:
        return adapter.validate_python(body)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        raise _bad_body(operation, status, f"{where}: {err['msg']}") from None


def _bad_body(operation: str, status: int, expected: str) -> WhiteboardError:
    # The call may have had its effect (screenshots taken); retrying would only repeat it.
    return WhiteboardError(
        operation, f"unexpected response body, expected {expected}", status=status,
        retryable=False,
    )
