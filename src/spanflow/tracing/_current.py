"""Making a span current together with its call's `TracingContext`, and undoing it.

Workflow scopes (`otel`) and agent scopes (`_genai_scopes`) both do this: the OpenTelemetry
context gets the span, so user code and libraries nest under it, and the tracing context gets
the call's facts, so a run or agent started inside is nested in the call.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace

from spanflow.tracing._guard import internal_errors
from spanflow.tracing.context import TracingContext, reset_tracing_context, set_tracing_context

__all__ = ["as_current", "make_current", "restore"]

# The guards of the hot paths, one each (see `internal_errors`).
_ENTERING = internal_errors("could not make a span current")
_RESTORING = internal_errors("could not restore the context after a span")


def make_current(span: trace.Span | None, context: TracingContext) -> object:
    """Make `span` (``None``: leave the current span as it is) and `context` current; the token
    undoes it (`restore`)."""
    with _ENTERING:
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
    with _RESTORING:
        reset_tracing_context(facts)
        if attached is not None:
            otel_context.detach(attached)


class as_current:  # named as the function it stands for: ``with as_current(span, context):``
    """``with as_current(span, context):`` both are current inside the block.

    A class rather than a generator-based context manager: it runs around every step.
    """

    __slots__ = ("_context", "_span", "_token")

    def __init__(self, span: trace.Span | None, context: TracingContext) -> None:
        self._span = span
        self._context = context
        self._token: object = None

    def __enter__(self) -> None:
        self._token = make_current(self._span, self._context)

    def __exit__(self, *exc_info: object) -> None:
        restore(self._token)
