"""The recording session registry: the compacted topic ``agora.recording.sessions``.

This module gathers its parts: :mod:`.schema` (the record, its versions and keys),
:mod:`.store` (reading and writing the topic) and :mod:`.prepare` (requests built from a
record, with their ``${NAME}`` references). The schema, field by field:

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

from handlers.recording.prepare import (
    TOKEN_PLACEHOLDER,
    KeepReferences,
    allowed_references,
    check_profile,
    prepare_requests,
    raw_rules,
    references,
    resolve_references,
)
from handlers.recording.schema import (
    ACTIVE_STATUSES,
    ENDED,
    FINISHED_STATUSES,
    MAX_HISTORY,
    OWN_STOP_STATUSES,
    SCHEMA_VERSION,
    SCHEMA_VERSION_HEADER,
    SCHEMA_VERSIONS,
    PendingRestart,
    RestartEntry,
    SessionRecord,
    SessionRecordError,
    Status,
    WhiteboardRef,
    clear_credentials,
    json_schema,
    migrate,
    parse_session,
    task_key,
    utc_from_ms,
    valid_sessions,
)
from handlers.recording.store import (
    MemorySessions,
    SessionStore,
    SessionWriter,
    TableSessions,
    channel_tasks,
    channel_values,
    find_task,
    load_sessions,
    lookup,
)
from handlers.references import MissingReference, ReferenceProblem, ReferenceRefused

__all__ = [
    "ACTIVE_STATUSES", "ENDED", "FINISHED_STATUSES", "MAX_HISTORY", "OWN_STOP_STATUSES",
    "SCHEMA_VERSION", "SCHEMA_VERSIONS", "SCHEMA_VERSION_HEADER", "TOKEN_PLACEHOLDER",
    "KeepReferences", "MemorySessions", "MissingReference", "PendingRestart",
    "ReferenceProblem", "ReferenceRefused", "RestartEntry", "SessionRecord",
    "SessionRecordError", "SessionStore", "SessionWriter", "Status", "TableSessions",
    "WhiteboardRef", "allowed_references", "channel_tasks", "channel_values", "check_profile",
    "clear_credentials", "find_task", "json_schema", "load_sessions", "lookup", "migrate",
    "parse_session", "prepare_requests", "raw_rules", "references", "resolve_references",
    "task_key", "utc_from_ms", "valid_sessions",
]
