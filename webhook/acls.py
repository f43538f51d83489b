"""The Kafka ACLs each component needs, and ``agora-events topics acls``.

One list, used three ways: docs/security.md prints it, operators apply it (``--apply``, run
with an admin principal) or copy the ``kafka-acls.sh`` lines, and the secure-broker test gives
each component exactly these rights and nothing else. Pure data first, I/O at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import click

from webhook.shared.kafka_settings import KafkaSettings, TopicNames

Component = Literal["webhook", "handlers", "reconciler", "operator"]
COMPONENTS: tuple[Component, ...] = ("webhook", "handlers", "reconciler", "operator")
ResourceKind = Literal["topic", "group", "transactional-id"]


@dataclass(frozen=True, slots=True)
class AclRule:
    """Allow ``operation`` on a resource, by exact name or by name prefix."""

    kind: ResourceKind
    name: str
    operation: Literal["READ", "WRITE", "DESCRIBE"]
    prefixed: bool = False

    def kafka_acls_args(self, principal: str) -> str:
        """The ``kafka-acls.sh --add`` arguments for this rule."""
        flag = {"topic": "--topic", "group": "--group", "transactional-id": "--transactional-id"}
        pattern = " --resource-pattern-type prefixed" if self.prefixed else ""
        return (
            f"--add --allow-principal {principal} --operation {self.operation} "
            f"{flag[self.kind]} {self.name}{pattern}"
        )


def component_acls(component: Component, topics: TopicNames, group_prefix: str) -> list[AclRule]:
    """What *component* needs and no more (WRITE and READ imply DESCRIBE in Kafka).

    - webhook: write the two topics it publishes to.
    - handlers: read events and their tables, write outcomes, files, screenshots, the
      registry, dead letters, state and events (so a reconciler may share the handlers'
      principal); their consumer groups and transactional ids all start with
      ``<group_prefix>.``.
    - reconciler (``recording reconcile``): read the registry without a consumer group,
      write it (finished sessions are marked or removed) and write events (the failures
      no callback reported).
    - operator (``recording``, ``dlq``, ``whiteboard`` commands): the registry, dead letters,
      and writing events/actions (recording start, dead-letter replay); ``topics create``
      and ``topics acls --apply`` need an admin principal on top.
    """
    prefix = f"{group_prefix}."
    if component == "webhook":
        return [AclRule("topic", t, "WRITE") for t in (topics.events, topics.quarantine)]
    if component == "handlers":
        rules = [AclRule("topic", topics.events, op) for op in ("READ", "WRITE")]
        for topic in (
            topics.actions, topics.files, topics.screenshots, topics.sessions, topics.dlq,
            topics.state,
        ):
            rules += [AclRule("topic", topic, "READ"), AclRule("topic", topic, "WRITE")]
        return [
            *rules,
            AclRule("group", prefix, "READ", prefixed=True),
            AclRule("transactional-id", prefix, "WRITE", prefixed=True),
        ]
    if component == "reconciler":
        return [
            AclRule("topic", topics.sessions, "READ"),
            AclRule("topic", topics.sessions, "WRITE"),
            AclRule("topic", topics.events, "WRITE"),
        ]
    return [
        AclRule("topic", topics.sessions, "READ"),
        AclRule("topic", topics.sessions, "WRITE"),
        AclRule("topic", topics.dlq, "READ"),
        AclRule("topic", topics.dlq, "WRITE"),
        AclRule("topic", topics.state, "READ"),
        AclRule("topic", topics.events, "WRITE"),
        AclRule("topic", topics.actions, "WRITE"),
        AclRule("group", f"{prefix}dlq-replay.", "READ", prefixed=True),
        AclRule("transactional-id", f"{prefix}dlq-replay", "WRITE", prefixed=True),
    ]


def apply_acls(kafka: KafkaSettings, principal: str, rules: list[AclRule]) -> None:
    """Create *rules* for *principal* with an admin client (needs ALTER on the cluster)."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourceType,
    )

    kinds = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "transactional-id": ResourceType.TRANSACTIONAL_ID,
    }
    literal, prefixed = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
    acls = [
        ACL(
            principal,
            "*",
            ACLOperation[rule.operation],
            ACLPermissionType.ALLOW,
            ResourcePattern(
                kinds[rule.kind],
                rule.name,
                prefixed if rule.prefixed else literal,
            ),
        )
        for rule in rules
    ]
    admin = KafkaAdminClient(**kafka.client_config(), client_id="agora-events-acls")
    try:
        result = admin.create_acls(acls)
    finally:
        admin.close()
    failed = result.get("failed", []) if isinstance(result, dict) else []
    if failed:
        raise click.ClickException(f"{len(failed)} ACL(s) were refused: {failed[0][1]}")


@click.command("acls")
@click.argument("component", type=click.Choice(COMPONENTS))
@click.option("--principal", required=True, help="e.g. User:webhook")
@click.option("--group-prefix", default="agora-events", show_default=True,
              help="AGORA_HANDLERS_GROUP_PREFIX of the handlers")
@click.option("--apply", "apply_now", is_flag=True,
              help="create them with the KAFKA_* settings (an admin principal)")
def acls_command(component: Component, principal: str, group_prefix: str, apply_now: bool) -> None:
    """Print (or apply) the ACLs COMPONENT needs, as kafka-acls.sh arguments."""
    rules = component_acls(component, TopicNames(), group_prefix)
    if apply_now:
        apply_acls(KafkaSettings(), principal, rules)
    for rule in rules:
        click.echo(rule.kafka_acls_args(principal))
