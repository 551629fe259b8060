"""Fixtures for the spanflow_otel tests: a live OTLP receiver, a clean OTEL_* environment and
telemetry handles that are always shut down (and never touch the global provider or SIGTERM).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spanflow_otel as so

if importlib.util.find_spec("tests") is None:  # pragma: no cover - tests/ is not a package
    # pytest's default import mode puts the first directory without an __init__.py on sys.path,
    # which is tests/ itself while tests/ has no __init__.py; the receiver is in tests.support.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

from .helpers import MakeTelemetry

__all__ = ["clean_otel_environment", "make_telemetry", "receiver"]


@pytest.fixture(autouse=True)
def clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A started in-process OTLP receiver (HTTP and gRPC)."""
    with otlp_receiver() as started:
        yield started


@pytest.fixture
def make_telemetry() -> Iterator[MakeTelemetry]:
    """`configure()` with test-friendly defaults: not global, no exit hooks; shut down after."""
    made: list[so.Telemetry] = []

    def make(*args: Any, **kwargs: Any) -> so.Telemetry:
        kwargs.setdefault("set_global", False)
        kwargs.setdefault("shutdown", so.ShutdownOptions(atexit=False, sigterm=False))
        telemetry = so.configure(*args, **kwargs)
        made.append(telemetry)
        return telemetry

    yield make
    for telemetry in made:
        telemetry.shutdown(timeout=1.0)
