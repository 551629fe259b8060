"""An in-process OTLP trace receiver for tests: HTTP/protobuf and gRPC on free loopback ports.

`OtlpReceiver` starts a ``POST /v1/traces`` HTTP server (``http.server`` on a thread) and a
grpcio ``TraceService/Export`` server, decodes every request with opentelemetry-proto and keeps
the `ExportTraceServiceRequest` objects. `spans()` flattens them into `ReceivedSpan` records
with plain Python values (ids as bytes, attributes as dicts, resource attributes included);
`wait_for_spans(n)` blocks until n spans arrived. `delay` makes every request slow and
`http_status` / `grpc_code` make it fail, to test exporters against a sick collector; all
three are read at each request, so a test can make a healthy receiver fail and heal it again.
`retry_after` adds the collector's "retry in N s" hint to failures (HTTP ``Retry-After``, gRPC
``RetryInfo``), which the OTLP exporters follow instead of their backoff of a second or more.
"""

from __future__ import annotations

import gzip
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import grpc
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "OtlpReceiver",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedRequest",
    "ReceivedSpan",
    "decode_attributes",
    "otlp_receiver",
]

Transport = Literal["http", "grpc"]
_TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A span event as it arrived."""

    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedLink:
    """A span link as it arrived."""

    trace_id: bytes
    span_id: bytes
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """A span as it arrived on the wire, with plain Python values."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    """Empty for a root span."""
    name: str
    kind: int
    """The OTLP enum: 1 internal, 2 server, 3 client, 4 producer, 5 consumer."""
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_code: int
    """The OTLP enum: 0 unset, 1 ok, 2 error."""
    status_message: str
    attributes: dict[str, Any]
    events: tuple[ReceivedEvent, ...]
    links: tuple[ReceivedLink, ...]
    resource: dict[str, Any]
    scope: str
    transport: Transport


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One successful export request."""

    transport: Transport
    headers: dict[str, str]
    """Lower-cased header (HTTP) or metadata (gRPC) names."""
    message: ExportTraceServiceRequest


