"""``agora-events webhook``: run the ingest edge under gunicorn."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import click
from pydantic import ValidationError

from webhook.cli_contract import ConfigurationError, settings_problems
from webhook.settings import ServeSettings, WebhookSettings
from webhook.spool import UnsafeSpoolDirectory, check_directory


def _metrics_dir(configured: str | None) -> str:
    # A fresh directory per start: stale files from a previous run would be summed in.
    path = (
        Path(configured)
        if configured
        else Path(tempfile.gettempdir()) / f"agora-webhook-metrics-{os.getpid()}"
    )
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return str(path)


@click.command("webhook")
@click.option(
    "--bind", help="HOST:PORT to listen on (default AGORA_WEBHOOK_BIND or 127.0.0.1:8080)."
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="gunicorn worker processes (default "
    "AGORA_WEBHOOK_WORKERS or 2)."
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="threads per worker (default "
    "AGORA_WEBHOOK_THREADS or 16)."
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
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir(serve.metrics_dir)
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:webhook.gunicorn_conf"]
    argv += ["--bind", bind or serve.bind]
    workers = serve.workers if workers is None else workers
    threads = serve.threads if threads is None else threads
    argv += ["--workers", str(workers), "--threads", str(threads)]
    argv.append("webhook.app:create_app()")
    # Replace this process so gunicorn's master receives the service manager's signals.
    os.execv(sys.executable, argv)  # noqa: S606
