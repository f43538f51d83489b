"""OpenTelemetry tracing: off unless ``OTEL_*`` variables configure an exporter; when on,
one failure callback gives one trace, as a real OTLP/HTTP receiver gets it from the real
webhook (gunicorn) and a real handlers process: the webhook's request span, the restart
handler's span continuing it from the record's ``traceparent``, and the Agora ``acquire``
and ``start`` calls under it; the records both write carry the trace on, and the logs name
it."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from support.handlers_process import HandlersProcess, handlers_env
from support.otlp_receiver import ReceivedSpan, otlp_receiver
from support.rules_files import classes_profile, write_rules
from support.runtime_helpers import wait_until

from handlers.recording.session_registry import SessionWriter
from handlers.runtime.dispatch import work_from_record
from handlers.runtime.outcomes import outcome_of
from handlers.testing.agora_recordings import ENV, start_session
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification
from webhook.shared.samples import encode, sample
from webhook.shared.tracing import current_trace_headers, tracing_requested, with_trace

# --- off unless configured ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}, False),
    ],
)
def test_tracing_is_off_unless_an_exporter_is_configured(env: dict[str, str], on: bool) -> None:
    assert tracing_requested(env) is on


def test_without_tracing_records_are_unchanged() -> None:
    # This test process never configures tracing: the API's no-op span has no context.
    body = encode(sample(11))
    record = event_record("agora.ncs.events", body, parse_notification(body), 1, "V2")
    assert current_trace_headers() == []
    assert with_trace(record) is record


def test_log_lines_in_a_span_carry_its_ids_without_overriding_the_callers() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from webhook.shared.tracing import TraceIdFilter

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(TraceIdFilter())
    logger = logging.getLogger("test.tracing.filter")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = TracerProvider().get_tracer("test")  # a local provider: the global stays unset
    try:
        logger.warning("outside")
        with tracer.start_as_current_span("attempt") as span:
            logger.warning("inside")
            logger.warning("given", extra={"trace_id": "from-context", "span_id": "s"})
        context = span.get_span_context()
    finally:
        logger.removeHandler(handler)
    outside, inside, given = records
    assert not hasattr(outside, "trace_id")
    assert inside.trace_id == f"{context.trace_id:032x}"  # type: ignore[attr-defined]
    assert inside.span_id == f"{context.span_id:016x}"  # type: ignore[attr-defined]
    assert given.trace_id == "from-context"  # type: ignore[attr-defined]


def test_an_outcome_of_a_traced_attempt_carries_its_traceparent() -> None:
    body = encode(sample(11))
    record = event_record("agora.ncs.events", body, parse_notification(body), 1, "V2")
    work = work_from_record("restart", record.topic, 0, 5, record.key, record.value,
                            record.headers)
    plain = outcome_of(work, "restart", "ok", 0.1, 1).to_record("agora.actions")
    assert "traceparent" not in dict(plain.headers)
    work.log_context.update(trace_id="0af7651916cd43dd8448eb211c80319c",
                            span_id="b7ad6b7169203331")
    traced = outcome_of(work, "restart", "ok", 0.1, 1).to_record("agora.actions")
    assert dict(traced.headers)["traceparent"] == (
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert traced.value == plain.value  # headers only


# --- one failure callback, one trace ------------------------------------------------------------



def _read(bootstrap: str, topic: str) -> list[object]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        records: list[object] = []
        while consumer.position(tp) < end:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _url(span: ReceivedSpan) -> str:
    """The URL of an httpx client span (older or stable HTTP semantic conventions)."""
    return str(span.attributes.get("url.full") or span.attributes.get("http.url") or "")


def _trace_of(spans: list[ReceivedSpan], notice_id: str) -> list[ReceivedSpan]:
    roots = [s for s in spans if s.attributes.get("agora.noticeId") == notice_id
             and s.kind == "SERVER"]
    if not roots:
        return []
    return [s for s in spans if s.trace_id == roots[0].trace_id]


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_one_failure_callback_gives_one_trace_from_webhook_to_agora(
    kafka_bootstrap: str, tmp_path: Path, live_agora: FakeAgora,
) -> None:
    topics = unique_topics(kafka_bootstrap)
    prefix = f"trace-{uuid.uuid4().hex[:6]}"
    cname = f"{prefix}-1"
    record = start_session(live_agora, cname)
    writer = SessionWriter({"bootstrap_servers": kafka_bootstrap}, topics.sessions)
    try:
        writer.publish(record)
    finally:
        writer.close()
    live_agora.end_session(str(record.sid))
    config = write_rules(tmp_path, classes_profile([f"{prefix}-*"]))
    notice_id = f"n-{uuid.uuid4().hex[:8]}"
    failure = callback_body(event_type=11, cname=cname, sid=str(record.sid),
                            notice_id=notice_id,
                            details={"msgName": "session_exit", "exitStatus": 1})

    with otlp_receiver() as receiver:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_TRACES_SAMPLER": "always_on"}
        env = handlers_env(kafka_bootstrap, topics, f"g-{prefix}", {
            **ENV, **otel,
            "AGORA_EVENTS_CONFIG": str(config), **live_agora.env(),
        })
        with run_webhook(kafka_bootstrap, tmp_path, env={**topics_env(topics), **otel},
                         workers=1, threads=2) as webhook, \
                HandlersProcess(("restart",), env, tmp_path / "handlers.log") as handlers:
            response = httpx.post(webhook.ncs_url, content=failure, headers=signed(failure),
                                  timeout=10)
            assert response.status_code == 200, response.text

            def complete() -> bool:
                names = {_url(s).rsplit("/", 1)[-1] for s in _trace_of(receiver.spans(), notice_id)}
                return {"acquire", "start"} <= names

            wait_until(complete, timeout_s=90, what="the trace with acquire and start")
            wait_until(lambda: len(_read(kafka_bootstrap, topics.actions)) >= 2, timeout_s=60,
                       what="the restart's report and outcome committed")
            log_lines = handlers.log_lines()

    trace = _trace_of(receiver.spans(), notice_id)
    (Path(tmp_path) / "trace.txt").write_text("\n".join(s.line() for s in trace))
    print("\n".join(s.line() for s in trace))  # the trace as the receiver got it
    by_id = {s.span_id: s for s in trace}
    [server] = [s for s in trace if s.kind == "SERVER"]
    assert server.service == "agora-events-webhook"
    assert server.parent_span_id == ""  # the callback starts the trace
    assert server.attributes["agora.cname"] == cname
    [handler] = [s for s in trace if s.attributes.get("agora.handler") == "restart"]
    assert handler.service == "agora-events-handlers"
    assert handler.kind == "CONSUMER"
    assert handler.parent_span_id == server.span_id  # continued from the record's headers
    calls = {_url(s).rsplit("/", 1)[-1]: s for s in trace if s.kind == "CLIENT"}
    for endpoint in ("acquire", "start"):
        span = calls[endpoint]
        assert span.service == "agora-events-handlers"
        assert span.parent_span_id == handler.span_id, endpoint
        assert _url(span).startswith(live_agora.base_url)
    assert all(s.parent_span_id in by_id or s is server for s in trace), "one connected tree"
    assert {s.trace_id for s in trace} == {server.trace_id}
    # Only this callback's trace holds these spans: nothing else started a trace with them.
    assert len({s.trace_id for s in receiver.spans()
                if s.attributes.get("agora.noticeId") == notice_id}) == 1

    # The records carry the trace on: the event the webhook wrote, the report the
    # restart action wrote.
    [event] = _read(kafka_bootstrap, topics.events)
    headers = dict(event.headers)  # type: ignore[attr-defined]
    assert headers["traceparent"].decode().split("-")[1:3] == [server.trace_id, server.span_id]
    reports = [r for r in _read(kafka_bootstrap, topics.actions)
               if json.loads(r.value).get("handler") == "restart"]  # type: ignore[attr-defined]
    assert [json.loads(r.value)["outcome"] for r in reports] == ["restarted"]  # type: ignore[attr-defined]
    report_headers = dict(reports[0].headers)  # type: ignore[attr-defined]
    assert report_headers["traceparent"].decode().split("-")[1:3] == [server.trace_id,
                                                                       handler.span_id]
    # So does the runtime's outcome record of the attempt.
    [outcome] = [r for r in _read(kafka_bootstrap, topics.actions)
                 if dict(r.headers).get("record-type") == b"outcome"]  # type: ignore[attr-defined]
    outcome_parent = dict(outcome.headers)["traceparent"].decode()  # type: ignore[attr-defined]
    assert outcome_parent == f"00-{server.trace_id}-{handler.span_id}-01"
    # The handler's log lines about this event name the trace.
    traced = [line for line in log_lines if line.get("trace_id") == server.trace_id]
    assert traced, "no log line carries the trace id"
