"""The ``agora-events`` command. Subcommands load lazily, so ``agora-events send`` does not
import the handlers and ``agora-events handlers`` does not import Flask.

The root applies the CLI contract (:mod:`webhook.shared.cli_contract`, docs/cli.md) to every
subcommand: exit codes, error messages instead of tracebacks, the broker probe, and the
environment variables each command reads in its ``--help``.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any

import click

from webhook.shared.cli_contract import environment_epilog, probe_broker, translate

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "webhook": "webhook.serve:webhook_command",
    "topics": "webhook.topics:topics_group",
    "send": "webhook.sender:send_command",
    "handlers": "handlers.cli:handlers_command",
    "dlq": "handlers.dlq_cli:dlq_group",
    "recording": "handlers.recording.cli:recording_group",
    "whiteboard": "handlers.whiteboard.cli:whiteboard_group",
    "timeline": "handlers.timeline_cli:timeline_command",
    "replay": "handlers.replay_cli:replay_command",
    "config": "handlers.config_cli:config_group",
}

KAFKA = "KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CAFILE"
TOPICS = "AGORA_TOPIC_* (topic names)"
AGORA = "AGORA_APP_ID, AGORA_CUSTOMER_ID, AGORA_CUSTOMER_SECRET, AGORA_APP_CERTIFICATE, " \
    "AGORA_API_BASE"
WHITEBOARD = "WHITEBOARD_API_BASE, WHITEBOARD_TOKEN, WHITEBOARD_REGION, " \
    "WHITEBOARD_ACCESS_KEY, WHITEBOARD_SECRET_ACCESS_KEY"

# The environment each command reads, shown at the end of its --help.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "webhook": ("AGORA_NCS_SECRET", "AGORA_WEBHOOK_*", KAFKA, TOPICS, "AGORA_LOG_LEVEL",
                "PROMETHEUS_MULTIPROC_DIR"),
    "topics": (KAFKA, TOPICS),
    "send": ("AGORA_NCS_SECRET (signs the callbacks)",),
    "handlers": ("AGORA_EVENTS_CONFIG (rules file)", "AGORA_HANDLERS_*", AGORA, WHITEBOARD,
                 KAFKA, TOPICS, "AGORA_LOG_LEVEL"),
    "dlq": (KAFKA, TOPICS, "AGORA_HANDLERS_GROUP_PREFIX (replay positions)"),
    "recording": ("AGORA_EVENTS_CONFIG (profiles)", AGORA, KAFKA, TOPICS),
    "whiteboard": (WHITEBOARD,),
    "timeline": (KAFKA, TOPICS),
    "replay": (KAFKA, TOPICS, "AGORA_HANDLERS_GROUP_PREFIX"),
    "config": ("AGORA_EVENTS_CONFIG (rules file, unless --rules)", "AGORA_HANDLERS_*", AGORA,
               WHITEBOARD, KAFKA, TOPICS, "every ${NAME} the rules file references"),
}

# Commands that need Kafka, by path; the services (webhook, handlers) are built to ride out
# an outage and are not probed. `config check` probes only with --broker.
NEEDS_BROKER: tuple[tuple[str, ...], ...] = (
    ("dlq",),
    ("timeline",),
    ("replay",),
    ("topics", "create"),
    ("recording", "start"),
    ("recording", "stop"),
    ("recording", "list"),
    ("recording", "reconcile"),
    ("recording", "update"),
    ("recording", "layout"),
)


def _with_epilog(command: click.Command, variables: tuple[str, ...]) -> None:
    if command.epilog is None:
        command.epilog = environment_epilog(variables)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_epilog(sub, variables)


def _probing(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` run only once the environment is valid and the broker answers; click
    has parsed and checked the options by then, so usage errors come first."""

    @functools.wraps(callback)
    def probed(*args: Any, **kwargs: Any) -> Any:
        from handlers.settings import HandlerSettings

        settings = HandlerSettings()  # every variable the command may read, checked once
        probe_broker(settings.kafka.bootstrap_servers)
        return callback(*args, **kwargs)

    return probed


def _with_probe(command: click.Command, path: tuple[str, ...]) -> None:
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _with_probe(sub, (*path, name))
        return
    wanted = any(path[: len(prefix)] == prefix for prefix in NEEDS_BROKER)
    if wanted and command.callback is not None and not getattr(command, "_probed", False):
        command.callback = _probing(command.callback)
        command._probed = True  # type: ignore[attr-defined]


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        _with_epilog(command, ENVIRONMENT.get(cmd_name, ()))
        _with_probe(command, (cmd_name,))
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if os.environ.get("AGORA_CLI_TRACEBACK"):
                raise
            raise translate(exc) from None


@click.group(cls=LazyGroup)
@click.version_option(package_name="agora-events")
def main() -> None:
    """Agora Cloud Recording callbacks as durable Kafka events, and the consumers that act
    on them.

    Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error (docs/cli.md).
    """
