"""Connecting a runner to the broker: its transactional producer, its state and tables
read to their end, its consumer subscribed once every input topic exists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handlers.runtime.client_protocols import ClientFactory
from handlers.runtime.clients import wait_for_topic
from handlers.runtime.commits import CommitBatch
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.offsets import OffsetTracker
from handlers.runtime.partition_control import PartitionControl
from handlers.runtime.runner_config import FatalRunnerError, RunnerConfig
from handlers.runtime.state import CatchUpTimeout, StateStore, Table, TopicMissing
from handlers.runtime.txn import TransactionalPublisher
from webhook.shared.clock import Clock


@dataclass(frozen=True, slots=True)
class Connected:
    commits: CommitBatch
    partitions: PartitionControl


def input_topics(config: RunnerConfig, handler: str, extra_inputs: Sequence[str]) -> list[str]:
    """The events topic and those of the action's ``extra_inputs`` (TopicNames field
    names). Pure."""
    fields = type(config.topics).model_fields
    unknown = [n for n in extra_inputs if n not in fields or n == "events"]
    if unknown:
        raise FatalRunnerError(
            f"{handler}: extra_inputs {unknown} are not topic names other than "
            f"events; expected some of {sorted(f for f in fields if f != 'events')}"
        )
    return [config.topics.events, *(getattr(config.topics, n) for n in extra_inputs)]


def connect(
    clients: ClientFactory, config: RunnerConfig, topics: list[str], *, handler: str,
    tracker: OffsetTracker, state: StateStore, tables: Sequence[Table],
    metrics: RuntimeMetrics, clock: Clock, on_started: Callable[[CommitBatch], None],
) -> Connected:
    """Producer first (``init_transactions`` aborts what a crashed predecessor left
    open, so the state read next holds no half-written transaction), then state and
    tables, then the consumer. ``on_started`` receives the commit batch as soon as it
    exists, so the caller can close its producer if a later step fails."""
    producer = clients.transactional_producer(
        config.transactional_id, transaction_timeout_ms=config.transaction_timeout_ms
    )
    commits = CommitBatch(
        TransactionalPublisher(producer, config.transactional_id), tracker, state, tables,
        handler=handler, metrics=metrics, interval_s=config.commit_interval_s,
        monotonic=clock.monotonic, now_ms=clock.now_ms,
    )
    on_started(commits)
    try:
        state.start(clients, config.startup_timeout_s)
        for table in tables:
            table.start(clients, config.startup_timeout_s)
    except (TopicMissing, CatchUpTimeout) as exc:
        raise FatalRunnerError(str(exc)) from exc
    consumer = clients.group_consumer(
        config.group_id, client_id=config.transactional_id,
        max_poll_interval_ms=config.max_poll_interval_ms,
        max_poll_records=config.max_poll_records,
        session_timeout_ms=config.session_timeout_ms,
    )
    partitions = PartitionControl(
        consumer, handler=handler, stuck_after_s=max(5.0, 10 * config.poll_timeout_s),
        monotonic=clock.monotonic,
    )
    partitions.subscribe(topics)
    # After subscribing, so the metadata the first join snapshots already lists the
    # topics (otherwise the leader rebalances again as soon as it sees them).
    try:
        for topic in topics:
            wait_for_topic(consumer, topic, config.startup_timeout_s)
    except Exception as exc:
        consumer.close(autocommit=False)
        raise FatalRunnerError(str(exc)) from exc
    return Connected(commits, partitions)
