"""``agora-events webhook``: run the ingest edge under gunicorn."""

from __future__ import annotations

import os
import sys

import click
from pydantic import ValidationError

from webhook.metrics_dir import make_run_directory
from webhook.settings import ServeSettings, WebhookSettings
from webhook.shared.cli_contract import ConfigurationError, settings_problems
from webhook.spool import UnsafeSpoolDirectory, check_directory


@click.command("webhook")
@click.option(
    "--bind", help="HOST:PORT to listen on (default AGORA_WEBHOOK_BIND or 127.0.0.1:8080)."
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="gunicorn worker processes (default "
    "AGORA_WEBHOOK_WORKERS or 2)."
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="threads per worker, gthread workers only "
    "(default AGORA_WEBHOOK_THREADS or 16)."
)
def webhook_command(bind: str | None, workers: int | None, threads: int | None) -> None:
    """Receive NCS callbacks on POST /ncs and publish them to Kafka."""
    try:
        settings = WebhookSettings()  # fail here, clearly, not in every worker
    except ValidationError as exc:
        # Variable names and rules only: input values may be secrets.
        problems = "; ".join(settings_problems(exc))
        raise ConfigurationError(f"invalid webhook settings: {problems}") from None
    if settings.spool_dir is not None:
        try:
            check_directory(settings.spool_dir)
        except UnsafeSpoolDirectory as exc:
            raise ConfigurationError(str(exc)) from None
    serve = ServeSettings()
    try:
        serve.check_binds(bind or serve.bind)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    # A new directory per run inside the configured one (webhook.metrics_dir).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(make_run_directory(serve.metrics_dir))
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:webhook.gunicorn_conf"]
    argv += ["--bind", bind or serve.bind]
    if serve.admin_bind:
        argv += ["--bind", serve.admin_bind]
    workers = serve.workers if workers is None else workers
    threads = serve.threads if threads is None else threads
    argv += ["--workers", str(workers), "--threads", str(threads)]
    argv.append("webhook.app:create_app()")
    # Replace this process so gunicorn's master receives the service manager's signals.
    os.execv(sys.executable, argv)  # noqa: S606
