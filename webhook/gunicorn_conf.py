"""gunicorn settings for the webhook (``gunicorn -c python:webhook.gunicorn_conf``).

gthread workers: each request blocks on the broker's acknowledgement, so threads keep the
CPU busy while others wait; one producer per worker batches their records together. No
``preload_app``: the Kafka producer must be created after the fork (webhook.publisher).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess

from webhook.logs import configure_json_logging
from webhook.settings import ServeSettings

_serve = ServeSettings()

bind = [_serve.bind]
worker_class = "gthread"
workers = _serve.workers
threads = _serve.threads
# Agora asks receivers to keep connections alive for at least 10 s.
keepalive = _serve.keepalive_s
timeout = _serve.timeout_s
graceful_timeout = 20
preload_app = False
accesslog = None
errorlog = "-"
# No runtime control socket: it lives under $HOME, which the container user lacks, and
# instances on one host would share it.
control_socket_disable = True
# Header-size limits defend the edge; bodies are bounded by the app (413).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190


def on_starting(server: Any) -> None:
    configure_json_logging()


def worker_exit(server: Any, worker: Any) -> None:
    # Let the spool drainer finish its batch, so it commits what the broker acknowledged.
    from webhook.drainer import stop_drainers

    stop_drainers()


def child_exit(server: Any, worker: Any) -> None:
    # Drop a dead worker's live gauges from the aggregated /metrics view.
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