class OtlpReceiver:
    """Receives OTLP traces over HTTP/protobuf and gRPC on loopback; start with `start()`."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        http_status: int = 200,
        grpc_code: grpc.StatusCode | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.delay = delay
        """Seconds every request waits before it is answered."""
        self.http_status = http_status
        """Status for HTTP requests; anything but 2xx is a failure (not recorded)."""
        self.grpc_code = grpc_code
        """When set, gRPC requests fail with this code (not recorded)."""
        self.retry_after = retry_after
        """Seconds a failed request tells the exporter to wait before retrying (None: no hint)."""
        self.attempts = 0
        """Requests seen, failed ones included."""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._stopping = threading.Event()
        self._http: ThreadingHTTPServer | None = None
        self._grpc: Any = None
        self._grpc_port = 0

    @property
    def http_endpoint(self) -> str:
        """The full OTLP/HTTP traces URL."""
        assert self._http is not None, "start() the receiver first"
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1/traces"

    @property
    def http_base(self) -> str:
        """The OTLP/HTTP base URL (what `OTEL_EXPORTER_OTLP_ENDPOINT` would hold)."""
        return self.http_endpoint.removesuffix("/v1/traces")

    @property
    def grpc_endpoint(self) -> str:
        """The OTLP/gRPC endpoint."""
        assert self._grpc is not None, "start() the receiver first"
        return f"http://127.0.0.1:{self._grpc_port}"

    def start(self) -> OtlpReceiver:
        """Start both servers on free loopback ports."""
        self._stopping.clear()
        self._http = _QuietHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        threading.Thread(
            target=self._http.serve_forever, args=(0.05,), daemon=True, name="otlp-http"
        ).start()
        self._grpc = grpc.server(ThreadPoolExecutor(max_workers=8))
        export = grpc.unary_unary_rpc_method_handler(
            _GrpcService(self).Export,
            request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self._grpc.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_TRACE_SERVICE, {"Export": export}),)
        )
        self._grpc_port = int(self._grpc.add_insecure_port("127.0.0.1:0"))
        self._grpc.start()
        return self

    def stop(self) -> None:
        """Stop both servers, releasing requests still waiting out their delay."""
        self._stopping.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace=None)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Successful export requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, flattened, in arrival order."""
        return [span for request in self.requests for span in _flatten(request)]

    def wait_for_spans(self, count: int, timeout: float = 5.0) -> list[ReceivedSpan]:
        """Block until at least `count` spans arrived; AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while (have := _span_count(self._requests)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} spans within {timeout}s, got {have}")
                self._arrived.wait(remaining)
        return self.spans()

    def clear(self) -> None:
        """Forget everything received."""
        with self._lock:
            self._requests.clear()
            self.attempts = 0

    def _pause(self) -> None:
        with self._lock:
            self.attempts += 1
        if self.delay:
            self._stopping.wait(self.delay)

    def _retry_info(self) -> bytes | None:
        if self.retry_after is None:
            return None
        info = RetryInfo()
        info.retry_delay.FromNanoseconds(int(self.retry_after * 1e9))
        return bytes(info.SerializeToString())

    def _record(self, request: ReceivedRequest) -> None:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()


@contextmanager
def otlp_receiver(
    *,
    delay: float = 0.0,
    http_status: int = 200,
    grpc_code: grpc.StatusCode | None = None,
    retry_after: float | None = None,
) -> Iterator[OtlpReceiver]:
    """A started receiver, stopped at the end of the block."""
    receiver = OtlpReceiver(
        delay=delay, http_status=http_status, grpc_code=grpc_code, retry_after=retry_after
    ).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def _handler_for(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver._pause()
            if self.path != "/v1/traces":
                self._reply(404, b"")
                return
            if not 200 <= (status := receiver.http_status) < 300:
                retry_after = receiver.retry_after
                hint = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
                self._reply(status, b"", hint)
                return
            encoding = self.headers.get("Content-Encoding", "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            message = ExportTraceServiceRequest.FromString(body)
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver._record(ReceivedRequest("http", headers, message))
            self._reply(200, ExportTraceServiceResponse().SerializeToString())

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _QuietHTTPServer(ThreadingHTTPServer):
    """Says nothing when an exporter that gave up (timed out) closed its side first."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _GrpcService:
    """The TraceService ``Export`` method (grpc's generated servicer base class is untyped)."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self, request: ExportTraceServiceRequest, context: Any
    ) -> ExportTraceServiceResponse:
        receiver = self._receiver
        receiver._pause()
        if (code := receiver.grpc_code) is not None:
            if (retry_info := receiver._retry_info()) is not None:
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry_info),))
            context.abort(code, "refused by the test receiver")
        metadata = {str(key).lower(): str(value) for key, value in context.invocation_metadata()}
        receiver._record(ReceivedRequest("grpc", metadata, request))
        return ExportTraceServiceResponse()


def _span_count(requests: Sequence[ReceivedRequest]) -> int:
    return sum(
        len(scope_spans.spans)
        for request in requests
        for resource_spans in request.message.resource_spans
        for scope_spans in resource_spans.scope_spans
    )


def _flatten(request: ReceivedRequest) -> Iterator[ReceivedSpan]:
    for resource_spans in request.message.resource_spans:
        resource = decode_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                    parent_span_id=span.parent_span_id,
                    name=span.name,
                    kind=span.kind,
                    start_time_unix_nano=span.start_time_unix_nano,
                    end_time_unix_nano=span.end_time_unix_nano,
                    status_code=span.status.code,
                    status_message=span.status.message,
                    attributes=decode_attributes(span.attributes),
                    events=tuple(
                        ReceivedEvent(e.name, e.time_unix_nano, decode_attributes(e.attributes))
                        for e in span.events
                    ),
                    links=tuple(
                        ReceivedLink(
                            link.trace_id, link.span_id, decode_attributes(link.attributes)
                        )
                        for link in span.links
                    ),
                    resource=resource,
                    scope=scope_spans.scope.name,
                    transport=request.transport,
                )


def decode_attributes(attributes: Sequence[KeyValue]) -> dict[str, Any]:
    """OTLP key/values as a dict of plain Python values (arrays as lists)."""
    return {item.key: _decode_value(item.value) for item in attributes}


def _decode_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_decode_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    if kind is None:
        return None
    return getattr(value, kind)
