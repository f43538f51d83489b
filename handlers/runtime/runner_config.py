"""How a runner is configured, how it ends, and the error that ends it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.runtime.guard import GuardPolicy
from handlers.runtime.retry import RetryPolicy
from webhook.shared.kafka_settings import TopicNames

DEFAULT_CONCURRENCY = 256
"""Runs at once per handler unless configured (``AGORA_HANDLERS_CONCURRENCY``)."""


class RunnerExit(enum.Enum):
    """How :meth:`handlers.runtime.runner.ActionRunner.run` ended."""

    STOPPED = "stopped"  # asked to stop; finished work committed
    GUARD_TRIPPED = "guard_tripped"  # too many dead letters: refused to go on
    FAILED = "failed"  # an unexpected error (logged); uncommitted work will be redone


class FatalRunnerError(Exception):
    """The runner cannot go on (fenced producer, missing topic...)."""


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """Everything a runner needs besides its action. ``client_config`` is
    :meth:`webhook.shared.kafka_settings.KafkaSettings.client_config` (used by the default client
    factory, :class:`handlers.runtime.clients.KafkaClientFactory`)."""

    group_id: str
    transactional_id: str
    topics: TopicNames
    retry: RetryPolicy
    client_config: Mapping[str, Any]
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    max_poll_interval_ms: int = 300_000
    max_poll_records: int = 500
    poll_timeout_s: float = 0.5
    batch_time_s: float = 0.2
    max_backlog: int = 1000
    publish_ignored: bool = False
    startup_timeout_s: float = 90.0
    transaction_timeout_ms: int = 60_000
    session_timeout_ms: int = 45_000
    state_ttl_s: float = 604_800.0
    state_expiry_every_s: float = 60.0
    concurrency: int = DEFAULT_CONCURRENCY
    """Runs at once (different keys); ``AGORA_HANDLERS_CONCURRENCY``."""
    completion_poll_s: float = 0.005
    """Longest ``poll`` while runs are in flight: how late a finished run may be routed."""
    commit_interval_s: float = 0.1
    """Longest a finished record waits for its transaction while other work goes on."""
    stop_drain_s: float = 10.0
    """On stop, how long running actions may take to finish and be committed."""
