"""The session registry's schema: one record per recording task on the compacted topic
``agora.recording.sessions`` (the store is :mod:`.store`, requests :mod:`.prepare`).

One record per recording task (schema version 2): key = the JSON array ``[cname, task]``
(UTF-8; ``task`` is the profile name, else ``uid-<uid>``), value = a :class:`SessionRecord`
as JSON, header ``schema-version``. Version-1 records (key = ``cname``, one task per
channel) are still read, as that channel's one task, and keep their key when rewritten.
A tombstone (no value) removes the task. The latest record
per key is the truth; it is written by ``agora-events recording start/stop``, by the
restart action (after each restart) and by any application that follows this schema.
``SessionRecord.model_json_schema(by_alias=True)`` (or ``agora-events recording schema``)
prints the published JSON Schema.

Field by field:

- ``schema_version``: ``2`` (``1`` for records written before tasks).
- ``task``: the task's name within the channel (version 2).
- ``cname``: the channel (equals the record key).
- ``mode``: ``individual`` | ``mix`` | ``web`` (the Cloud Recording mode in the URLs).
- ``profile``: the rules-file profile the session was started from, or ``null``.
- ``uid``: the recording bot's uid in the current task (decimal string);
  ``backup_uid``: the other uid. A restart starts with ``backup_uid`` and swaps the two,
  so an old and a new bot never collide.
- ``resource_id``, ``sid``: the current task (``null`` before it exists).
- ``status``: ``starting`` | ``running`` | ``stopping`` | ``stopped`` | ``ended`` |
  ``failed`` | ``restarting`` | ``gave_up``. ``stopping``/``stopped`` mean *we* stopped it:
  exit and leave events that follow are not failures. ``ended``: the task ended on its
  own (``session_exit`` with ``exitStatus`` 0, e.g. ``maxIdleTime`` reached), written by
  the restart action, so the reconciler no longer takes its 404 for a silent death.
  ``stopped``, ``ended``, ``failed`` and ``gave_up`` are finished: the reconciler
  removes (tombstones) such a record once it is older than
  ``[reconciler] retain_finished_s`` (a week by default).
- ``client_request``: the start ``clientRequest`` exactly as Agora documents it, and
  ``acquire_client_request`` the acquire one (``{}`` for none).
- ``restarts``: history, oldest first, at most :data:`MAX_HISTORY` entries (``at``,
  ``old_sid``, ``new_sid``, ``uid``, ``reason``, ``noticeId``).
- ``pending``: the restart in flight (``failed_sid``, ``uid``, ``resource_id``,
  ``acquired_at_ms``, ``previous_resource_ids``, ``noticeId``), written *before* its
  ``start`` is sent, so a crashed attempt can be resumed; ``null`` otherwise.
- ``started_at`` (when the current ``sid`` started), ``updated_at``: ISO-8601 UTC.
- ``whiteboard``: optional link to a whiteboard room (``room_uuid``, ``path``, ``width``,
  ``height``, ``region``, ``on_events``), read by the whiteboard action.
- ``error``: why the session is ``failed`` or ``gave_up``, else ``null``.

Unknown fields are kept (and written back by our updates), so applications may add their
own.

**Secrets are referenced by name, never stored.** Inside ``client_request`` and
``acquire_client_request``, every credential field (``accessKey``, ``secretKey``,
``stsToken``, ``token``, ``secret``, ``salt``, ``password``...) must be a reference
``"${NAME}"`` (any string may also contain references). :func:`resolve_references`
replaces them, at send time, with the environment variables the rules file allows
(``[recording] allow_references``, never the service's own credentials); the resolved
request never leaves that process. Records that carry a clear
credential are refused with an error naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from handlers.action_contract import Output
from handlers.recording.api_requests import Mode
from handlers.secret_names import is_secret_name
from webhook.shared.event_records import HEADER_SCHEMA_VERSION

SESSION_SCHEMA_VERSION = 2
"""Version of the registry's session records, apart from
:data:`webhook.shared.event_records.SCHEMA_VERSION`: the registry is read back and migrated
(:func:`migrate`), so it has its own history."""
SESSION_SCHEMA_VERSIONS = (1, 2)
MAX_HISTORY = 50

Status = Literal[
    "starting", "running", "stopping", "stopped", "ended", "failed", "restarting", "gave_up"
]
ACTIVE_STATUSES: frozenset[str] = frozenset({"starting", "running", "restarting"})
OWN_STOP_STATUSES: frozenset[str] = frozenset({"stopping", "stopped"})
ENDED = "ended"
# Nothing runs and nothing will be done for these any more: the reconciler may prune them.
FINISHED_STATUSES: frozenset[str] = frozenset({"stopped", ENDED, "failed", "gave_up"})

_ONLY_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_UID = re.compile(r"[1-9][0-9]{0,9}")


class SessionRecordError(ValueError):
    """A value that does not follow the session schema; the message names the field."""


def utc_from_ms(ms: int) -> datetime:
    """Unix milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def clear_credentials(value: Any, where: str) -> list[str]:
    """JSON paths of credential fields whose value is not exactly one ``${NAME}``."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}"
            if isinstance(key, str) and is_secret_name(key) and item not in (None, ""):
                if not (isinstance(item, str) and _ONLY_REFERENCE.fullmatch(item)):
                    found.append(path)
                continue
            found.extend(clear_credentials(item, path))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found.extend(clear_credentials(item, f"{where}[{i}]"))
    return found


# ------------------------------------------------------------------------------ schema


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)


class RestartEntry(_Part):
    """One restart: when, from which task to which, with which uid, and why."""

    at: datetime
    old_sid: str | None
    new_sid: str
    uid: str | None = None
    reason: str
    notice_id: str | None = Field(default=None, alias="noticeId")


class PendingRestart(_Part):
    """A restart in flight: the resourceId acquired for ``uid``, written before its start
    is sent. ``previous_resource_ids`` are earlier acquisitions of the same restart (one of
    them may be the task that runs when Agora answers 53)."""

    failed_sid: str
    uid: str
    resource_id: str
    acquired_at_ms: int
    previous_resource_ids: list[str] = Field(default_factory=list)
    notice_id: str | None = Field(default=None, alias="noticeId")


class WhiteboardRef(_Part):
    """The whiteboard room of a channel (see ``handlers.whiteboard.models.RoomLink``)."""

    room_uuid: str
    path: str = "/"
    width: int = 1280
    height: int = 720
    region: str | None = None
    on_events: list[int] = Field(default_factory=lambda: [11])


class SessionRecord(_Part):
    """The value of one ``agora.recording.sessions`` record (schema version 1); see the
    module documentation for every field and the rule on secrets."""

    schema_version: int = Field(default=SESSION_SCHEMA_VERSION, ge=1, le=SESSION_SCHEMA_VERSION)
    cname: str = Field(min_length=1)
    mode: Mode
    profile: str | None = None
    task: str | None = Field(default=None, min_length=1, max_length=128)
    uid: str
    backup_uid: str
    resource_id: str | None = None
    sid: str | None = None
    status: Status
    client_request: dict[str, Any]
    acquire_client_request: dict[str, Any] = Field(default_factory=dict)
    restarts: list[RestartEntry] = Field(default_factory=list)
    pending: PendingRestart | None = None
    started_at: datetime | None = None
    updated_at: datetime
    whiteboard: WhiteboardRef | None = None
    error: str | None = None

    @field_validator("uid", "backup_uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        if not _UID.fullmatch(value) or int(value) > 2**32 - 1:
            raise ValueError("must be a decimal integer string in [1, 4294967295]")
        return value

    @model_validator(mode="after")
    def _rules(self) -> SessionRecord:
        if self.uid == self.backup_uid:
            raise ValueError("uid and backup_uid must differ (restarts alternate between them)")
        clear = clear_credentials(self.client_request, "client_request") + clear_credentials(
            self.acquire_client_request, "acquire_client_request"
        )
        if clear:
            raise ValueError(
                f"{', '.join(clear)}: credentials must be references like \"${{NAME}}\", "
                "never values"
            )
        return self

    @property
    def task_name(self) -> str:
        """The task's name within its channel: ``task``, else the profile, else the
        lower of its two uids (stable across restarts, which swap the uids)."""
        if self.task:
            return self.task
        if self.profile:
            return self.profile
        return f"uid-{min(int(self.uid), int(self.backup_uid))}"

    @property
    def key(self) -> str:
        """The record's key on the topic: ``["<cname>","<task>"]`` (JSON) from schema
        version 2; the ``cname`` for a version-1 record, which keeps its key and version
        when rewritten, so a task never has two records."""
        if self.schema_version == 1:
            return self.cname
        return task_key(self.cname, self.task_name)

    def recorder_uids(self) -> frozenset[str]:
        return frozenset({self.uid, self.backup_uid})

    @property
    def next_uid(self) -> str:
        """The uid a restart of this session starts with."""
        return self.backup_uid

    def other_uid(self, uid: str) -> str:
        """Of the session's two uids, the one that is not ``uid``."""
        return self.backup_uid if uid == self.uid else self.uid

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode()

    def output(self, topic: str) -> Output:
        """The record for the runtime to publish (key cname, with the schema header)."""
        return Output(topic=topic, key=self.key, value=self.to_bytes(),
                      headers={HEADER_SCHEMA_VERSION: str(self.schema_version)})


