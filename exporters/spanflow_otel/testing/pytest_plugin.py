"""pytest plugin registered by the spanflow package: the `span_capture` fixture.

Each test that asks for `span_capture` gets a fresh `SpanCapture` (ids from 1, fake clock on)
that receives every span started through OpenTelemetry's global tracer provider during the
test. The global provider can be set only once per process, so the first use installs a
`SwappableTracerProvider` for the rest of the session and each test swaps its target (see
`spanflow_otel.testing._global`). ``@pytest.mark.span_capture(fake_clock=False)`` passes
options to `SpanCapture`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from spanflow_otel.testing.capture import SpanCapture

__all__ = ["pytest_configure", "span_capture"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``span_capture`` marker (its keyword arguments go to `SpanCapture`)."""
    config.addinivalue_line(
        "markers", "span_capture(**options): options for the span_capture fixture's SpanCapture"
    )


@pytest.fixture
def span_capture(request: pytest.FixtureRequest) -> Iterator[SpanCapture]:
    """A `SpanCapture` that sees every span started through the global provider in this test."""
    # Imported here, not at the top: pytest loads this plugin for every spanflow install, and
    # one without the `otel` extra has no SDK to import.
    from spanflow_otel.testing.capture import SpanCapture

    marker = request.node.get_closest_marker("span_capture")
    options = {"fake_clock": True, **(marker.kwargs if marker else {})}
    capture = SpanCapture(**options)
    with capture.install():
        yield capture
    capture.shutdown()
