"""Tracing: how runs become OpenTelemetry spans (through ``opentelemetry-api`` only).

`TracingOptions` links a run into an existing trace and makes it findable by tags and
metadata; `TracingConfig` holds the deployment-wide settings. The instrumentation seam
(`spanflow.tracing.instrumentation`) is the only part of the engine that talks to
OpenTelemetry; `spanflow.tracing.otel` implements it.
"""

from spanflow.tracing.config import EventMode, TracingConfig
from spanflow.tracing.ids import (
    InvalidSpanIdError,
    InvalidTraceIdError,
    InvalidTraceparentError,
    TraceParent,
    TracingOptionsError,
    normalize_span_id,
    normalize_trace_id,
    parse_traceparent,
)
from spanflow.tracing.instrumentation import StepTracing
from spanflow.tracing.options import ResolvedTracing, TracingOptions, resolve_tracing_options
from spanflow.tracing.otel import OtelInstrumentation
from spanflow.tracing.redaction import DEFAULT_SENSITIVE_KEYS, Redactor

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # Per run
    "TracingOptions",
    # Per deployment
    "DEFAULT_SENSITIVE_KEYS",
    "EventMode",
    "OtelInstrumentation",
    "Redactor",
    "TracingConfig",
    # Inside a step
    "StepTracing",
    # Ids and errors
    "InvalidSpanIdError",
    "InvalidTraceIdError",
    "InvalidTraceparentError",
    "ResolvedTracing",
    "TraceParent",
    "TracingOptionsError",
    "normalize_span_id",
    "normalize_trace_id",
    "parse_traceparent",
    "resolve_tracing_options",
]
