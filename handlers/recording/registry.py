"""The recording session registry: the compacted topic ``agora.recording.sessions``.

One record per channel: key = ``cname`` (UTF-8), value = a :class:`SessionRecord` as JSON,
header ``schema-version``. A tombstone (no value) removes the channel. The latest record
per key is the truth; it is written by ``agora-events recording start/stop``, by the
restart action (after each restart) and by any application that follows this schema.
``SessionRecord.model_json_schema(by_alias=True)`` (or ``agora-events recording schema``)
prints the published JSON Schema.

Schema version 1, field by field:

- ``schema_version``: ``1``.
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
replaces them with the environment variables of the process that sends the request, at
send time; the resolved request never leaves that process. Records that carry a clear
credential are refused with an error naming the field.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from handlers.base import Output
from handlers.config import (
    ConfigError,
    RecordingProfile,
    RecordingRules,
    RulesConfig,
    parse_rules,
)
from handlers.recording.models import Mode
from handlers.recording.validation import validate_acquire, validate_start
from handlers.references import (
    CREDENTIAL_FIELD,
    MissingReference,
    ReferenceProblem,
    ReferenceRefused,
    check,
    names,
    request_policy,
    resolve,
)

__all__ = ["MissingReference", "ReferenceProblem", "ReferenceRefused"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
SCHEMA_VERSIONS = (1, 2)
SCHEMA_VERSION_HEADER = "schema-version"
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
_CREDENTIAL = CREDENTIAL_FIELD
_UID = re.compile(r"[1-9][0-9]{0,9}")


class SessionRecordError(ValueError):
    """A value that does not follow the session schema; the message names the field."""


def utc_from_ms(ms: int) -> datetime:
    """Unix milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


# --------------------------------------------------------------------------- references


references = names
"""The environment variable names referenced anywhere in a JSON value."""


def resolve_references(value: Any, env: Mapping[str, str], where: str = "clientRequest",
                       allowed: frozenset[str] | set[str] | None = None) -> Any:
    """A copy of a request's JSON value with every ``${NAME}`` replaced by ``env[NAME]``
    (:func:`handlers.references.resolve` under the request policy: only ``allowed``
    names, only as the whole value of credential fields; ``allowed`` None: the names the
    value itself uses, for values the operator wrote).

    Call it right before sending; never store or log the result. Raises
    :class:`MissingReference` or :class:`ReferenceRefused` naming the variable and the
    field, never a value."""
    policy = request_policy(names(value) if allowed is None else allowed)
    return resolve(value, env, where, policy)


def allowed_references(rules: RecordingRules) -> frozenset[str]:
    """The variables registry records may reference: ``[recording]
    allow_references`` plus every name the profiles use (the operator wrote them)."""
    used: set[str] = set(rules.allow_references)
    for profile in rules.profiles:
        used |= names(profile.client_request) | names(profile.acquire_client_request)
    return frozenset(used)


