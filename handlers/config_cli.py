"""``agora-events config check``: validate the rules file and environment before a deploy."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from pydantic import ValidationError

from handlers.config import RulesConfig
from handlers.config_check import (
    Problem,
    check_actions,
    check_rules_file,
    missing_topics,
)
from webhook.shared.cli_contract import (
    EXIT_USAGE,
    ConfigurationError,
    bootstrap_addresses,
    env_name,
    probe_broker,
)


@click.group("config")
def config_group() -> None:
    """Check the configuration."""


def _environment_problems() -> tuple[object | None, list[Problem]]:
    from handlers.settings import HandlerSettings

    try:
        settings = HandlerSettings()
    except ValidationError as exc:
        return None, [
            Problem(env_name(exc.title, tuple(e["loc"])), e["msg"].removeprefix("Value error, "))
            for e in exc.errors(include_input=False, include_url=False)
        ]
    try:
        bootstrap_addresses(settings.kafka.bootstrap_servers)
    except ConfigurationError as exc:
        variable, _, message = exc.message.partition(": ")
        return settings, [Problem(variable, message)]
    return settings, []


def _broker_problems(settings: object) -> list[Problem]:
    from kafka.admin import KafkaAdminClient

    from handlers.settings import HandlerSettings
    from webhook.shared.topic_catalog import catalog

    assert isinstance(settings, HandlerSettings)
    probe_broker(settings.kafka.bootstrap_servers)
    admin = KafkaAdminClient(**settings.kafka.client_config(), client_id="agora-events-check")
    try:
        existing = admin.list_topics()
    finally:
        admin.close()
    return missing_topics(existing, [spec.name for spec in catalog(settings.topics)])


@config_group.command("check")
@click.argument("names", nargs=-1)
@click.option(
    "--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Rules file to check (default: AGORA_EVENTS_CONFIG).",
)
@click.option("--broker", is_flag=True, help="Also check that every catalog topic exists.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def check_command(
    names: tuple[str, ...], rules_path: Path | None, broker: bool, as_json: bool
) -> None:
    """Check the rules file and the environment of the actions NAMES (default: the
    actions `agora-events handlers` would run). Prints every problem as `path: message`;
    exit 0 when there is none, 2 otherwise (1 if the broker cannot be reached)."""
    settings, problems = _environment_problems()
    path = rules_path
    if path is None and settings is not None:
        path = getattr(settings, "config_path", None)
    if path is None and settings is None:
        raw = os.environ.get("AGORA_EVENTS_CONFIG")
        path = Path(raw) if raw else None
    rules: RulesConfig | None = RulesConfig()
    if path is not None:
        rules, found = check_rules_file(path, os.environ)
        problems.extend(found)
    notes: list[str] = []
    if settings is not None and rules is not None:
        found, notes = check_actions(names, settings, rules)
        problems.extend(found)
    if broker and settings is not None:
        problems.extend(_broker_problems(settings))
    if as_json:
        click.echo(json.dumps({
            "ok": not problems,
            "rules": None if path is None else str(path),
            "problems": [{"path": p.path, "message": p.message} for p in problems],
            "notes": notes,
        }, indent=2))
    else:
        click.echo(f"rules file: {path if path is not None else '(none: built-in defaults)'}")
        for note in notes:
            click.echo(f"note: {note}")
        for problem in problems:
            click.echo(str(problem))
        click.echo(f"{len(problems)} problem(s)" if problems else "configuration OK")
    if problems:
        raise SystemExit(EXIT_USAGE)
