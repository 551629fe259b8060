"""Fixtures for the CLI and example tests.

``examples/`` is not part of the installed package; `load_order_example` makes it importable
exactly as ``spanflow demo`` does, before the test modules here import it.
"""

from __future__ import annotations

import pytest

from spanflow.cli.demo import load_order_example

load_order_example()


@pytest.fixture(autouse=True)
def _no_forced_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs under test are not terminals; keep a developer's environment from forcing one."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
