"""Types and small helpers shared by the spanflow_otel tests."""

from __future__ import annotations

from collections.abc import Callable

import spanflow_otel as so

__all__ = ["MakeTelemetry"]

MakeTelemetry = Callable[..., so.Telemetry]
"""`configure()` as the `make_telemetry` fixture offers it."""
