"""``agora-events dlq list|replay|discard``: inspect, re-inject and settle dead letters.

``list`` prints newest first, as it reads. ``replay`` copies pending dead letters back to
their original topic (only a topic the handlers consume), marked ``replay-for: <handler>``
so only the handler that gave up on a record handles it again; ``discard`` settles them
without a copy. Both take the same filters as ``list``, or one letter id, and settle each
letter once (per-handler replay positions, committed in the same transaction as the
copies). ``--dry-run`` prints the plan and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from handlers.runtime.replay import (
    CONSUMED_TOPICS,
    DlqReader,
    LetterFilter,
    list_dead_letters,
    parse_letter_id,
    replay_dead_letters,
)
from handlers.settings import HandlerSettings
from handlers.timeargs import TIME, format_ms, until_after_since
from webhook.shared.kafka_settings import TopicNames


def _reader(settings: HandlerSettings) -> DlqReader:
    allowed = {getattr(settings.topics, name) for name in CONSUMED_TOPICS}
    return DlqReader(settings.kafka.client_config(), settings.topics.dlq, settings.group_prefix,
                     allowed_topics=allowed)


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filters every dlq command takes."""
    options = [
        click.option("--since", "since_ms", type=TIME, is_eager=True, default=None,
                     help="Dead-lettered at or after (ISO 8601, or 15m/2h/7d ago)."),
        click.option("--until", "until_ms", type=TIME, callback=until_after_since, default=None,
                     help="Dead-lettered before this time."),
        click.option("--cname", default=None, help="Only this channel's letters."),
        click.option("--event", default=None,
                     help="Only this event type: number (11) or msgName (session_exit)."),
        click.option("--handler", default=None, help="Only letters of this handler."),
        click.option("--error", default=None,
                     help="Only letters whose error contains this text (any case)."),
        click.option("--limit", type=click.IntRange(min=1), default=None,
                     help="At most N letters."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


class LetterId(click.ParamType[tuple[int, int]]):
    """``<dlq topic>/<partition>/<offset>`` -> (partition, offset), checked at parse time."""

    name = "TOPIC/PARTITION/OFFSET"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_letter_id(str(value), TopicNames().dlq)
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


def _where(letter: tuple[int, int] | None, **given: Any) -> LetterFilter:
    return LetterFilter(letter=letter, **given)


@click.group("dlq")
def dlq_group() -> None:
    """Dead letters (topic AGORA_TOPIC_DLQ, default agora.dlq)."""


@dlq_group.command("list")
@filter_options
@click.option("--pending", "pending_only", is_flag=True, help="Only letters not settled yet.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(
    since_ms: int | None, until_ms: int | None, cname: str | None, event: str | None,
    handler: str | None, error: str | None, limit: int | None, pending_only: bool,
    as_json: bool,
) -> None:
    """Print dead letters, newest first, as they are read (``pending``: not replayed or
    discarded yet)."""
    settings = HandlerSettings()
    where = _where(None, since_ms=since_ms, until_ms=until_ms, cname=cname,
                   event=event, handler=handler, error=error)

    def emit(summary: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(summary, sort_keys=True))
            return
        at = summary["at"]
        when = format_ms(int(at)) if at and str(at).isdigit() else "-"
        state = "pending" if summary["pending"] else "settled"
        click.echo(f"{when}  {summary['dlq']}  {state:<7}  {summary['handler']}  "
                   f"event={summary['eventType']}  cname={summary['key']}  "
                   f"attempts={summary['attempts']}  {summary['error']}")

    count = list_dead_letters(_reader(settings), limit=limit, emit=emit, where=where,
                              pending_only=pending_only)
    click.echo(f"{count} dead letter(s)", err=True)


def _settle(discard: bool) -> Callable[..., None]:
    def command(
        since_ms: int | None, until_ms: int | None, cname: str | None, event: str | None,
        handler: str | None, error: str | None, limit: int | None,
        letter_id: tuple[int, int] | None, dry_run: bool,
    ) -> None:
        settings = HandlerSettings()
        where = _where(letter_id, since_ms=since_ms, until_ms=until_ms, cname=cname,
                       event=event, handler=handler, error=error)
        result = replay_dead_letters(
            _reader(settings), where=where, limit=limit, dry_run=dry_run, emit=click.echo,
            transactional_id=f"{settings.group_prefix}.dlq-replay", discard=discard,
        )
        count = len(result.replayed)
        verb = "discarded" if discard else "replayed"
        if dry_run:
            click.echo(f"dry run: {count} dead letter(s) would be {verb}; nothing was written")
        else:
            click.echo(f"{verb} {count} dead letter(s)")
        if result.not_replayable:
            click.echo(f"{len(result.not_replayable)} dead letter(s) cannot be replayed",
                       err=True)

    return command


def _settle_command(name: str, discard: bool, doc: str) -> click.Command:
    callback = _settle(discard)
    callback.__doc__ = doc
    callback = click.option("--dry-run", is_flag=True,
                            help="Show exactly what would happen; write nothing.")(callback)
    callback = click.option("--id", "letter_id", type=LetterId(), default=None,
                            help="One letter, as `dlq list` prints it.")(callback)
    callback = filter_options(callback)
    return dlq_group.command(name)(callback)


replay_command = _settle_command(
    "replay", False,
    "Re-inject pending dead letters into their original topic, oldest first, each once.",
)
discard_command = _settle_command(
    "discard", True,
    "Settle pending dead letters without replaying them (they stop being pending).",
)
