"""Value types of the whiteboard capture: request limits, the service's answers, and the
channel-to-room link (from a session record or the rules file).

Limits we enforce before anything is sent (Agora documents none beyond "pixels"):

- ``width`` and ``height``: integers in ``1..MAX_DIMENSION`` (8192). That is above any
  screen or 8K frame, and keeps a typo from asking the service for a gigapixel image.
- ``path``: a string starting with ``/``, at most ``MAX_PATH_LENGTH`` characters.
- ``room_uuid``: letters, digits and ``-`` only (it goes into the URL path).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handlers.reports import TYPED_REPORT_CONFIG, ActionReport

MAX_DIMENSION = 8192
MAX_PATH_LENGTH = 1024
_ROOM_UUID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class InvalidCaptureRequest(ValueError):
    """A capture parameter is out of range; ``field`` names it. Nothing was sent."""

    def __init__(self, field: str, expected: str, got: object) -> None:
        super().__init__(f"{field}: expected {expected}, got {got!r}")
        self.field = field


def check_dimension(field: str, value: object) -> int:
    """``value`` as a pixel size, or :class:`InvalidCaptureRequest` naming ``field``."""
    # bool is an int subclass; True is not a width.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSION:
        raise InvalidCaptureRequest(field, f"an integer from 1 to {MAX_DIMENSION}", value)
    return value


def check_path(field: str, value: object) -> str:
    """``value`` as a scene path or directory (starts with ``/``)."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_PATH_LENGTH:
        raise InvalidCaptureRequest(
            field, f"a path starting with '/' (at most {MAX_PATH_LENGTH} characters)", value
        )
    return value


def check_room_uuid(field: str, value: object) -> str:
    if not isinstance(value, str) or not _ROOM_UUID.match(value):
        raise InvalidCaptureRequest(field, "a room UUID (letters, digits, '-')", value)
    return value


def check_capture(room_uuid: object, path: object, width: object, height: object) -> None:
    """Validate everything a screenshot call sends; raises :class:`InvalidCaptureRequest`."""
    check_room_uuid("room_uuid", room_uuid)
    check_path("path", path)
    check_dimension("width", width)
    check_dimension("height", height)


class Screenshot(BaseModel):
    """One captured scene, as the service reports it (201 body or one list entry)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str
    key: str
    bucket: str
    region: str



class ScreenshotsRecord(BaseModel):
    """One whiteboard screenshot-list capture (value of an ``agora.whiteboard.screenshots``
    record; key = cname)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True,
        title="agora.whiteboard.screenshots record",
    )

    schema_version: Literal["1"] = Field(description="Version of this record's schema.")
    cname: str = Field(description="Channel name (also the record key).")
    sid: str = Field(description="Recording session id of the triggering event.")
    notice_id: str = Field(alias="noticeId", description="noticeId of the triggering event.")
    event_type: int = Field(alias="eventType", description="eventType of the triggering event.")
    room_uuid: str = Field(description="Whiteboard room that was captured.")
    path: str = Field(description="Scene directory that was captured.")
    captured_at: str = Field(description="ISO-8601 UTC time of the capture (milliseconds).")
    screenshots: list[Screenshot] = Field(
        description="One entry per scene of the directory, as the whiteboard service reported."
    )


class CaptureFailedReport(ActionReport):
    """The whiteboard handler's report on ``agora.actions`` when a capture failed for good
    (401/403/404/400 or an invalid request): ``alert`` is true."""

    model_config = TYPED_REPORT_CONFIG | ConfigDict(title="agora.actions whiteboard report")

    handler: Literal["whiteboard"] = Field(description="Always whiteboard.")
    action: Literal["screenshot-list"] = Field(description="The failed operation.")
    outcome: Literal["failed"] = Field(description="Always failed.")
    room_uuid: str = Field(description="Whiteboard room of the capture.")
    path: str = Field(description="Scene directory of the capture.")
    status: int | None = Field(
        default=None, description="HTTP status of the whiteboard service; null when the "
        "request was refused before it was sent."
    )


