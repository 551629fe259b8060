"""Test helpers for spanflow users: span capture with deterministic ids, span-tree dumps.

`SpanCapture` records finished spans in memory with trace and span ids 1, 2, 3... and an
optional fake clock; the `span_capture` pytest fixture (registered automatically through the
``pytest11`` entry point) routes the global tracer provider to a fresh capture for each test.
`dump_spans` renders spans as an indented tree to assert against.
"""

from spanflow_otel.ids import SequentialIdGenerator
from spanflow_otel.testing._global import GlobalTracerProviderTakenError, SwappableTracerProvider
from spanflow_otel.testing.capture import FakeClock, SpanCapture, span_to_dict
from spanflow_otel.testing.dump import AttributeFilter, dump_spans, without_stacktraces

__all__ = [  # noqa: RUF022 - grouped by purpose, not sorted
    # Capturing
    "FakeClock",
    "SequentialIdGenerator",
    "SpanCapture",
    # Rendering and comparing
    "AttributeFilter",
    "dump_spans",
    "span_to_dict",
    "without_stacktraces",
    # The global provider
    "GlobalTracerProviderTakenError",
    "SwappableTracerProvider",
]
