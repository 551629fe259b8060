"""Where a run or agent span hangs: the nesting rule and explicit remote parents, in one place.

A run or agent call started inside another spanflow run or agent call (its tracing context is
current: `spanflow.tracing.context`) is *nested* (``tracing.md`` §3): it stays a child of the
current span whatever trace ids it was given, inherits the enclosing call's tags, metadata and
hide flags, and merges its own over them. Otherwise explicit ids win (a remote parent, or a root
span in a requested trace), then the ambient span, then a new trace. Workflow runs (`otel`) and
agents (`genai`) share this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from spanflow.tracing._requested import REQUESTED_TRACE_ID
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.context import TracingContext, current_tracing_context
from spanflow.tracing.options import (
    ResolvedTracing,
    TracingOptions,
    merge_nested,
    resolve_tracing_options,
)

__all__ = ["IgnoredRootWarning", "explicit_parent", "resolve_nested", "start_top_span"]

logger = logging.getLogger("spanflow.tracing")


def resolve_nested(
    options: TracingOptions | None,
    *,
    request_context: object,
    config: TracingConfig,
    may_nest: bool = True,
) -> tuple[ResolvedTracing, TracingContext | None]:
    """A call's tracing options, merged into the enclosing call's when nested.

    Returns the resolved options and the enclosing call's context (``None`` when not nested).
    `may_nest` is false for a resume, which continues its own trace.
    """
    enclosing = current_tracing_context() if may_nest else None
    if enclosing is not None:
        resolved = merge_nested(
            enclosing.inherited(),
            options,
            request_context=request_context,
            redactor=config.redactor,
            max_attribute_length=config.max_attribute_length,
        )
        return resolved, enclosing
    resolved = resolve_tracing_options(
        options,
        request_context=request_context,
        global_request_context_keys=config.request_context_keys,
        redactor=config.redactor,
        max_attribute_length=config.max_attribute_length,
    )
    return resolved, None


def explicit_parent(
    resolved: ResolvedTracing,
) -> tuple[otel_context.Context | None, int | None]:
    """The parent context and requested root trace id that explicit trace ids ask for.

    ``(None, None)`` without explicit ids (use the ambient span, if any). With a trace id and a
    parent span id: a context holding that remote, sampled-as-told parent. With a trace id
    only: an empty context (no parent) and the trace id the plugin's id generator must use.
    """
    if resolved.trace_id is None:
        return None, None
    trace_id = int(resolved.trace_id, 16)
    if resolved.parent_span_id is None:
        return otel_context.Context(), trace_id
    flags = TraceFlags(TraceFlags.SAMPLED if resolved.sampled else 0)
    remote = SpanContext(
        trace_id, int(resolved.parent_span_id, 16), is_remote=True, trace_flags=flags
    )
    return trace.set_span_in_context(NonRecordingSpan(remote), otel_context.Context()), None


class IgnoredRootWarning:
    """Says once, per instrumentation, that its provider ignored a requested root trace id."""

    __slots__ = ("_warned", "_what")

    def __init__(self, what: str) -> None:
        self._what = what
        """What then starts new traces: ``runs``, ``agent calls``."""
        self._warned = False

    def __call__(self) -> None:
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "spanflow: the tracer provider cannot start a root span in a requested trace id "
            "(configure tracing with spanflow_otel.configure()); %s given only a trace_id "
            "start new traces",
            self._what,
        )


def start_top_span(
    tracer: trace.Tracer,
    name: str,
    parent: otel_context.Context | None,
    requested: int | None,
    attributes: dict[str, Any],
    links: Sequence[trace.Link] = (),
    *,
    on_ignored: Callable[[], None],
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
) -> trace.Span:
    """Start a run, agent or job-publishing span; with `requested`, as a root span in that
    trace.

    Only the plugin's id generator honours a requested trace id; when the provider ignored
    it, `on_ignored` is called (an `IgnoredRootWarning`).
    """
    if requested is None:
        return tracer.start_span(name, parent, kind, attributes, links)
    token = REQUESTED_TRACE_ID.set(requested)
    try:
        span = tracer.start_span(name, parent, kind, attributes, links)
    finally:
        REQUESTED_TRACE_ID.reset(token)
    if span.is_recording() and span.get_span_context().trace_id != requested:
        on_ignored()
    return span
