"""Reading Cloud Recording's HTTP answers: the service ``code`` and ``reason`` of an error
body, ``Retry-After``, and the gateway's own refusals (which say nothing about a task)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

_MAX_REASON_CHARS = 300


def is_gateway_refusal(http_status: int, body: Any) -> bool:
    """A 404 or 401 from Agora's gateway (``{"message": ...}``, no service ``code``): the
    URL or the credentials are wrong, so every call fails the same way. It says nothing
    about a task: never "task gone"."""
    return http_status in (401, 404) and isinstance(body, Mapping) \
        and "message" in body and "code" not in body


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the caller's own back-off applies


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def code_of(body: Any) -> int | None:
    if isinstance(body, Mapping):
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        if isinstance(code, str) and code.isdigit():
            return int(code)
    return None


def reason_of(body: Any, response: httpx.Response) -> str:
    if isinstance(body, Mapping):
        for key in ("reason", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:_MAX_REASON_CHARS]
    text = response.text.strip()
    if text:
        return text[:_MAX_REASON_CHARS]
    return response.reason_phrase or "no reason given"
