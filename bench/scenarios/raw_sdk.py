"""Scenario 8, the limit: the spans of one scenario-1 run, made directly with the OTel SDK.

`capture` records what one spanflow run produced (names, attributes, events, the tree: a run
span with one child per step). `replay` then creates the same number of spans with the same
attributes and events in a plain loop: every attribute given at start, events added, ended.
That is the least any code can spend to produce those spans, so spanflow's *added* tracing
cost is compared with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

__all__ = ["SpanTemplate", "TraceTemplate", "capture", "replay"]


@dataclass(frozen=True, slots=True)
class SpanTemplate:
    name: str
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True, slots=True)
class TraceTemplate:
    root: SpanTemplate
    children: tuple[SpanTemplate, ...]
    """In start order."""

    @property
    def span_count(self) -> int:
        return 1 + len(self.children)


def _template(span: ReadableSpan) -> SpanTemplate:
    return SpanTemplate(
        span.name,
        dict(span.attributes or {}),
        tuple((event.name, dict(event.attributes or {})) for event in span.events),
    )


def capture(spans: tuple[ReadableSpan, ...]) -> TraceTemplate:
    """The template of one run's spans: a root and its direct children (no deeper nesting)."""
    roots = [s for s in spans if s.parent is None]
    if len(roots) != 1:
        raise ValueError(f"expected one run span, got {len(roots)}")
    root_id = roots[0].context.span_id
    children = sorted((s for s in spans if s.parent is not None), key=lambda s: s.start_time or 0)
    if any(s.parent is None or s.parent.span_id != root_id for s in children):
        raise ValueError("expected every other span to be a child of the run span")
    return TraceTemplate(_template(roots[0]), tuple(_template(s) for s in children))


def replay(provider: TracerProvider, template: TraceTemplate) -> None:
    """Create the template's spans with `provider`'s tracer, as cheaply as the SDK allows."""
    tracer = provider.get_tracer("raw-sdk")
    root_template = template.root
    root = tracer.start_span(root_template.name, attributes=root_template.attributes)
    context = trace.set_span_in_context(root)
    for child in template.children:
        span = tracer.start_span(child.name, context, attributes=child.attributes)
        for name, attributes in child.events:
            span.add_event(name, attributes)
        span.end()
    for name, attributes in root_template.events:
        root.add_event(name, attributes)
    root.end()
