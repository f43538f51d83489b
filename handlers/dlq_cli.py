"""``agora-events dlq list|replay``: inspect and re-inject dead letters.

``replay`` copies pending dead letters back to their original topic, marked
``replay-for: <handler>`` so only the handler that gave up on a record handles it again;
each record is replayed once (per-handler replay positions, committed in the same
transaction as the copies). ``--dry-run`` prints the plan and writes nothing.
"""

from __future__ import annotations

import click

from handlers.runtime.replay import DlqReader, list_dead_letters, replay_dead_letters
from handlers.settings import HandlerSettings
from webhook.logs import configure_json_logging


def _reader(settings: HandlerSettings) -> DlqReader:
    return DlqReader(settings.kafka.client_config(), settings.topics.dlq, settings.group_prefix)


@click.group("dlq")
def dlq_group() -> None:
    """Dead letters (topic AGORA_TOPIC_DLQ, default agora.dlq)."""


@dlq_group.command("list")
@click.option("--handler", default=None, help="Only dead letters of this handler.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N records.")
def list_command(handler: str | None, limit: int | None) -> None:
    """Print dead letters as JSON lines (``pending``: not replayed yet)."""
    settings = HandlerSettings()
    configure_json_logging(settings.log_level)
    count = list_dead_letters(_reader(settings), handler=handler, limit=limit, emit=click.echo)
    click.echo(f"{count} dead letter(s)", err=True)


@dlq_group.command("replay")
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; write nothing.")
@click.option("--handler", default=None, help="Only dead letters of this handler.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N records.")
def replay_command(dry_run: bool, handler: str | None, limit: int | None) -> None:
    """Re-inject pending dead letters into their original topic, each once."""
    settings = HandlerSettings()
    configure_json_logging(settings.log_level)
    result = replay_dead_letters(
        _reader(settings),
        handler=handler,
        limit=limit,
        dry_run=dry_run,
        emit=click.echo,
        transactional_id=f"{settings.group_prefix}.dlq-replay",
    )
    count = len(result.replayed)
    if dry_run:
        click.echo(f"dry run: {count} dead letter(s) would be replayed; nothing was written")
    else:
        click.echo(f"replayed {count} dead letter(s)")
    if result.not_replayable:
        click.echo(f"{len(result.not_replayable)} dead letter(s) cannot be replayed", err=True)
