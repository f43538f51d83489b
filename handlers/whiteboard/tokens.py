"""Whiteboard SDK tokens: a configured one, or one generated locally from access keys.

The generator follows netless-io/netless-token (``python/netless_token.py``): a map of
``ak``, ``nonce`` (UUID v1), ``role`` and, for a positive lifespan, ``expireAt`` (ms, as a
string) is JSON-encoded with sorted keys and no spaces; ``sig`` is the lower-case hex
HMAC-SHA256 of that JSON under the secret access key; the map plus ``sig`` is URL-encoded
as a query string (in that insertion order, as the reference does), base64url-encoded
without padding and prefixed ``NETLESSSDK_``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import SecretStr

from handlers.settings import WhiteboardSettings
from webhook.shared.clock import Clock, SystemClock

SDK_PREFIX = "NETLESSSDK_"
ROLES: dict[str, str] = {"admin": "0", "writer": "1", "reader": "2"}
Role = Literal["admin", "writer", "reader"]

# Short-lived on purpose: a fresh token is made for every request, so a leaked one is
# worth little. Admin, because the room look-ups take an SDK token (Console issues admin).
DEFAULT_LIFESPAN_MS = 10 * 60 * 1000
DEFAULT_ROLE: Role = "admin"


class TokenConfigError(Exception):
    """Neither a token nor a complete pair of access keys is configured."""


class TokenSource(Protocol):
    """Gives the value of the ``token`` header for the next request."""

    def token(self) -> str: ...


def sdk_token(
    access_key: str,
    secret_access_key: str,
    *,
    lifespan_ms: int,
    role: Role,
    nonce: str,
    now_ms: int,
) -> str:
    """The netless SDK token for fixed inputs (pure: nonce and time are injected)."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {sorted(ROLES)}, got {role!r}")
    if lifespan_ms < 0:
        raise ValueError(f"lifespan_ms: expected 0 (never expires) or more, got {lifespan_ms}")
    data: dict[str, str] = {"ak": access_key, "nonce": nonce, "role": ROLES[role]}
    if lifespan_ms > 0:
        data["expireAt"] = str(now_ms + lifespan_ms)
    signed = json.dumps(data, sort_keys=True, separators=(",", ":"))
    data["sig"] = hmac.new(
        secret_access_key.encode(), signed.encode(), hashlib.sha256
    ).hexdigest()
    query = urllib.parse.urlencode(data).encode()
    return SDK_PREFIX + base64.urlsafe_b64encode(query).decode().rstrip("=")


class StaticToken:
    """A token from configuration (``WHITEBOARD_TOKEN``), used as is."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def token(self) -> str:
        return self._token.get_secret_value()


class GeneratedSdkToken:
    """A new SDK token per request, signed with the access keys."""

    def __init__(
        self,
        access_key: str,
        secret_access_key: SecretStr,
        *,
        lifespan_ms: int = DEFAULT_LIFESPAN_MS,
        role: Role = DEFAULT_ROLE,
        clock: Clock | None = None,
        nonce: Callable[[], str] = lambda: str(uuid.uuid1()),
    ) -> None:
        self._access_key = access_key
        self._secret = secret_access_key
        self._lifespan_ms = lifespan_ms
        self._role: Role = role
        self._clock = clock or SystemClock()
        self._nonce = nonce

    def token(self) -> str:
        return sdk_token(
            self._access_key,
            self._secret.get_secret_value(),
            lifespan_ms=self._lifespan_ms,
            role=self._role,
            nonce=self._nonce(),
            now_ms=self._clock.now_ms(),
        )


def token_source(settings: WhiteboardSettings, clock: Clock | None = None) -> TokenSource:
    """``WHITEBOARD_TOKEN`` when set, else a generator over the access keys.

    Raises :class:`TokenConfigError` when neither is configured (the message names the
    variables, never their values).
    """
    if settings.token is not None and settings.token.get_secret_value():
        return StaticToken(settings.token)
    if settings.access_key and settings.secret_access_key is not None:
        return GeneratedSdkToken(settings.access_key, settings.secret_access_key, clock=clock)
    raise TokenConfigError(
        "no whiteboard credentials: set WHITEBOARD_TOKEN, or WHITEBOARD_ACCESS_KEY and "
        "WHITEBOARD_SECRET_ACCESS_KEY"
    )
