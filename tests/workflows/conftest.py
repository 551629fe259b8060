"""Fixtures shared by the engine tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from spanflow.storage import Storage
from tests.support.stores import StoreSpec


@pytest.fixture
async def stores(store_spec: StoreSpec) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two store objects on the same fresh data (every kind of store): the run's, and the one
    that continues it, as another process would (a memory store lives in one object, so it is
    the same one)."""
    first = store_spec.open()
    second = first if store_spec.kind == "memory" else store_spec.open()
    yield first, second
    await first.close()
    if second is not first:
        await second.close()
