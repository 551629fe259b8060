"""The one hook between the engine and the tracing plugin's id generator.

OpenTelemetry's API cannot start a *root* span in a given trace. When a run asks for a trace id
without a parent span, the engine sets `REQUESTED_TRACE_ID` around the ``start_span`` call; the
plugin's id generator (``spanflow_otel``) returns it from ``generate_trace_id()``. Under a
provider that ignores it, the engine notices the mismatch and logs one warning.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["REQUESTED_TRACE_ID"]

REQUESTED_TRACE_ID: ContextVar[int | None] = ContextVar("spanflow_requested_trace_id", default=None)
