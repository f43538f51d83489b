"""Typed Cloud Recording answers (reference/agora-facts.md 2.3-2.8, 2.12), parsed by mode
and ``serverResponse.fileListMode``, tolerating extra keys and the documented spelling
variants (``fileName``/``filename``, ``payload``/``playload``). The requests are in
:mod:`.api_requests`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from handlers.recording.api_requests import Mode

# Service status (1.9): 4/5 mean started and running; 20 is an abnormal exit.
RUNNING_STATUSES = frozenset({4, 5})
STATUS_EXITED_ABNORMALLY = 20


class _Tolerant(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )


class AcquireResponse(_Tolerant):
    cname: str = ""
    uid: str = ""
    resource_id: str = Field(alias="resourceId", min_length=1)


class StartResponse(_Tolerant):
    cname: str = ""
    uid: str = ""
    resource_id: str = Field(default="", alias="resourceId")
    sid: str = Field(min_length=1)


class UpdateResponse(_Tolerant):
    """The answer to update and updateLayout."""

    cname: str = ""
    uid: str = ""
    resource_id: str = Field(default="", alias="resourceId")
    sid: str = ""


def slice_start_ms(value: int | None) -> int | None:
    """``sliceStartTime`` in Unix ms. The REST reference says seconds, the event docs say
    ms (a documented discrepancy): values above 10**12 are ms, smaller ones seconds."""
    if value is None:
        return None
    return value if value > 10**12 else value * 1000


class RecordedFile(_Tolerant):
    """One entry of ``fileList`` (``fileName``; ``filename`` in web mode)."""

    file_name: str = Field(validation_alias=AliasChoices("fileName", "filename"))
    track_type: str | None = Field(default=None, alias="trackType")
    uid: str | None = None
    mixed_all_user: bool | None = Field(default=None, alias="mixedAllUser")
    is_playable: bool | None = Field(default=None, alias="isPlayable")
    slice_start_time: int | None = Field(default=None, alias="sliceStartTime")

    @property
    def slice_start_ms(self) -> int | None:
        return slice_start_ms(self.slice_start_time)


class RtmpOutput(_Tolerant):
    rtmp_url: str = Field(default="", alias="rtmpUrl")
    status: str | None = None


class ExtensionPayload(_Tolerant):
    """``payload`` (or ``playload``) of one extension service in web mode."""

    state: str | None = None
    onhold: bool | None = None
    uploading_status: str | None = Field(default=None, alias="uploadingStatus")
    file_list: tuple[RecordedFile, ...] = Field(default=(), alias="fileList")
    outputs: tuple[RtmpOutput, ...] = ()


class ExtensionServiceState(_Tolerant):
    service_name: str = Field(default="", alias="serviceName")
    payload: ExtensionPayload = Field(
        default_factory=ExtensionPayload, validation_alias=AliasChoices("payload", "playload")
    )


class RecordingServerResponse(_Tolerant):
    """``serverResponse`` of individual and composite (mix) tasks.

    ``fileListMode`` ``"string"``: ``playlist`` is the M3U8 name and ``files`` is empty;
    ``"json"``: ``files`` lists every file. Screenshot-only tasks have neither."""

    status: int | None = None
    uploading_status: str | None = Field(default=None, alias="uploadingStatus")
    file_list_mode: Literal["string", "json"] | None = Field(default=None, alias="fileListMode")
    playlist: str | None = None
    files: tuple[RecordedFile, ...] = ()
    slice_start_time: int | None = Field(default=None, alias="sliceStartTime")


class WebServerResponse(_Tolerant):
    """``serverResponse`` of web page recording tasks."""

    status: int | None = None
    extension_service_state: tuple[ExtensionServiceState, ...] = Field(
        default=(), alias="extensionServiceState"
    )

    def service(self, name: str) -> ExtensionServiceState | None:
        return next((s for s in self.extension_service_state if s.service_name == name), None)

    @property
    def files(self) -> tuple[RecordedFile, ...]:
        recorder = self.service("web_recorder_service")
        return recorder.payload.file_list if recorder else ()

    @property
    def uploading_status(self) -> str | None:
        upload = self.service("upload_service")
        return upload.payload.uploading_status if upload else None


ServerResponse = RecordingServerResponse | WebServerResponse


class SessionResponse(_Tolerant):
    """The answer to query and stop: identifiers plus the mode-specific
    ``serverResponse``."""

    mode: Mode
    cname: str = ""
    uid: str = ""
    resource_id: str = Field(default="", alias="resourceId")
    sid: str = ""
    server_response: ServerResponse

    @property
    def status(self) -> int | None:
        return self.server_response.status

    @property
    def running(self) -> bool:
        """Started and recording (status 4 or 5), Agora's "started OK" criterion."""
        return self.server_response.status in RUNNING_STATUSES

    @property
    def files(self) -> tuple[RecordedFile, ...]:
        return self.server_response.files

    @property
    def uploading_status(self) -> str | None:
        return self.server_response.uploading_status


