"""The restart action's commands, state keys and the attempt in flight (what
``decide`` hands to ``run``); see :mod:`handlers.recording.restart`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from handlers.action_contract import ActionFailed, Effects
from handlers.config import RecordingRules, RestartRules
from handlers.recording.client import RecordingApi
from handlers.recording.metrics import GaveUpReason, RestartMetrics
from handlers.recording.session_registry import (
    SessionRecord,
    SessionStore,
    lookup,
)
from handlers.recording.tokens import MAX_PRIVILEGE_S
from webhook.shared.clock import Clock
from webhook.shared.kafka_settings import TopicNames

if TYPE_CHECKING:
    from collections import OrderedDict

    from pydantic import SecretStr

log = logging.getLogger(__name__)


ACTION_NAME: Final = "restart"
FAILURE_PREFIX = "failure/"
CHANNEL_PREFIX = "channel/"
FAILOVER_PREFIX = "failover/"

REACQUIRE_AFTER_S = 240.0
"""A resourceId lives 5 minutes; older than this, a retried start acquires a new one."""
START_FAILURES_BEFORE_REACQUIRE = 3
START_BACKOFF_S = (3.0, 6.0, 9.0)
"""Agora's back-off between retries of the same start: the least delay asked of the
runtime after the 1st, 2nd and 3rd failed start on one resourceId (its own back-off may
be longer)."""
MAX_ACQUIRES_PER_RUN = 3
CONFLICT_LOOKUPS = 3
"""Tries at finding our own task after a 53 before concluding the uid is someone else's."""
CONFLICT_RETRY_S = 5.0
TOKEN_VALID_S = MAX_PRIVILEGE_S
LEDGER_SIZE = 10_000

Outcome = Literal["restarted", "gave_up", "not_needed", "failed"]


def failure_key(cname: str, sid: str) -> str:
    return FAILURE_PREFIX + json.dumps([cname, sid], separators=(",", ":"))


def channel_key(cname: str, task: str | None = None) -> str:
    """The restart times of one task (``task`` None: a version-1 record, the channel's
    only task, as before tasks existed)."""
    parts = [cname] if task is None else [cname, task]
    return CHANNEL_PREFIX + json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


def bounds_key(session: SessionRecord) -> str:
    """The state key counting ``session``'s restarts: each task is bounded on its own."""
    return channel_key(session.cname, None if session.schema_version == 1
                       else session.task_name)


def failover_key(cname: str, sid: str) -> str:
    return FAILOVER_PREFIX + json.dumps([cname, sid], separators=(",", ":"))


# ------------------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed task and the event that said so."""

    cname: str
    sid: str
    uid: str | None
    notice_id: str
    event_type: int
    event_ms: int
    reason: str
    synthetic: bool = False

    @property
    def key(self) -> str:
        return failure_key(self.cname, self.sid)


@dataclass(frozen=True, slots=True)
class RestartCommand:
    """Restart ``session`` (registry record, or built from a profile) with ``next_uid``.
    ``confirm``: ask ``query`` first; a 404 before ``grace_until_ms`` is "not yet
    failed". ``recent_restarts_ms``: the channel's restarts inside the window."""

    failure: Failure
    session: SessionRecord
    next_uid: str
    confirm: bool
    grace_until_ms: int
    recent_restarts_ms: tuple[int, ...] = ()
    recorder_uids: frozenset[str] = frozenset()
    """Our recorders' uids on the channel: not "people in the channel"."""


@dataclass(frozen=True, slots=True)
class GiveUpCommand:
    """The channel restarted ``max_restarts`` times inside the window already."""

    failure: Failure
    session: SessionRecord
    recent_restarts_ms: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FailoverCommand:
    """Remember that Agora started moving ``sid`` (starts the failover grace)."""

    cname: str
    sid: str
    at_ms: int
    notice_id: str
    new_uid: str | None = None
    """The uid Agora moves the recorder to: ours, not a person in the channel."""


@dataclass(frozen=True, slots=True)
class EndedCommand:
    """The registered task ``sid`` ended normally: mark its record ``ended``."""

    cname: str
    sid: str
    key: str = ""
    """The task's registry key (its cname for a version-1 record)."""


RestartActionCommand = RestartCommand | GiveUpCommand | FailoverCommand | EndedCommand


@dataclass
class Attempt:
    """A restart in progress (in memory across retries; durable as ``pending``)."""

    uid: str
    resource_id: str | None = None
    acquired_at_ms: int | None = None
    previous: list[str] = field(default_factory=list)
    start_failures: int = 0
    lookups: int = 0
    journaled: bool = False
    """The registry holds this resourceId as ``pending``: start may be sent."""
    started: Found | None = None
    """Agora accepted the start of this task; ``query`` has not yet shown it running."""
    started_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Found:
    resource_id: str
    sid: str


CONFIRM_START_S = 90.0
"""Agora: a started task that does not reach status 4/5 within ~90 s has failed."""
CONFIRM_RETRY_S = 5.0
"""Agora: the first query ~5 s after the sid, then with back-off."""


class Conflict(Exception):
    """Agora answered 53 (a task with this cname and uid exists)."""




class ActionParts:
    """What the restart action's parts (:mod:`.ladder`, :mod:`.records`) share: its
    collaborators and the lookups each part uses. :class:`.restart.RestartAction`
    provides them."""

    _api: RecordingApi
    _sessions: SessionStore
    _profiles: RecordingRules
    _rules: RestartRules
    _topics: TopicNames
    _app_id: str
    _certificate: SecretStr | None
    _clock: Clock
    _env: Mapping[str, str]
    _reacquire_after_ms: int
    _token_valid_s: int
    _metrics: RestartMetrics
    _ledger: OrderedDict[str, Attempt]

    def _current(self, cmd: RestartCommand) -> SessionRecord | None:
        return lookup(self._sessions, cmd.session.key)

    def _failed(self, cmd: RestartCommand, attempt: Attempt | None,
                error: str, why: GaveUpReason) -> ActionFailed:
        raise NotImplementedError

    def _restarted(self, cmd: RestartCommand, attempt: Attempt, found: Found) -> Effects:
        raise NotImplementedError
