"""The ``agora-events`` command. Subcommands load lazily, so ``agora-events send`` does not
import the handlers and ``agora-events handlers`` does not import Flask."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "webhook": "webhook.serve:webhook_command",
    "topics": "webhook.topics:topics_group",
    "send": "webhook.sender:send_command",
    "handlers": "handlers.cli:handlers_command",
    "dlq": "handlers.dlq_cli:dlq_group",
    "recording": "handlers.recording.cli:recording_group",
    "whiteboard": "handlers.whiteboard.cli:whiteboard_group",
}


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
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="agora-events")
def main() -> None:
    """Agora Cloud Recording callbacks as durable Kafka events, and the consumers that act
    on them."""
