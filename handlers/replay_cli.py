"""``agora-events replay --handler H --since T``: re-run one handler over past events."""

from __future__ import annotations

import re

import click

from handlers.action_catalog import default_registry
from handlers.progress import TerminalProgress
from handlers.runtime.rerun import Copy, copies, rerun
from handlers.settings import HandlerSettings
from handlers.timeargs import TIME, until_after_since

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@click.command("replay")
@click.option("--handler", required=True,
              help="The handler to re-run (restart, whiteboard, notify, or a plugin's name).")
@click.option("--since", "since_ms", type=TIME, is_eager=True, required=True,
              help="Events from this time (ISO 8601, or 15m/2h/7d ago).")
@click.option("--until", "until_ms", type=TIME, callback=until_after_since, default=None,
              help="Up to this time.")
@click.option("--cname", default=None, help="Only this channel's events.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed; write nothing.")
def replay_command(
    handler: str, since_ms: int, until_ms: int | None, cname: str | None, dry_run: bool
) -> None:
    """Copy the events of a time range back to the events topic for HANDLER only
    (header replay-for); the other handlers skip the copies. Safe where the handler is
    idempotent: see docs/cli.md for what each one does twice."""
    known = default_registry().names()
    if not _NAME.match(handler):
        raise click.BadParameter(
            f"{handler!r}: expected a handler name ({', '.join(known)}, or a plugin's)",
            param_hint="--handler")
    if handler not in known:
        click.echo(f"note: {handler!r} is not a built-in handler ({', '.join(known)}); only "
                   "a plugin of that name will handle the copies", err=True)
    settings = HandlerSettings()
    verb = "would replay" if dry_run else "replaying"

    def emit(copy: Copy) -> None:
        click.echo(f"{verb} {copy.source} for {handler}")

    with TerminalProgress() as progress:
        count = rerun(
            settings.kafka.client_config(),
            copies(settings.kafka.client_config(), settings.topics.events, handler,
                   since_ms=since_ms, until_ms=until_ms, cname=cname, progress=progress),
            transactional_id=f"{settings.group_prefix}.replay.{handler}",
            dry_run=dry_run, emit=emit,
        )
    if dry_run:
        click.echo(f"dry run: {count} event(s) would be replayed for {handler}; "
                   "nothing was written")
    else:
        click.echo(f"replayed {count} event(s) for {handler}")
