"""``agora-events topics create|list|acls``: the catalog (:mod:`webhook.shared.topic_catalog`)
on the command line."""

from __future__ import annotations

import json

import click

from webhook.acls import acls_command
from webhook.shared.kafka_settings import KafkaSettings, TopicNames
from webhook.shared.topic_catalog import catalog, create_topics


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
