"""Typed Cloud Recording requests (reference/agora-facts.md 2.3-2.8) and the identifiers
and modes they carry; the answers are parsed in :mod:`.api_responses`.

Requests are small frozen records that know their method, path and JSON body, so the
client has one generic send and the paths are testable without a server. ``cname`` and
``uid`` always travel as strings. A ``clientRequest`` is kept exactly as Agora documents it
(a JSON object), because it is also what profiles and the session registry store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote

from handlers.secret_names import is_secret_name

Mode = Literal["individual", "mix", "web"]
MODES: tuple[Mode, ...] = get_args(Mode)
Endpoint = Literal[
    "acquire", "start", "query", "update", "updateLayout", "stop", "channel_users"
]


REDACTED = "***"


def redact(value: Any) -> Any:
    """A copy of a JSON value with every credential-like field (``accessKey``,
    ``secretKey``, ``stsToken``, ``token``, ``secret``, ``salt``...) replaced by ``***``.
    Use it before a request body goes anywhere but the wire."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_name(k) and v is not None
                else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def uid_string(uid: str | int) -> str:
    """The wire form of a uid: Agora wants the decimal integer as a JSON string."""
    if isinstance(uid, bool):
        raise TypeError("uid must be a decimal string or an int, not a bool")
    return str(uid)


def check_mode(mode: str) -> Mode:
    """``mode`` itself, typed; ``ValueError`` naming the allowed values otherwise."""
    for known in MODES:
        if mode == known:
            return known
    raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")


# What Agora hands out: resourceIds are base64url text, sids hex (facts 2.4, 2.5); a
# cname uses Agora's channel-name characters (no "/"). Anything else, or a dot segment,
# could change the path the request goes to (".." climbs out of the task's URL), so it is
# refused before a request is built.
_RESOURCE_ID = re.compile(r"[A-Za-z0-9_\-]{1,2048}")
_SID = re.compile(r"[A-Za-z0-9_\-]{1,256}")
_APP_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_PATH_CNAME = re.compile(r"[A-Za-z0-9 !#$%&()+\-:;<=.>?@\[\]^_{}|~,]{1,1024}")


class InvalidIdentifier(ValueError):
    """A resourceId, sid, App ID or cname that cannot be a path segment; the message
    names the field and what is expected (the value is not shown)."""


def checked_id(field_name: str, value: str) -> str:
    """``value`` if it is a well-formed ``field_name`` (``resourceId``, ``sid``,
    ``appid`` or ``cname``); :class:`InvalidIdentifier` otherwise."""
    pattern, expected = {
        "resourceId": (_RESOURCE_ID, "1-2048 characters of A-Z a-z 0-9 _ -"),
        "sid": (_SID, "1-256 characters of A-Z a-z 0-9 _ -"),
        "appid": (_APP_ID, "1-64 letters and digits"),
        "cname": (_PATH_CNAME, "Agora's channel-name characters, not '.' or '..'"),
    }[field_name]
    if not isinstance(value, str) or not pattern.fullmatch(value) or value in (".", ".."):
        raise InvalidIdentifier(f"{field_name}: must be {expected}")
    return value


def _segment(field_name: str, value: str) -> str:
    # Checked, then quoted: an id never changes the shape of the path.
    return quote(checked_id(field_name, value), safe="")


def _session_path(resource_id: str, sid: str, mode: Mode, action: str) -> str:
    return (f"/resourceid/{_segment('resourceId', resource_id)}/sid/{_segment('sid', sid)}"
            f"/mode/{mode}/{action}")



@dataclass(frozen=True, slots=True)
class AcquireRequest:
    """``POST .../acquire``."""

    cname: str
    uid: str
    client_request: Mapping[str, Any] = field(default_factory=dict, repr=False)

    endpoint: Endpoint = field(default="acquire", init=False)
    method: str = field(default="POST", init=False)

    def path(self) -> str:
        return "/acquire"

    def body(self) -> dict[str, Any] | None:
        return {"cname": self.cname, "uid": self.uid, "clientRequest": dict(self.client_request)}


@dataclass(frozen=True, slots=True)
class StartRequest:
    """``POST .../resourceid/{resourceId}/mode/{mode}/start``. ``repr`` never shows the
    clientRequest (it carries storage keys and the RTC token)."""

    mode: Mode
    resource_id: str
    cname: str
    uid: str
    client_request: Mapping[str, Any] = field(repr=False)

    endpoint: Endpoint = field(default="start", init=False)
    method: str = field(default="POST", init=False)

    def path(self) -> str:
        return f"/resourceid/{_segment('resourceId', self.resource_id)}/mode/{self.mode}/start"

    def body(self) -> dict[str, Any] | None:
        return {"cname": self.cname, "uid": self.uid, "clientRequest": dict(self.client_request)}


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """``GET .../resourceid/{resourceId}/sid/{sid}/mode/{mode}/query`` (no body)."""

    mode: Mode
    resource_id: str
    sid: str

    endpoint: Endpoint = field(default="query", init=False)
    method: str = field(default="GET", init=False)

    def path(self) -> str:
        return _session_path(self.resource_id, self.sid, self.mode, "query")

    def body(self) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """``POST .../update`` (subscription lists, web ``onhold``, RTMP URL, STS refresh) or,
    with ``layout=True``, ``POST .../updateLayout`` (composite only; each call replaces the
    whole layout)."""

    mode: Mode
    resource_id: str
    sid: str
    cname: str
    uid: str
    client_request: Mapping[str, Any] = field(repr=False)
    layout: bool = False

    method: str = field(default="POST", init=False)

    @property
    def endpoint(self) -> Endpoint:
        return "updateLayout" if self.layout else "update"

    def path(self) -> str:
        return _session_path(self.resource_id, self.sid, self.mode, self.endpoint)

    def body(self) -> dict[str, Any] | None:
        return {"cname": self.cname, "uid": self.uid, "clientRequest": dict(self.client_request)}


@dataclass(frozen=True, slots=True)
class StopRequest:
    """``POST .../stop``. ``async_stop`` returns at once instead of waiting for uploads
    (a synchronous stop that takes over 20 s fails with code 50)."""

    mode: Mode
    resource_id: str
    sid: str
    cname: str
    uid: str
    async_stop: bool = False

    endpoint: Endpoint = field(default="stop", init=False)
    method: str = field(default="POST", init=False)

    def path(self) -> str:
        return _session_path(self.resource_id, self.sid, self.mode, "stop")

    def body(self) -> dict[str, Any] | None:
        return {
            "cname": self.cname,
            "uid": self.uid,
            "clientRequest": {"async_stop": self.async_stop},
        }


@dataclass(frozen=True, slots=True)
class ChannelUsersRequest:
    """``GET {api_base}/dev/v1/channel/user/{appid}/{cname}`` (RTC channel management,
    facts 2.12): who is in the channel. Not under the Cloud Recording prefix, so
    :meth:`path` is absolute (``absolute`` tells the client)."""

    app_id: str
    cname: str

    endpoint: Endpoint = field(default="channel_users", init=False)
    method: str = field(default="GET", init=False)
    absolute: bool = field(default=True, init=False)

    def path(self) -> str:
        return (f"/dev/v1/channel/user/{_segment('appid', self.app_id)}"
                f"/{_segment('cname', self.cname)}")

    def body(self) -> dict[str, Any] | None:
        return None


RecordingRequest = (
    AcquireRequest | StartRequest | QueryRequest | UpdateRequest | StopRequest
    | ChannelUsersRequest
)
