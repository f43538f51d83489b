"""A local OTLP/HTTP trace receiver: what a collector does on ``POST /v1/traces``, decoding
the protobuf ``ExportTraceServiceRequest`` the OpenTelemetry exporter sends, and keeping
every span as a plain :class:`ReceivedSpan` for tests to look at."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER",
          5: "CONSUMER"}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: int

    def line(self) -> str:
        """One readable line (for the closing note and failure messages)."""
        keys = ("url.full", "http.url", "http.status_code", "http.response.status_code",
                "agora.handler", "agora.noticeId", "agora.cname", "agora.outcome",
                "http.route")
        shown = {k: self.attributes[k] for k in keys if k in self.attributes}
        return (f"{self.service:<24} {self.kind:<8} {self.name:<34} trace={self.trace_id} "
                f"span={self.span_id} parent={self.parent_span_id or '-':<16} {shown}")


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            service = str(attributes.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(ReceivedSpan(
                        service=service, name=span.name, kind=_KINDS.get(span.kind, "?"),
                        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        status=span.status.code,
                    ))
        with self.server.lock:
            self.server.spans.extend(spans)
            self.server.requests += 1
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lock: threading.Lock
    spans: list[ReceivedSpan]
    requests: int


class OtlpReceiver:
    def __init__(self, server: _Server) -> None:
        self._server = server

    @property
    def endpoint(self) -> str:
        """The value of ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter adds ``/v1/traces``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> int:
        with self._server.lock:
            return self._server.requests

    def spans(self) -> list[ReceivedSpan]:
        with self._server.lock:
            return list(self._server.spans)


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.lock = threading.Lock()
    server.spans = []
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield OtlpReceiver(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
