"""Fixtures for the storage tests: a fake clock, a throwaway PostgreSQL, and fresh stores.

`storage` runs a test once per store (memory, SQLite, PostgreSQL), each time against a new,
empty store; `shared_store` does the same for the stores several processes can open.
A `StoreSpec` says where a store's data lives, so a test can open a second store object, in
this process or another, on the same data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from spanflow.storage import Storage
from tests.support.stores import FakeClock, StoreSpec

__all__ = ["FakeClock", "StoreSpec"]


@pytest.fixture
async def storage(store_spec: StoreSpec, clock: FakeClock) -> AsyncIterator[Storage]:
    """A new, empty store of each kind, on the fake clock."""
    store = store_spec.open(clock=clock)
    yield store
    await store.close()


@pytest.fixture
async def shared_store(shared_store_spec: StoreSpec, clock: FakeClock) -> AsyncIterator[Storage]:
    """A new, empty store of each kind that several processes can open."""
    store = shared_store_spec.open(clock=clock)
    yield store
    await store.close()
