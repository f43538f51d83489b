"""The contract between the handler runtime and the actions it runs.

An action is a pure ``decide(event, state) -> command | None`` plus an effectful
``run(command, context) -> Effects``. The runtime owns Kafka: it feeds decoded events in
key order, publishes the returned outputs and state updates together with the consumed
offset (one Kafka transaction), retries ``TransientError`` with backoff, and dead-letters
``InvalidEvent`` and exhausted retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from webhook.shared.events import Notification

CommandT = TypeVar("CommandT")


@dataclass(frozen=True, slots=True)
class Received:
    """One consumed record from the events topic, decoded."""

    notification: Notification
    raw: bytes
    topic: str
    partition: int
    offset: int
    headers: Mapping[str, str]
    key: str | None


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One consumed record of an extra input topic (see ``Action``), not decoded: the
    runtime passes it to ``decide`` in place of :class:`Received`."""

    raw: bytes
    topic: str
    partition: int
    offset: int
    headers: Mapping[str, str]
    key: str | None


@dataclass(frozen=True, slots=True)
class Output:
    """A record to publish, atomically with the consumed offset."""

    topic: str
    key: str | None
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, topic: str, key: str | None, value: Mapping[str, Any], **headers: str
    ) -> Output:
        body = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        return cls(topic=topic, key=key, value=body, headers=headers)


@dataclass(frozen=True, slots=True)
class Effects:
    """What ``run`` did: records to publish and state entries to write (``None`` deletes)."""

    outputs: tuple[Output, ...] = ()
    state: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    commit_now: bool = False
    """``run`` did something outside Kafka that a redo would repeat (e.g. sent an alert):
    the runtime commits right after this record rather than at the end of its batch, so
    a crash repeats at most the record in hand."""


class StateView(Protocol):
    """Read-only view of the handler's durable state (a compacted topic, per handler)."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...


class TableView(Protocol):
    """Read-only live view of a compacted topic (text key -> JSON object), e.g. the
    recording sessions. Obtained from the factory context (``ActionContext.table``)."""

    def get(self, key: str) -> Mapping[str, Any] | None: ...

    def items(self) -> Iterator[tuple[str, Mapping[str, Any]]]: ...


class TransientError(Exception):
    """Worth retrying later with the same command: timeouts, 5xx, 429, Agora 62/65."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidEvent(Exception):
    """The event can never be handled (malformed, fails its model): dead-letter it now."""


class ActionFailed(Exception):
    """The action failed for good (e.g. a 4xx from the remote API). The runtime records a
    failed outcome; ``effects`` are still published (e.g. an alert record)."""

    def __init__(self, message: str, effects: Effects | None = None) -> None:
        super().__init__(message)
        self.effects = effects or Effects()


class Action(Protocol, Generic[CommandT]):
    """One handler: its consumer group is ``<group_prefix>.<name>``.

    Optional attribute ``extra_inputs: tuple[str, ...]``: names of
    :class:`~webhook.shared.kafka_settings.TopicNames` fields (e.g. ``("actions",)``) whose
    topics the group consumes besides the events topic. Their records reach ``decide`` as
    :class:`RawRecord` (same ordering, retries, DLQ and commits); records that carry the
    header ``action`` equal to this action's name (its own outcomes) are skipped.

    Optional attribute ``decide_each_attempt: bool`` (default false: a retry runs the first
    decision again): decide anew before every attempt, for actions whose decisions read
    state that records of another input may change while a record waits for its retry.

    Optional attribute ``event_types: frozenset[int]``: the only callback event types
    ``decide`` may act on. A callback whose ``eventType`` header names another type is
    finished as ``ignored`` without decoding its value, which spares a handler that acts
    on one callback in fifty the cost of reading the other forty-nine. Declare it only
    when ``decide`` returns ``None`` for every other type; without it, every callback
    reaches ``decide``.

    Optional method ``prepare() -> None``: called once by ``agora-events handlers`` before
    the action's runner starts, to connect ahead what the first event would otherwise
    wait for. It must not block (start background work instead).
    """

    name: str

    def decide(self, event: Received, state: StateView) -> CommandT | None: ...

    def run(self, command: CommandT) -> Effects: ...