def clear_credentials(value: Any, where: str) -> list[str]:
    """JSON paths of credential fields whose value is not exactly one ``${NAME}``."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}"
            if isinstance(key, str) and _CREDENTIAL.match(key) and item not in (None, ""):
                if not (isinstance(item, str) and _ONLY_REFERENCE.fullmatch(item)):
                    found.append(path)
                continue
            found.extend(clear_credentials(item, path))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found.extend(clear_credentials(item, f"{where}[{i}]"))
    return found


class KeepReferences(Mapping[str, str]):
    """An environment in which every variable "is set" to its own reference.

    ``handlers.config.parse_rules(text, KeepReferences())`` loads the rules file with
    ``${NAME}`` left as written: what profiles give to the registry."""

    def __getitem__(self, key: str) -> str:
        return "${" + key + "}"

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def raw_rules(path: Path | None) -> RulesConfig:
    """The rules file with ``${NAME}`` references kept as written (profiles as the
    registry stores them). Raises ``ConfigError``; the built-in defaults without a path."""
    if path is None:
        return RulesConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rules file: {exc.strerror}") from None
    return parse_rules(text, KeepReferences(), str(path))


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

    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)
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
                      headers={SCHEMA_VERSION_HEADER: str(self.schema_version)})


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
    if version not in SCHEMA_VERSIONS:
        raise SessionRecordError(
            f"schema_version: {version!r} is not one of {', '.join(map(str, SCHEMA_VERSIONS))} "
            "(written by a newer version?)")
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


def check_profile(profile: RecordingProfile, *, env: Mapping[str, str],
                  allowed: frozenset[str] | set[str], with_token: bool) -> None:
    """What a real start from ``profile`` checks, without resolving anything: the record
    shape, every reference (allowed, set in ``env``), and the start and acquire requests
    with their references and a token placeholder. Raises ``ValueError`` naming the
    field (run at start-up, so a profile Agora would refuse is found before a restart
    needs it)."""
    record = SessionRecord(
        cname="profile-check", mode=profile.mode, profile=profile.name, task=profile.name,
        uid=profile.uid, backup_uid=profile.backup_uid, status="running",
        client_request=profile.client_request,
        acquire_client_request=profile.acquire_client_request, updated_at=utc_from_ms(0))
    policy = request_policy(allowed)
    try:
        check(record.client_request, "client_request", policy, env)
        check(record.acquire_client_request, "acquire_client_request", policy, env)
    except ReferenceProblem as exc:
        raise ValueError(str(exc)) from None
    request, acquire = _completed(record, dict(record.client_request),
                                  dict(record.acquire_client_request),
                                  TOKEN_PLACEHOLDER if with_token else None)
    for uid in (profile.uid, profile.backup_uid):
        validate_start(record.mode, request, cname=record.cname, uid=uid)
        validate_acquire(record.cname, uid, acquire, mode=record.mode)


TOKEN_PLACEHOLDER = "${RTC_TOKEN}"  # noqa: S105 - a placeholder, not a credential
"""Stands for the minted RTC token while a request is validated."""


def prepare_requests(
    record: SessionRecord,
    uid: str,
    *,
    env: Mapping[str, str],
    app_id: str,
    certificate: SecretStr | None,
    allowed: frozenset[str] | set[str],
    token_valid_s: int = 24 * 3600,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The start and acquire clientRequests to send for ``record`` with ``uid``:
    references resolved from ``env`` (only ``allowed`` names, only as whole credential
    values, :mod:`handlers.references`), a fresh RTC token when ``certificate`` is set,
    ``scene`` 1 for web mode, ``startParameter`` (if used) equal to the start request.
    Keep the result in memory only.

    Validation runs on the request with its references and a token placeholder, before
    anything is resolved, so no error can carry a secret. Raises
    :class:`ReferenceProblem`, ``tokens.TokenError`` or ``validation.RequestInvalid``
    (each names the field, never a secret value)."""
    from handlers.recording.tokens import build_recording_token

    policy = request_policy(allowed)
    check(record.client_request, "client_request", policy, env)
    check(record.acquire_client_request, "acquire_client_request", policy, env)
    request = _completed(record, dict(record.client_request), dict(record.acquire_client_request),
                         TOKEN_PLACEHOLDER if certificate is not None else None)
    validate_start(record.mode, request[0], cname=record.cname, uid=uid)
    validate_acquire(record.cname, uid, request[1], mode=record.mode)
    token = build_recording_token(app_id, certificate, channel=record.cname, uid=uid,
                                  valid_for_s=token_valid_s) if certificate is not None else None
    return _completed(
        record, resolve(record.client_request, env, "client_request", policy),
        resolve(record.acquire_client_request, env, "acquire_client_request", policy), token)