class Room(BaseModel):
    """``GET /v5/rooms/{uuid}``; only the fields we read are required."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    uuid: str
    is_ban: bool | None = None
    is_record: bool | None = None
    created_at: str | None = None
    limit: int | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Room:
        return cls(
            uuid=body["uuid"],
            is_ban=body.get("isBan"),
            is_record=body.get("isRecord"),
            created_at=body.get("createdAt"),
            limit=body.get("limit"),
        )


@dataclass(frozen=True, slots=True)
class RoomLink:
    """Which room to capture for a channel, and on which event types.

    The session registry (``agora.recording.sessions``) may carry it as the ``whiteboard``
    object of a session record, with exactly these keys::

        "whiteboard": {"room_uuid": "a7e0...", "path": "/", "width": 1280,
                       "height": 720, "region": "us-sv", "on_events": [11]}

    ``room_uuid`` is required; the others default as in the rules file (``path`` "/",
    1280x720, region from ``WHITEBOARD_REGION``, ``on_events`` [11] = session_exit).
    """

    room_uuid: str
    path: str = "/"
    width: int = 1280
    height: int = 720
    region: str | None = None
    on_events: frozenset[int] = frozenset({11})

    def __post_init__(self) -> None:
        check_capture(self.room_uuid, self.path, self.width, self.height)
        if self.region is not None and (not isinstance(self.region, str) or not self.region):
            raise InvalidCaptureRequest("region", "a non-empty string", self.region)


class InvalidLink(ValueError):
    """A session record's ``whiteboard`` object does not follow the documented schema."""


def _field_name(where: str, loc: Sequence[int | str]) -> str:
    return ".".join([where, *(str(p) for p in loc)])


class _LinkFields(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    room_uuid: str
    path: str = "/"
    width: int = 1280
    height: int = 720
    region: str | None = None
    on_events: list[int] = [11]


def link_from_session(
    record: Mapping[str, Any] | None, where: str = "whiteboard"
) -> RoomLink | None:
    """The link in a session record's value, ``None`` when it has none.

    Raises :class:`InvalidLink` naming the field when the object is malformed.
    """
    if record is None:
        return None
    raw = record.get("whiteboard")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidLink(f"{where}: expected an object, got {type(raw).__name__}")
    try:
        fields = _LinkFields.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        raise InvalidLink(f"{_field_name(where, err['loc'])}: {err['msg']}") from None
    return room_link(fields, where)


class _LinkSource(Protocol):
    @property
    def room_uuid(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def region(self) -> str | None: ...
    @property
    def on_events(self) -> Sequence[int]: ...


def room_link(source: _LinkSource, where: str) -> RoomLink:
    """A :class:`RoomLink` from a registry or rules-file link; errors name ``where``."""
    try:
        return RoomLink(
            room_uuid=source.room_uuid,
            path=source.path,
            width=source.width,
            height=source.height,
            region=source.region,
            on_events=frozenset(source.on_events),
        )
    except InvalidCaptureRequest as exc:
        raise InvalidLink(f"{where}.{exc}") from None


@dataclass(frozen=True, slots=True)
class CaptureCommand:
    """What ``decide`` asks ``run`` to do: one screenshot-list for one trigger."""

    cname: str
    sid: str
    notice_id: str
    event_type: int
    room_uuid: str
    path: str
    width: int
    height: int
    region: str
    trigger_key: str
    noted: tuple[Screenshot, ...] | None = None
    """The answer of an earlier call for this trigger, saved before a crash: publish it
    instead of calling again."""

    def record_fields(self) -> dict[str, Any]:
        """What both records of a capture (the screenshots, or the failure report) say
        about it."""
        return {"cname": self.cname, "sid": self.sid, "notice_id": self.notice_id,
                "event_type": self.event_type, "room_uuid": self.room_uuid,
                "path": self.path}
