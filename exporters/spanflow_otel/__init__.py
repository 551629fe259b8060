"""spanflow_otel: the OpenTelemetry SDK plugin for spanflow.

The engine speaks only the OpenTelemetry API; this package builds the SDK side. `configure()`
takes small option groups (service resource, OTLP destinations from `presets`, batching,
sampling, console tree, shutdown) and returns a `Telemetry` handle with the tracer provider,
bounded `force_flush`/`shutdown`, `dropped_spans` and `failed_spans` (lost on a full export
queue, lost to collector errors), and `export_counts`: how many spans were exported, failed,
dropped or not sent. The OTLP exporters run in a child process (`ChildProcessSpanProcessor`),
so protobuf encoding stays off the program's GIL. The id generators honour the trace id a run
asks for; `spanflow_otel.testing` has the span capture fixture and `dump_spans`.
"""

from spanflow_otel import presets
from spanflow_otel.child_export import ChildProcessSpanProcessor
from spanflow_otel.config import (
    BatchOptions,
    ConsoleOptions,
    ExportIn,
    ExportOptions,
    OtlpProtocol,
    SamplingOptions,
    ServiceOptions,
    ShutdownOptions,
)
from spanflow_otel.console import SpanTreeConsoleExporter, format_run_tree
from spanflow_otel.ids import RequestedTraceIdGenerator, SequentialIdGenerator
from spanflow_otel.otlp import ResolvedExport, build_exporter, resolve_export
from spanflow_otel.processors import DropCountingBatchSpanProcessor, ExportCounts
from spanflow_otel.telemetry import (
    CountingProcessor,
    Telemetry,
    build_resource,
    build_sampler,
    configure,
)

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # Configuring
    "configure",
    "Telemetry",
    "presets",
    # Options
    "BatchOptions",
    "ConsoleOptions",
    "ExportIn",
    "ExportOptions",
    "OtlpProtocol",
    "SamplingOptions",
    "ServiceOptions",
    "ShutdownOptions",
    # Building blocks
    "ChildProcessSpanProcessor",
    "CountingProcessor",
    "DropCountingBatchSpanProcessor",
    "ExportCounts",
    "RequestedTraceIdGenerator",
    "SequentialIdGenerator",
    "SpanTreeConsoleExporter",
    "ResolvedExport",
    "build_exporter",
    "build_resource",
    "build_sampler",
    "format_run_tree",
    "resolve_export",
]
