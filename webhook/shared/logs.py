"""JSON log lines for every process (webhook workers, handlers, commands)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from webhook.shared.tracing import TraceIdFilter

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_json_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as one JSON object per line.

    Context goes in ``extra=`` (noticeId, cname, sid, handler...); never pass secrets there.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(_FORMAT, rename_fields={"levelname": "level", "asctime": "time"})
    )
    handler.addFilter(TraceIdFilter())  # trace_id/span_id inside a span (tracing on)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python is chatty at INFO about every connection; its warnings still show.
    # httpx logs request URLs at INFO, and a Slack webhook URL is a credential.
    for noisy in ("kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
