"""gunicorn settings for the webhook (``gunicorn -c python:webhook.gunicorn_conf``).

gevent workers by default (docs/performance.md has the measurements): each request waits on
the broker's acknowledgement, and a greenlet per connection waits for it far more cheaply
than a thread; one producer per worker batches the records of all its connections. A slow
or idle connection costs a greenlet, not a worker thread, so hundreds of them cannot starve
callbacks. gunicorn's gevent worker patches the standard library in the worker, before the
app (and kafka-python) is imported: hence no ``preload_app``, which also keeps the Kafka
producer from being created before the fork (webhook.publisher). Nothing here imports
kafka-python or prometheus_client at module level, since this file loads in the master.

Deadlines for clients: the request head must arrive within ``keepalive`` seconds (gunicorn's
gevent worker bounds the wait for each request, the first one included); the body within
``AGORA_WEBHOOK_READ_TIMEOUT_S`` after it (webhook.read_deadline); otherwise the connection
is closed.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from webhook.settings import ServeSettings
from webhook.shared.logs import configure_json_logging

_serve = ServeSettings()

bind = [_serve.bind] + ([_serve.admin_bind] if _serve.admin_bind else [])
worker_class = _serve.worker_class
workers = _serve.workers
threads = _serve.threads
worker_connections = _serve.worker_connections
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


def post_worker_init(worker: Any) -> None:
    # The app is loaded: what exists now (modules, models, the app) lives as long as the
    # worker. Frozen, it is left out of every collection, so a full one scans only newer
    # objects: a pause of about 60-80 ms on ~70,000 objects, stalling every callback the
    # worker holds, becomes well under a millisecond.
    gc.freeze()


def worker_exit(server: Any, worker: Any) -> None:
    # Let the spool drainer finish its batch, so it commits what the broker acknowledged.
    from webhook.drainer import stop_drainers

    stop_drainers()


def child_exit(server: Any, worker: Any) -> None:
    # Drop a dead worker's live gauges from the aggregated /metrics view.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    # The metrics directory was made for this run (webhook.serve): remove its files only.
    from webhook.metrics_dir import remove_run_directory

    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        remove_run_directory(Path(configured))
