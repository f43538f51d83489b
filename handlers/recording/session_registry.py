"""The recording session registry: the compacted topic ``agora.recording.sessions``.

This module gathers its parts: :mod:`.schema` (the record, its versions and keys, with
the field-by-field description), :mod:`.store` (reading and writing the topic) and
:mod:`.prepare` (requests built from a record, with their ``${NAME}`` references).
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
    SESSION_SCHEMA_VERSION,
    SESSION_SCHEMA_VERSIONS,
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
    "SESSION_SCHEMA_VERSION", "SESSION_SCHEMA_VERSIONS", "TOKEN_PLACEHOLDER",
    "KeepReferences", "MemorySessions", "MissingReference", "PendingRestart",
    "ReferenceProblem", "ReferenceRefused", "RestartEntry", "SessionRecord",
    "SessionRecordError", "SessionStore", "SessionWriter", "Status", "TableSessions",
    "WhiteboardRef", "allowed_references", "channel_tasks", "channel_values", "check_profile",
    "clear_credentials", "find_task", "json_schema", "load_sessions", "lookup", "migrate",
    "parse_session", "prepare_requests", "raw_rules", "references", "resolve_references",
    "task_key", "utc_from_ms", "valid_sessions",
]