def task_key(cname: str, task: str) -> str:
    """The registry key of one task of a channel (schema version 2)."""
    return json.dumps([cname, task], separators=(",", ":"), ensure_ascii=False)


def migrate(value: Mapping[str, Any]) -> dict[str, Any]:
    """A registry value of any published version, in the current model's shape.

    Version 1 (one record per channel, key ``cname``) has every field of version 2
    except ``task``: it is read as the channel's one task, named by its profile (or its
    uids), and keeps version 1 and its key when rewritten. Raises
    :class:`SessionRecordError` for a version this code does not know."""
    migrated = dict(value)
    version = migrated.get("schema_version", 1)
    if version not in SESSION_SCHEMA_VERSIONS:
        raise SessionRecordError(
            f"schema_version: {version!r} is not one of "
            f"{', '.join(map(str, SESSION_SCHEMA_VERSIONS))} (written by a newer version?)")
    migrated["schema_version"] = version
    return migrated


def parse_session(value: Mapping[str, Any] | bytes | str, key: str | None = None) -> SessionRecord:
    """Validate a registry value (migrating older versions, :func:`migrate`); raises
    :class:`SessionRecordError` naming the field. With ``key``, the record's key must
    equal it."""
    try:
        raw = json.loads(value) if isinstance(value, bytes | str) else value
        if not isinstance(raw, Mapping):
            raise SessionRecordError(
                f"session record{f' {key!r}' if key else ''}: expected a JSON object")
        record = SessionRecord.model_validate(migrate(raw))
    except ValueError as exc:
        if isinstance(exc, SessionRecordError):
            raise
        if not isinstance(exc, ValidationError):
            raise SessionRecordError(f"session record{f' {key!r}' if key else ''}: "
                                     "not JSON") from None
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise SessionRecordError(f"session record{f' {key!r}' if key else ''}: {problems}") \
            from None
    if key is not None and record.key != key:
        raise SessionRecordError(f"session record {key!r}: cname {record.cname!r} and task "
                                 f"{record.task_name!r} differ from the record key")
    return record


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of a registry value."""
    return SessionRecord.model_json_schema(by_alias=True, mode="serialization")


def valid_sessions(
    values: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, SessionRecord], dict[str, str]]:
    """Split raw registry values into valid records and errors (cname -> message)."""
    good: dict[str, SessionRecord] = {}
    bad: dict[str, str] = {}
    for key, value in values.items():
        try:
            good[key] = parse_session(value, key)
        except SessionRecordError as exc:
            bad[key] = str(exc)
    return good, bad