def _completed(record: SessionRecord, request: dict[str, Any], acquire: dict[str, Any],
               token: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if token is not None:
        request["token"] = token
    if record.mode == "web":
        acquire.setdefault("scene", 1)
    if "startParameter" in acquire:
        acquire["startParameter"] = request  # Agora: must equal what start sends
    return request, acquire


# ------------------------------------------------------------------------- read / write


class SessionStore(Protocol):
    """Read and write access to the registry: the restart action reads through ``get``
    (a live view) and writes in-flight restarts through ``save`` (durable on return)."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]: ...

    def save(self, record: SessionRecord) -> None: ...


class SessionWriter:
    """Publishes records to the sessions topic with an ``acks=all`` producer;
    :meth:`publish` returns once the broker acknowledged (raises otherwise)."""

    def __init__(self, client_config: Mapping[str, Any], topic: str,
                 timeout_s: float = 10.0) -> None:
        from handlers.runtime.clients import durable_producer

        self.topic = topic
        self._timeout_s = timeout_s
        self._producer = durable_producer(client_config, "agora-events.sessions-writer")

    def publish(self, record: SessionRecord) -> None:
        self._send(record.key, record.to_bytes(), str(record.schema_version))

    def delete(self, key: str) -> None:
        """Tombstone: the task (the record under ``key``) leaves the registry."""
        self._send(key, None, str(SCHEMA_VERSION))

    def _send(self, key: str, value: bytes | None, version: str) -> None:
        future = self._producer.send(
            self.topic, key=key.encode(), value=value,
            headers=[(SCHEMA_VERSION_HEADER, version.encode())],
        )
        future.get(timeout=self._timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)


class TableSessions:
    """A :class:`SessionStore` over a live view of the topic (the runtime's ``Table``)
    plus a writer created on first use. What ``save`` writes shows in the view once the
    view has read it back from the topic."""

    def __init__(self, view: Any, writer_factory: Callable[[], SessionWriter]) -> None:
        self._view = view
        self._writer_factory = writer_factory
        self._writer: SessionWriter | None = None
        self._lock = threading.Lock()

    def get(self, key: str) -> Mapping[str, Any] | None:
        value: Mapping[str, Any] | None = self._view.get(key)
        return value

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        items: Iterator[tuple[str, Mapping[str, Any]]] = self._view.items()
        return items

    def save(self, record: SessionRecord) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = self._writer_factory()
            writer = self._writer
        writer.publish(record)


class MemorySessions:
    """A :class:`SessionStore` and table view held in memory (tests, single-process
    tools). Values are stored as the JSON the topic would carry."""

    def __init__(self, *records: SessionRecord) -> None:
        self._values: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.saved: list[SessionRecord] = []
        for record in records:
            self.put(record)

    def put(self, record: SessionRecord) -> None:
        with self._lock:
            self._values[record.key] = json.loads(record.to_bytes())

    def put_raw(self, key: str, value: Mapping[str, Any] | None) -> None:
        with self._lock:
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = dict(value)

    def save(self, record: SessionRecord) -> None:
        self.put(record)
        with self._lock:
            self.saved.append(record)

    def get(self, key: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._values.get(key)

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        with self._lock:
            snapshot = list(self._values.items())
        return iter(snapshot)

    def record(self, key: str) -> SessionRecord | None:
        value = self.get(key)
        return None if value is None else parse_session(value, key)

    def only(self, cname: str) -> SessionRecord | None:
        """The one task of ``cname`` (``None`` when it has none; error when several)."""
        tasks = channel_tasks(self, cname)
        if len(tasks) > 1:
            raise LookupError(f"{cname!r} has {len(tasks)} tasks")
        return tasks[0] if tasks else None


def load_sessions(
    client_config: Mapping[str, Any], topic: str, timeout_s: float = 30.0
) -> dict[str, Mapping[str, Any]]:
    """The latest value per cname, read from the start of the topic to its current end
    (a one-off read; long-running processes keep a runtime ``Table`` instead)."""
    from handlers.runtime.state import Table

    table = Table(topic)
    table.start(client_config, timeout_s)
    try:
        return dict(table.items())
    finally:
        table.close()


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


def lookup(view: Any, key: str) -> SessionRecord | None:
    """The valid record under ``key`` (:attr:`SessionRecord.key`) in a table view; a
    malformed one is logged and treated as absent (its writer must fix it)."""
    value = view.get(key)
    if value is None:
        return None
    try:
        return parse_session(value, key)
    except SessionRecordError as exc:
        log.warning("ignoring a malformed session record", extra={"key": key,
                                                                  "error": str(exc)[:500]})
        return None


def channel_tasks(view: Any, cname: str) -> list[SessionRecord]:
    """Every valid task of ``cname`` in a table view (version-1 and version-2 keys),
    ordered by key. One pass over the view: the registry holds live and recently
    finished tasks only (the reconciler prunes the rest)."""
    found = []
    for key, value in view.items():
        if not isinstance(value, Mapping) or value.get("cname") != cname:
            continue
        record = lookup(view, key)
        if record is not None:
            found.append(record)
    return sorted(found, key=lambda r: r.key)


def find_task(tasks: list[SessionRecord], sid: str | None,
              uid: str | None) -> SessionRecord | None:
    """The task a callback is about: the one whose ``sid`` (or restart in flight) it
    names, else the one whose uid pair holds its recorder ``uid`` (an older sid of a
    restarted task: ``classify`` then calls it irrelevant)."""
    for record in tasks:
        if sid is not None and (record.sid == sid or (
                record.pending is not None and record.pending.failed_sid == sid)):
            return record
    for record in tasks:
        if uid is not None and uid in (record.uid, record.backup_uid):
            return record
    return None
