"""`SpanCapture`: an in-memory tracer provider with deterministic ids and an optional fake clock.

Spans end up in an `InMemorySpanExporter` through a `SimpleSpanProcessor`, synchronously, so a
test can assert right after the code under test returns. Trace and span ids count 1, 2, 3...
(a trace id the engine requested is still honoured). With ``fake_clock=True`` every timestamp
(span start, event, span end) comes from a `FakeClock` stepping 1 ms per reading, in the order
the SDK asks for them, so whole span dicts can be compared. `install()` makes the capture the
target of the session's global swappable provider (see `spanflow_otel.testing._global`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    EventBase,
    ReadableSpan,
    Span,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
from opentelemetry.trace import SpanContext, Tracer

from spanflow_otel.ids import SequentialIdGenerator
from spanflow_otel.testing._global import global_swappable_provider
from spanflow_otel.testing.dump import AttributeFilter, dump_spans, without_stacktraces

__all__ = ["FakeClock", "SpanCapture", "span_to_dict"]

_TEST_RESOURCE = Resource({"service.name": "spanflow-test"})


class FakeClock:
    """Nanosecond timestamps that advance by `step` at every reading: 1 ms, 2 ms, 3 ms..."""

    def __init__(self, start: int = 0, step: int = 1_000_000) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._step = step

    def __call__(self) -> int:
        with self._lock:
            self._now += self._step
            return self._now


class _FakeClockProcessor(SpanProcessor):
    """Restamps span start, event and end times from a `FakeClock` (must run first)."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        # SDK internals (1.2x-1.45): the start time is read right before on_start, the end time
        # right before _on_ending, and every event (record_exception too) goes through
        # Span._add_event. Explicit timestamps are replaced as well: the clock owns time.
        span._start_time = self._clock()
        add_event = span._add_event

        def add_event_now(event: EventBase) -> None:
            add_event(Event(event.name, event.attributes, self._clock()))

        setattr(span, "_add_event", add_event_now)  # noqa: B010 - shadows a method on purpose

    def _on_ending(self, span: Span) -> None:
        span._end_time = self._clock()


class SpanCapture:
    """A tracer provider recording finished spans in memory, with deterministic ids."""

    def __init__(
        self,
        *,
        fake_clock: bool = False,
        resource: Resource | None = None,
        sampler: Sampler | None = None,
    ) -> None:
        self.id_generator = SequentialIdGenerator()
        """Trace and span ids 1, 2, 3...; `reset()` starts them again."""
        self.clock = FakeClock() if fake_clock else None
        """The fake clock, when enabled."""
        self.exporter = InMemorySpanExporter()
        """Where finished spans land."""
        self.provider = TracerProvider(
            sampler=sampler or ALWAYS_ON,
            resource=resource or _TEST_RESOURCE,
            id_generator=self.id_generator,
            shutdown_on_exit=False,
        )
        """The SDK provider; give it to code that takes a provider explicitly."""
        if self.clock is not None:
            self.provider.add_span_processor(_FakeClockProcessor(self.clock))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        """Finished spans, in the order they ended."""
        return self.exporter.get_finished_spans()

    def tracer(self, name: str = "spanflow.tests") -> Tracer:
        """A tracer of this capture's provider."""
        return self.provider.get_tracer(name)

    def dump(
        self,
        *,
        attributes: AttributeFilter = without_stacktraces,
        include_events: bool = True,
        include_links: bool = True,
    ) -> str:
        """`dump_spans` of the captured spans."""
        return dump_spans(
            self.spans,
            attributes=attributes,
            include_events=include_events,
            include_links=include_links,
        )

    def as_dicts(self) -> list[dict[str, Any]]:
        """The captured spans as plain dicts (see `span_to_dict`), in the order they ended."""
        return [span_to_dict(span) for span in self.spans]

    def clear(self) -> None:
        """Forget the captured spans (ids and clock carry on)."""
        self.exporter.clear()

    @contextmanager
    def install(self) -> Iterator[SpanCapture]:
        """Route spans started through OpenTelemetry's global provider here, for the block."""
        swappable = global_swappable_provider()
        previous = swappable.swap(self.provider)
        try:
            yield self
        finally:
            swappable.swap(previous)

    def shutdown(self) -> None:
        """Shut the provider down; later spans are not recorded."""
        self.provider.shutdown()


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """A span as a dict of plain values, for whole-span comparisons in tests."""
    return {
        "name": span.name,
        "kind": span.kind.name,
        "context": _context(span.get_span_context()),
        "parent": _context(span.parent),
        "start_time": span.start_time,
        "end_time": span.end_time,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "attributes": _plain(span.attributes),
        "events": [
            {"name": e.name, "timestamp": e.timestamp, "attributes": _plain(e.attributes)}
            for e in span.events
        ],
        "links": [
            {"context": _context(link.context), "attributes": _plain(link.attributes)}
            for link in span.links
        ],
    }


def _context(context: SpanContext | None) -> dict[str, Any] | None:
    if context is None:
        return None
    return {
        "trace_id": context.trace_id,
        "span_id": context.span_id,
        "is_remote": context.is_remote,
    }


def _plain(attributes: Any) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in (attributes or {}).items()
    }
