"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` variables.

Off unless the environment names a trace exporter: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (OTLP over HTTP/protobuf), or ``OTEL_TRACES_EXPORTER``
= ``otlp`` / ``console``; ``OTEL_SDK_DISABLED=true`` wins over all. Everything else
(sampler, resource attributes, service name, batch delays, headers, timeouts) is read by the
OpenTelemetry SDK from its own variables. When off, no provider is installed and the API's
no-op tracer makes every hook below free.

When on:

- the webhook's Flask app gets a server span per request (``POST /ncs``), and each record it
  publishes carries W3C ``traceparent`` (and ``tracestate``) headers of that span;
- every httpx client of the process (Agora REST, whiteboard, alert sinks) gets a client span
  per call, with ``traceparent`` sent along;
- log records carry ``trace_id`` and ``span_id`` of the current span
  (:class:`TraceIdFilter`, installed by :func:`webhook.shared.logs.configure_json_logging`).

The handlers continue the trace from the record headers (:mod:`handlers.runtime.tracing`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span

from webhook.shared.event_records import Record

log = logging.getLogger(__name__)

TRACE_HEADERS = ("traceparent", "tracestate")
"""W3C Trace Context headers, as Kafka header names."""

_SUPPORTED_EXPORTERS = frozenset({"otlp", "console"})
_lock = threading.Lock()
_configured: bool | None = None


def tracing_requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces to be exported."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER")
    if exporters is not None:
        return any(name.strip() not in ("", "none") for name in exporters.split(","))
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the tracer provider and instrument httpx, once per process; returns whether
    tracing is on. ``service_name`` is the default ``service.name`` (``OTEL_SERVICE_NAME``
    or ``OTEL_RESOURCE_ATTRIBUTES`` override it).

    Call it in the process that serves (after a fork: the batch exporter runs a thread).
    """
    global _configured
    with _lock:
        if _configured is not None:
            return _configured
        _configured = False
        env = os.environ if env is None else env
        if not tracing_requested(env):
            return False
        exporters = _exporters(env)
        if not exporters:
            return False
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get(
            "OTEL_RESOURCE_ATTRIBUTES", "")
        resource = Resource.create({} if named else {SERVICE_NAME: service_name})
        provider = TracerProvider(resource=resource)
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        atexit.register(provider.shutdown)  # flush what is batched on a normal exit
        _instrument_httpx()
        _configured = True
        log.info("tracing on", extra={"exporters": ",".join(type(e).__name__ for e in exporters)})
        return True


def tracing_on() -> bool:
    """Whether this process turned tracing on (:func:`configure_tracing`). When it did not,
    there is no span to annotate or propagate, and a hot path can skip the hooks."""
    return bool(_configured)


def _exporters(env: Mapping[str, str]) -> list[Any]:
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    found: list[Any] = []
    for name in names:
        if name in ("", "none"):
            continue
        if name not in _SUPPORTED_EXPORTERS:
            log.warning("OTEL_TRACES_EXPORTER %r is not supported (otlp, console): ignored", name)
            continue
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            found.append(ConsoleSpanExporter())
            continue
        protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
        if protocol != "http/protobuf":
            log.warning("OTLP protocol %r is not supported, only http/protobuf: "
                        "traces are not exported", protocol)
            continue
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        found.append(OTLPSpanExporter())
    return found


def _instrument_httpx() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()


class TraceIdFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` of the current span to a log record made inside a
    recording span (the JSON formatter prints them). A filter, not a record factory: it
    runs after ``extra=`` was applied, so it never collides with context the caller gave."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = trace.format_trace_id(context.trace_id)
                record.span_id = trace.format_span_id(context.span_id)
        return True


def instrument_flask(app: Any) -> None:
    """A server span per request of ``app`` (only when tracing is on). The instrumentation
    is imported here so that importing this module never imports Flask."""
    if not _configured:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
        app, excluded_urls="healthz,readyz,metrics")


def current_trace_headers() -> list[tuple[str, bytes]]:
    """``traceparent``/``tracestate`` of the current span as Kafka headers (none when no
    span is recording, e.g. tracing off)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, carrier[name].encode()) for name in TRACE_HEADERS if name in carrier]


def with_trace(record: Record) -> Record:
    """``record`` with the current trace context in its headers (unchanged when tracing is
    off). The value is never touched."""
    extra = current_trace_headers()
    if not extra:
        return record
    kept = tuple((k, v) for k, v in record.headers if k not in TRACE_HEADERS)
    return Record(record.topic, record.key, record.value, kept + tuple(extra))


def annotate(attributes: Mapping[str, object]) -> None:
    """Set text and integer attributes (non-empty ones) on the current span, each name
    prefixed with ``agora.`` (``agora.noticeId``, ``agora.cname``...)."""
    span: Span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        if isinstance(value, str | int) and value != "":
            span.set_attribute(f"agora.{name}", value)


def extract_context(headers: Iterable[tuple[str, bytes | None]]) -> Any:
    """The trace context carried by Kafka headers (an empty context when there is none)."""
    carrier = {name: (value or b"").decode("utf-8", "replace") for name, value in headers
               if name in TRACE_HEADERS}
    return propagate.extract(carrier)


def reset_for_tests() -> None:
    """Forget the configuration decision (tests configure several times in one process)."""
    global _configured
    with _lock:
        _configured = None
