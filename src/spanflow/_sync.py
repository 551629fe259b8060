"""Sync conveniences for scripts: run a coroutine to completion, refusing inside a live loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from spanflow.errors import SyncInLoopError

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T], name: str) -> T:
    """``asyncio.run(coro)``, or `SyncInLoopError` if an event loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise SyncInLoopError(
        f"{name}() cannot run inside a running event loop; use the async method with await"
    )
