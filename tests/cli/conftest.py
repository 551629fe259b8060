"""Fixtures for the CLI and example tests: `cli` runs ``spanflow`` in-process.

``examples/`` is not part of the installed package; `load_order_example` makes it importable
exactly as ``spanflow demo`` does, before the test modules here import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from spanflow.cli.demo import load_order_example
from spanflow.cli.main import main

load_order_example()


@pytest.fixture(autouse=True)
def _no_forced_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs under test are not terminals; keep a developer's environment from forcing one."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _scripted_demo_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's writer stays scripted: a developer's real endpoint is never called."""
    for name in ("SPANFLOW_DEMO_BASE_URL", "SPANFLOW_DEMO_MODEL", "SPANFLOW_DEMO_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class Outcome:
    """What one ``spanflow`` command did."""

    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line on stderr (fails if there is not exactly one)."""
        [line] = self.err.splitlines()
        return line


Cli = Callable[..., Outcome]
"""``cli("run", "tests.cli.sample_workflows:hello", ...)``: run ``spanflow`` in-process."""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Runs ``spanflow`` with the given arguments; no OTLP or storage variable leaks in.

    The output is 200 columns wide, so temporary paths in panels stay on one line.
    """
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("SPANFLOW_STORAGE_URL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("OTEL_EXPORTER_OTLP"):
            monkeypatch.delenv(name)

    def run(*argv: str) -> Outcome:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A SQLite file for the test's runs (not created yet)."""
    return tmp_path / "runs.db"