class QueryResponse(SessionResponse):
    pass


class StopResponse(SessionResponse):
    pass


_T = TypeVar("_T", bound=_Tolerant)


class UnexpectedResponse(ValueError):
    """A success answer whose body does not have the documented shape."""


def _server_response(mode: Mode, raw: Any) -> ServerResponse:
    data = raw if isinstance(raw, Mapping) else {}
    if mode == "web":
        return WebServerResponse.model_validate(data)
    fields: dict[str, Any] = {k: v for k, v in data.items() if k != "fileList"}
    file_list = data.get("fileList")
    list_mode = data.get("fileListMode")
    if list_mode == "string" or (list_mode is None and isinstance(file_list, str)):
        fields["playlist"] = file_list if isinstance(file_list, str) else None
    elif isinstance(file_list, list):
        fields["files"] = file_list
    return RecordingServerResponse.model_validate(fields)


def _session(cls: type[SessionResponse], mode: Mode, body: Any) -> Any:
    if not isinstance(body, Mapping):
        raise UnexpectedResponse("expected a JSON object")
    try:
        server = _server_response(mode, body.get("serverResponse"))
        rest = {k: v for k, v in body.items() if k != "serverResponse"}
        return cls.model_validate({**rest, "mode": mode, "server_response": server})
    except ValidationError as exc:
        raise UnexpectedResponse(_first_error(exc)) from None


def parse_query(mode: Mode, body: Any) -> QueryResponse:
    """The query answer for a task recorded in ``mode``."""
    result: QueryResponse = _session(QueryResponse, mode, body)
    return result


def parse_stop(mode: Mode, body: Any) -> StopResponse:
    """The stop answer for a task recorded in ``mode``."""
    result: StopResponse = _session(StopResponse, mode, body)
    return result


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"


def parse_simple(model: type[_T], body: Any) -> _T:
    """Acquire, start and update answers; :class:`UnexpectedResponse` names the field."""
    if not isinstance(body, Mapping):
        raise UnexpectedResponse("expected a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise UnexpectedResponse(_first_error(exc)) from None


@dataclass(frozen=True, slots=True)
class ChannelUsers:
    """Who is in a channel: ``exists`` false when the channel is closed (nobody left);
    ``users`` every uid Agora lists (COMMUNICATION ``users``, LIVE_BROADCASTING
    ``broadcasters`` + ``audience``) as decimal strings; ``total`` Agora's count (it may
    exceed ``users`` when the audience list is capped)."""

    exists: bool
    users: frozenset[str] = frozenset()
    total: int = 0


def parse_channel_users(body: Any) -> ChannelUsers:
    """The 200 answer of the channel user list; :class:`UnexpectedResponse` otherwise."""
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), Mapping):
        raise UnexpectedResponse("expected {\"success\": true, \"data\": {...}}")
    if body.get("success") is not True:
        raise UnexpectedResponse("success is not true")
    data = body["data"]
    exists = data.get("channel_exist")
    if not isinstance(exists, bool):
        raise UnexpectedResponse("data.channel_exist: expected a boolean")
    if not exists:
        return ChannelUsers(exists=False)
    users: set[str] = set()
    for name in ("users", "broadcasters", "audience"):
        listed = data.get(name) or []
        if not isinstance(listed, list):
            raise UnexpectedResponse(f"data.{name}: expected an array")
        for uid in listed:
            if isinstance(uid, bool) or not isinstance(uid, int | str):
                raise UnexpectedResponse(f"data.{name}: expected uids")
            users.add(str(uid))
    total = data.get("total")
    audience_total = data.get("audience_total")
    count = total if isinstance(total, int) and not isinstance(total, bool) else len(users)
    if isinstance(audience_total, int) and not isinstance(audience_total, bool):
        count = max(count, len(users - {str(u) for u in data.get("audience") or []})
                    + audience_total)
    return ChannelUsers(exists=True, users=frozenset(users), total=max(count, len(users)))
