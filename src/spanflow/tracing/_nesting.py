"""Where a run or agent span hangs: the nesting rule and explicit remote parents, in one place.

A run or agent call started while a span of another spanflow run or agent is current is
*nested* (``tracing.md`` §3): it stays a child of that span whatever trace ids it was given, and
merges its tags and metadata into the enclosing run's, which are read back from that span's
attributes. Otherwise explicit ids win (a remote parent, or a root span in a requested trace),
then the ambient span, then a new trace. Workflow runs (`otel`) and agents (`genai`) share this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from spanflow.tracing._requested import REQUESTED_TRACE_ID
from spanflow.tracing.attributes import METADATA_PREFIX, TAG_PREFIX, TAGS_ATTRIBUTE
from spanflow.tracing.options import ResolvedTracing

__all__ = [
    "NESTING_MARKERS",
    "enclosing_attributes",
    "explicit_parent",
    "inherited_tracing",
    "start_top_span",
]

NESTING_MARKERS = ("spanflow.run.id", "spanflow.agent.id")
"""Attributes that mark a span as part of a spanflow run or agent call."""


def enclosing_attributes() -> dict[str, Any] | None:
    """The current span's attributes if it belongs to a spanflow run or agent, else None.

    Only SDK spans expose their attributes; under a provider whose spans do not, nothing counts
    as nested and the ambient span simply becomes the parent.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    attributes = getattr(span, "attributes", None)
    if not isinstance(attributes, Mapping):
        return None
    if not any(marker in attributes for marker in NESTING_MARKERS):
        return None
    return dict(attributes)


def inherited_tracing(attributes: Mapping[str, Any]) -> ResolvedTracing:
    """The enclosing run's tags and metadata, read back from its span's attributes."""
    raw_tags = attributes.get(TAGS_ATTRIBUTE)
    tags = (
        tuple(str(tag) for tag in raw_tags)
        if isinstance(raw_tags, Sequence) and not isinstance(raw_tags, str)
        else ()
    )
    carried = {
        key: value
        for key, value in attributes.items()
        if key == TAGS_ATTRIBUTE or key.startswith((METADATA_PREFIX + ".", TAG_PREFIX + "."))
    }
    return ResolvedTracing(tags=tags, attributes=carried)


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


def start_top_span(
    tracer: trace.Tracer,
    name: str,
    parent: otel_context.Context | None,
    requested: int | None,
    attributes: dict[str, Any],
    links: Sequence[trace.Link] = (),
) -> tuple[trace.Span, bool]:
    """Start a run or agent span; with `requested`, as a root span in that trace.

    Returns the span and whether the provider ignored the requested trace id (only the
    plugin's id generator honours it): the caller logs that once.
    """
    if requested is None:
        return tracer.start_span(name, parent, trace.SpanKind.INTERNAL, attributes, links), False
    token = REQUESTED_TRACE_ID.set(requested)
    try:
        span = tracer.start_span(name, parent, trace.SpanKind.INTERNAL, attributes, links)
    finally:
        REQUESTED_TRACE_ID.reset(token)
    ignored = span.is_recording() and span.get_span_context().trace_id != requested
    return span, ignored
