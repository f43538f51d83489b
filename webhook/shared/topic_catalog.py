"""The topic catalog: every topic the project writes, its purpose and configuration, and
creating the missing ones. Topics are created explicitly (never by broker auto-creation) so
partitions, replication and cleanup policy are what the catalog says."""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from webhook.shared.kafka_settings import KafkaSettings, TopicNames

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    compacted: bool = False
    retention_ms: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def configs(self, min_insync_replicas: int | None) -> dict[str, str]:
        configs = dict(self.extra)
        configs["cleanup.policy"] = "compact" if self.compacted else "delete"
        if self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        if min_insync_replicas:
            configs["min.insync.replicas"] = str(min_insync_replicas)
        return configs


def catalog(names: TopicNames) -> list[TopicSpec]:
    """Every topic the service writes, with its cleanup policy and default retention."""
    return [
        TopicSpec(
            names.events, "every verified NCS callback, original bytes", retention_ms=14 * DAY_MS
        ),
        TopicSpec(
            names.quarantine,
            "signed callbacks that are not valid JSON/envelopes",
            retention_ms=30 * DAY_MS,
        ),
        TopicSpec(
            names.actions, "outcome of every action the handlers take", retention_ms=30 * DAY_MS
        ),
        TopicSpec(
            names.files,
            "recorded files and screenshots, one record per file",
            retention_ms=30 * DAY_MS,
        ),
        TopicSpec(
            names.screenshots, "whiteboard screenshot-list results", retention_ms=30 * DAY_MS
        ),
        TopicSpec(names.sessions, "recording session registry, latest per cname", compacted=True),
        TopicSpec(
            names.dlq,
            "dead letters: original bytes plus provenance headers",
            retention_ms=30 * DAY_MS,
        ),
        TopicSpec(names.state, "handlers' durable state (dedup ledger, incidents)", compacted=True),
    ]


def create_topics(
    kafka: KafkaSettings,
    names: TopicNames,
    partitions: int,
    replication_factor: int,
    min_insync_replicas: int | None = None,
) -> tuple[list[str], list[str]]:
    """Create missing topics; returns (created, already existing)."""
    admin = KafkaAdminClient(**kafka.client_config(), client_id="agora-events-admin")
    created: list[str] = []
    existing: list[str] = []
    try:
        for spec in catalog(names):
            request = {
                spec.name: {
                    "num_partitions": partitions,
                    "replication_factor": replication_factor,
                    "configs": spec.configs(min_insync_replicas),
                }
            }
            try:
                admin.create_topics(request, wait_for_metadata=True)
                created.append(spec.name)
            except TopicAlreadyExistsError:
                existing.append(spec.name)
    finally:
        admin.close()
    return created, existing
