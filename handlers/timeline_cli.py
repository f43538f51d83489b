"""``agora-events timeline --cname C``: the first command of the runbook."""

from __future__ import annotations

import sys

import click

from handlers.progress import TerminalProgress
from handlers.stop_signals import stop_on_signals
from handlers.timeargs import TIME, until_after_since
from handlers.timeline import SOURCES, Entry, follow, iter_lines, read_timeline
from webhook.shared.kafka_settings import KafkaSettings, TopicNames


def _skipped(topic: str) -> None:
    click.echo(f"note: topic {topic!r} does not exist; its records are not shown "
               "(agora-events topics create, or check AGORA_TOPIC_*)", err=True)


@click.command("timeline")
@click.option("--cname", required=True, help="The channel.")
@click.option("--since", "since_ms", type=TIME, is_eager=True, default="24h", show_default=True,
              help="From this time (ISO 8601, or 15m/2h/7d ago).")
@click.option("--until", "until_ms", type=TIME, callback=until_after_since, default=None,
              help="Up to this time (default: now).")
@click.option("--follow", "follow_", is_flag=True,
              help="Then print new entries as they are written, until Ctrl-C.")
@click.option("--source", "sources", multiple=True, type=click.Choice(SOURCES),
              help="Only these topics (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def timeline_command(
    cname: str, since_ms: int, until_ms: int | None, follow_: bool,
    sources: tuple[str, ...], as_json: bool,
) -> None:
    """What happened to channel CNAME, in time order, one line per record: callbacks
    (events), the handlers' decisions and alerts (actions), registry changes (sessions),
    files, whiteboard screenshots and dead letters. Lines marked `!` need attention."""
    if follow_ and until_ms is not None:
        raise click.BadParameter("cannot be combined with --until", param_hint="--follow")
    kafka, topics = KafkaSettings(), TopicNames()
    chosen = sources or SOURCES
    ends: dict[tuple[str, int], int] = {}
    with TerminalProgress() as progress:
        entries = read_timeline(kafka.client_config(), topics, cname, since_ms=since_ms,
                                until_ms=until_ms, progress=progress, sources=chosen,
                                ends=ends, skipped=_skipped)
    for line in iter_lines(entries, as_json):
        click.echo(line)
    if not as_json:
        click.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} for {cname}",
                   err=True)
    if not follow_:
        return

    def emit(entry: Entry) -> None:
        for line in iter_lines([entry], as_json):
            click.echo(line)
        sys.stdout.flush()

    # The poll loop checks the flag every 500 ms.
    follow(kafka.client_config(), topics, cname, emit, stop=stop_on_signals().is_set,
           sources=chosen, start=ends)
