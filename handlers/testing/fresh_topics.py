"""Freshly created, uniquely named Kafka topics, so tests and benches can share one broker
without seeing each other's records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from kafka import KafkaAdminClient

from webhook.shared.kafka_settings import TopicNames


def unique_topic(prefix: str = "test") -> str:
    """A topic name no other test (or earlier run against a shared broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topics(
    bootstrap: str,
    names: Sequence[str],
    partitions: int = 1,
    configs: dict[str, str] | None = None,
) -> None:
    """Create ``names`` with ``partitions`` partitions each (broker-default replication).

    Returns once every partition has a leader in the broker's metadata.
    """
    if isinstance(names, str):
        raise TypeError(f"names: expected a sequence of topic names, got the string {names!r}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-admin")
    try:
        admin.create_topics(
            {
                name: {"num_partitions": partitions, "configs": dict(configs or {})}
                for name in names
            },
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def unique_topics(bootstrap: str, partitions: int = 1) -> TopicNames:
    """A full set of freshly created topics (compacted where the catalog says so)."""
    tag = uuid.uuid4().hex[:10]
    names = TopicNames(
        events=f"rt-{tag}.events",
        quarantine=f"rt-{tag}.quarantine",
        actions=f"rt-{tag}.actions",
        files=f"rt-{tag}.files",
        screenshots=f"rt-{tag}.screenshots",
        sessions=f"rt-{tag}.sessions",
        dlq=f"rt-{tag}.dlq",
        state=f"rt-{tag}.state",
    )
    create_topics(bootstrap, [names.events], partitions=partitions)
    create_topics(
        bootstrap, [names.quarantine, names.actions, names.files, names.screenshots, names.dlq]
    )
    create_topics(bootstrap, [names.sessions, names.state], configs={"cleanup.policy": "compact"})
    return names


def topics_env(names: TopicNames) -> dict[str, str]:
    """``AGORA_TOPIC_*`` variables naming ``names`` (for subprocesses)."""
    return {f"AGORA_TOPIC_{k.upper()}": v for k, v in names.model_dump().items()}
