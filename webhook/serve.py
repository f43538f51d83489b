"""``agora-events webhook``: run the ingest edge under gunicorn."""

from __future__ import annotations

import os
import sys

import click
from pydantic import ValidationError

from webhook.metrics_dir import make_run_directory
from webhook.settings import ServeSettings, WebhookSettings


@click.command("webhook")
@click.option(
    "--bind", help="HOST:PORT to listen on (default AGORA_WEBHOOK_BIND or 127.0.0.1:8080)."
)
@click.option("--workers", type=int, help="gunicorn worker processes.")
@click.option("--threads", type=int, help="threads per worker (gthread workers only).")
def webhook_command(bind: str | None, workers: int | None, threads: int | None) -> None:
    """Receive NCS callbacks on POST /ncs and publish them to Kafka."""
    try:
        WebhookSettings()  # fail here, clearly, not in every worker
    except ValidationError as exc:
        # Field names and rules only: input values may be secrets.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise click.ClickException(f"invalid webhook settings: {problems}") from None
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
    argv += ["--workers", str(workers or serve.workers), "--threads", str(threads or serve.threads)]
    argv.append("webhook.app:create_app()")
    # Replace this process so gunicorn's master receives the service manager's signals.
    os.execv(sys.executable, argv)  # noqa: S606
