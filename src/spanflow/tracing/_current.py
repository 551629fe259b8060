"""Making a span current together with its call's `TracingContext`, and undoing it.

Workflow scopes (`otel`) and agent scopes (`_genai_scopes`) both do this: the OpenTelemetry
context gets the span, so user code and libraries nest under it, and the tracing context gets
the call's facts, so a run or agent started inside is nested in the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace

from spanflow.tracing._guard import internal_errors
from spanflow.tracing.context import TracingContext, reset_tracing_context, set_tracing_context

__all__ = ["as_current", "make_current", "restore"]


def make_current(span: trace.Span | None, context: TracingContext) -> object:
    """Make `span` (``None``: leave the current span as it is) and `context` current; the token
    undoes it (`restore`)."""
    with internal_errors("could not make a span current"):
        attached = None if span is None else otel_context.attach(trace.set_span_in_context(span))
        try:
            return set_tracing_context(context), attached
        except BaseException:
            if attached is not None:
                otel_context.detach(attached)
            raise
    return None


def restore(token: object) -> None:
    """Undo `make_current` (a ``None`` token, from a failed `make_current`, does nothing)."""
    if not isinstance(token, tuple):
        return
    facts, attached = token
    with internal_errors("could not restore the context after a span"):
        reset_tracing_context(facts)
        if attached is not None:
            otel_context.detach(attached)


@contextmanager
def as_current(span: trace.Span | None, context: TracingContext) -> Iterator[None]:
    """``with as_current(span, context):`` both are current inside the block."""
    token = make_current(span, context)
    try:
        yield
    finally:
        restore(token)
