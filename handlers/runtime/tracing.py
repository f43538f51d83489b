"""The handlers' part of a trace: one span per attempt of an action at a record.

The span continues the trace whose ``traceparent`` the record carries (the webhook's span
for a callback), so one failure callback gives one trace: webhook -> handler -> the
action's HTTP calls (Agora ``acquire``/``start``, whiteboard, alert sinks: client spans
of the httpx instrumentation, children of this span) -> the records the action writes and
the runtime's outcome record, which carry this span's ``traceparent`` on. Logs made
during the attempt carry its ``trace_id`` (in ``Work.log_context`` too, for log lines
made after it).

With tracing off (:func:`webhook.shared.tracing.configure_tracing` not enabled) the spans are the
API's no-op ones and nothing is added to records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from handlers.action_contract import Effects, Output
from handlers.runtime.dispatch import Handled, Invalid, Result, Transient, Work
from webhook.shared.tracing import TRACE_HEADERS, current_trace_headers, extract_context

_tracer = trace.get_tracer("agora-events.handlers")


@contextmanager
def attempt_span(handler: str, work: Work) -> Iterator[None]:
    """Run one attempt inside a consumer span that continues the record's trace."""
    parent = extract_context(work.headers)
    name = f"{handler} {work.partition[0]}"
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER) as span:
        if span.is_recording():
            context = span.get_span_context()
            if context.trace_flags.sampled:
                # Logs of this record name the trace; its outcome record carries it on
                # (handlers.runtime.outcomes.outcome_of reads these two).
                work.log_context["trace_id"] = trace.format_trace_id(context.trace_id)
                work.log_context["span_id"] = trace.format_span_id(context.span_id)
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("messaging.destination.name", work.partition[0])
            span.set_attribute("messaging.destination.partition.id", str(work.partition[1]))
            span.set_attribute("messaging.kafka.offset", work.offset)
            span.set_attribute("agora.handler", handler)
            span.set_attribute("agora.attempt", work.attempts + 1)
            for key in ("noticeId", "cname", "sid"):
                if work.log_context.get(key):
                    span.set_attribute(f"agora.{key}", work.log_context[key])
        yield


def traced_attempt(handler: str, work: Work, run: Callable[[], Result]) -> Result:
    """``run()`` (one attempt) inside :func:`attempt_span`; the outputs of its result carry
    the span's trace context, and the span records how the attempt ended."""
    with attempt_span(handler, work):
        result = run()
        span = trace.get_current_span()
        if not span.is_recording():
            return result
        if isinstance(result, Handled):
            span.set_attribute("agora.outcome", result.kind)
            if result.kind == "failed":
                span.set_status(Status(StatusCode.ERROR, result.error))
            return replace(result, effects=_with_trace(result.effects))
        if isinstance(result, Invalid | Transient):
            span.set_attribute("agora.outcome", "invalid" if isinstance(result, Invalid)
                               else "transient")
            span.set_status(Status(StatusCode.ERROR, result.error))
        return result


def _with_trace(effects: Effects) -> Effects:
    headers = {k: v.decode() for k, v in current_trace_headers()}
    if not headers or not effects.outputs:
        return effects
    outputs = tuple(
        Output(o.topic, o.key, o.value,
               {**{k: v for k, v in o.headers.items() if k not in TRACE_HEADERS}, **headers})
        for o in effects.outputs
    )
    return replace(effects, outputs=outputs)
