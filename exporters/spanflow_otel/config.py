"""The option dataclasses `configure()` takes, one small group per concern.

Every group is a frozen dataclass with defaults that work for local development against the
Jaeger of ``docker-compose.jaeger.yml``; a field left at ``None`` means "take it from the
standard ``OTEL_*`` environment variable, or the OpenTelemetry default". Values given in code
always win over the environment: code is the more specific statement of intent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TextIO

from opentelemetry.util.types import AttributeValue

__all__ = [
    "BatchOptions",
    "ConsoleOptions",
    "ExportIn",
    "ExportOptions",
    "OtlpProtocol",
    "SamplingOptions",
    "ServiceOptions",
    "ShutdownOptions",
]

OtlpProtocol = Literal["http/protobuf", "grpc"]
"""The OTLP transports spanflow_otel can export with."""

ExportIn = Literal["child_process", "thread"]
"""Where the OTLP exporter runs: see `BatchOptions.export_in`."""


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """Who is emitting the spans: the resource every span carries."""

    name: str | None = None
    """`service.name`; wins over `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`."""
    version: str | None = None
    """`service.version`."""
    environment: str | None = None
    """`deployment.environment.name` (e.g. ``"production"``)."""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    """Further resource attributes; they win over `OTEL_RESOURCE_ATTRIBUTES` key by key."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Where and how to send spans over OTLP (see `spanflow_otel.presets` for ready ones)."""

    endpoint: str | None = None
    """Explicit endpoint; wins over every `OTEL_EXPORTER_OTLP_*` variable.

    HTTP: the full traces URL (``http://host:4318/v1/traces``); a URL with no path at all gets
    ``/v1/traces`` appended. gRPC: ``http://host:4317`` (``https://`` for TLS).
    ``None``: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), else
    `OTEL_EXPORTER_OTLP_ENDPOINT` (HTTP: ``/v1/traces`` appended), else localhost.
    """
    protocol: OtlpProtocol | None = None
    """``None``: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL`, else HTTP."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Sent with every export; merged over `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` key by key."""
    timeout: float = 5.0
    """Seconds one export may take, retries included, before its batch is given up."""


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """The export queue between finished spans and the exporter.

    ``None`` fields come from `OTEL_BSP_*` or the SDK defaults (2048, 5 s, 512).
    """

    max_queue_size: int | None = None
    """Spans waiting for export; when full, the oldest is dropped and counted."""
    schedule_delay: float | None = None
    """Seconds between two exports when the queue is not filling up."""
    max_export_batch_size: int | None = None
    """Spans per export request."""
    export_in: ExportIn = "child_process"
    """Where the OTLP exporter encodes and sends the batches.

    ``"child_process"`` (the default): an export child process started by `configure()`; this
    process only converts and pickles each span (6-20 µs) instead of encoding it to
    protobuf (45-80 µs with two events), time that would otherwise be taken from the
    program's threads under the GIL. A child that dies is replaced (its unanswered spans
    counted as failed); if none can be started, export falls back to a thread of this process.
    ``"thread"``: the SDK's batch processor in a thread of this process, as before; no extra
    process, the encoding on the program's GIL.
    """


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    """Which traces are recorded."""

    ratio: float | None = None
    """Fraction of new traces to keep. ``None``: `OTEL_TRACES_SAMPLER` (and its argument) if
    set, else keep everything (parent-based always-on)."""
    parent_based: bool = True
    """With a ratio: follow the decision of a parent span (local or remote) when there is one,
    and apply the ratio to new traces only."""


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    """The console exporter that prints each finished run as a span tree."""

    stream: TextIO | None = None
    """Where to print; ``None`` is `sys.stderr` at the time of printing."""
    attribute_prefixes: tuple[str, ...] = ("spanflow.", "error.type")
    """Attributes shown on each line: those whose key starts with one of these."""
    hidden_attributes: tuple[str, ...] = (
        "spanflow.input",
        "spanflow.output",
        "spanflow.resume_data",
        "spanflow.event.payload",
    )
    """Attributes never shown (too long for one line)."""
    max_value_length: int = 40
    """Longer attribute values are cut and end with ``…``."""
    max_buffered_spans: int = 10_000
    """Spans kept while waiting for their root to end; the oldest trace is dropped beyond it."""


@dataclass(frozen=True, slots=True)
class ShutdownOptions:
    """Flushing and shutting down when the process ends."""

    flush_timeout: float = 5.0
    """Seconds the final flush may take, whatever the state of the collector."""
    atexit: bool = True
    """Shut down at interpreter exit."""
    sigterm: bool = True
    """Flush on SIGTERM, then chain to the previous handler (main thread only)."""
