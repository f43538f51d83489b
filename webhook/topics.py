"""The topic catalog and ``agora-events topics create|list``.

Topics are created explicitly (never by broker auto-creation) so partitions, replication and
cleanup policy are what the catalog says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import click
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from webhook.acls import acls_command
from webhook.settings import KafkaSettings, TopicNames

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


@click.group("topics")
def topics_group() -> None:
    """Create and list the service's Kafka topics, and print the ACLs each component needs."""


@topics_group.command("create")
@click.option("--partitions", default=6, show_default=True, help="partitions per topic")
@click.option("--replication-factor", default=1, show_default=True, help="3 in production")
@click.option("--min-insync-replicas", type=int, help="2 in production (with replication 3)")
def create_command(
    partitions: int, replication_factor: int, min_insync_replicas: int | None
) -> None:
    """Create every topic of the catalog that does not exist yet."""
    created, existing = create_topics(
        KafkaSettings(), TopicNames(), partitions, replication_factor, min_insync_replicas
    )
    for name in created:
        click.echo(f"created  {name}")
    for name in existing:
        click.echo(f"exists   {name}")


@topics_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json: bool) -> None:
    """Print the catalog: name, cleanup policy and purpose."""
    for spec in catalog(TopicNames()):
        policy = "compact" if spec.compacted else "delete"
        if as_json:
            click.echo(json.dumps({"name": spec.name, "cleanup": policy,
                                   "retention_ms": spec.retention_ms, "purpose": spec.purpose}))
        else:
            click.echo(f"{spec.name:32} {policy:8} {spec.purpose}")


topics_group.add_command(acls_command)
