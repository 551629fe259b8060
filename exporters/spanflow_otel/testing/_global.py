"""The one global tracer provider a test session installs, whose target each test swaps.

OpenTelemetry lets the global tracer provider be set once per process, and code often keeps
the tracers it got from it (``trace.get_tracer(__name__)`` at import, or the API's proxy tracer
that binds itself to the global provider on first use). So the capture fixture cannot install a
fresh provider per test. Instead, the first capture installs a `SwappableTracerProvider`
globally; every tracer it hands out is a `_FollowingTracer` that asks the provider for its
*current* target on each ``start_span``. A capture makes its own SDK provider the target for
the duration of a test and puts the previous one back afterwards; outside captures the target
is a no-op provider (which still propagates parent contexts, like the API's default).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Tracer, TracerProvider
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager

from spanflow.errors import SpanflowError

__all__ = [
    "GlobalTracerProviderTakenError",
    "SwappableTracerProvider",
    "global_swappable_provider",
]


class GlobalTracerProviderTakenError(SpanflowError, RuntimeError):
    """Something set OpenTelemetry's global tracer provider before the span capture could."""


class SwappableTracerProvider(TracerProvider):
    """A provider whose tracers follow whichever provider is its current target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: TracerProvider = trace.NoOpTracerProvider()

    @property
    def target(self) -> TracerProvider:
        """The provider spans are currently started in."""
        return self._target

    def swap(self, target: TracerProvider | None) -> TracerProvider:
        """Make `target` (None: a no-op provider) current; return the previous target."""
        with self._lock:
            previous = self._target
            self._target = target if target is not None else trace.NoOpTracerProvider()
            return previous

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> Tracer:
        return _FollowingTracer(
            self, instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )


class _FollowingTracer(Tracer):
    """Starts each span with the tracer of its provider's current target."""

    def __init__(
        self,
        provider: SwappableTracerProvider,
        name: str,
        version: str | None,
        schema_url: str | None,
        attributes: types.Attributes,
    ) -> None:
        self._provider = provider
        self._scope = (name, version, schema_url, attributes)

    def _target(self) -> Tracer:
        name, version, schema_url, attributes = self._scope
        return self._provider.target.get_tracer(name, version, schema_url, attributes)

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return self._target().start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        with self._target().start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        ) as span:
            yield span


_install_lock = threading.Lock()


def global_swappable_provider() -> SwappableTracerProvider:
    """The process-wide swappable provider, installing it globally on first use."""
    with _install_lock:
        current = trace.get_tracer_provider()
        if isinstance(current, SwappableTracerProvider):
            return current
        if not isinstance(current, trace.ProxyTracerProvider):
            raise GlobalTracerProviderTakenError(
                f"OpenTelemetry's global tracer provider is already set (to a "
                f"{type(current).__name__}) and can be set only once per process, so span "
                f"capture cannot see spans started through it. Do not configure tracing "
                f"globally in tests (use spanflow_otel.configure(set_global=False)), or pass "
                f"SpanCapture.provider to the code under test explicitly."
            )
        provider = SwappableTracerProvider()
        trace.set_tracer_provider(provider)
        return provider
