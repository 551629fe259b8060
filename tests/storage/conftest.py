"""Fixtures for the storage tests: a fake clock, a throwaway PostgreSQL, and fresh stores.

`storage` runs a test once per store (memory, SQLite, PostgreSQL), each time against a new,
empty store; `shared_store` does the same for the stores several processes can open.
A `StoreSpec` says where a store's data lives, so a test can open a second store object, in
this process or another, on the same data.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from spanflow.storage import MemoryStorage, PostgresStorage, SqliteStorage, Storage

if TYPE_CHECKING:
    from tests.support.postgres import PostgresBinariesMissing, ThrowawayPostgres
else:
    # pytest puts tests/ (not the repository root) on sys.path, since tests/ has no
    # __init__.py; mypy names the module from the repository root.
    try:
        from tests.support.postgres import PostgresBinariesMissing, ThrowawayPostgres
    except ModuleNotFoundError:
        from support.postgres import PostgresBinariesMissing, ThrowawayPostgres

__all__ = ["FakeClock", "StoreSpec"]

StoreKind = Literal["memory", "sqlite", "postgres"]

ALL_STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
SHARED_STORES = ALL_STORES[1:]


@dataclass
class FakeClock:
    """A clock that stands still until a test moves it."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock on and return the new time."""
        self.now += seconds
        return self.now


@dataclass(frozen=True)
class StoreSpec:
    """Where one test's store keeps its data; `open` makes another store object on it."""

    kind: StoreKind
    path: str | None = None
    """The SQLite file."""
    dsn: str | None = None
    schema: str | None = None
    """The PostgreSQL schema, one per test."""

    def open(self, **options: Any) -> MemoryStorage | SqliteStorage | PostgresStorage:
        """A new store object on this data (not yet connected)."""
        if self.kind == "memory":
            return MemoryStorage(**options)
        if self.kind == "sqlite":
            assert self.path is not None
            return SqliteStorage(self.path, **options)
        assert self.dsn is not None
        assert self.schema is not None
        return PostgresStorage(self.dsn, schema=self.schema, **options)

    def to_json(self) -> str:
        """The spec as JSON, for a child process."""
        return json.dumps(asdict(self))


@pytest.fixture
def clock() -> FakeClock:
    """The clock every store in the test reads."""
    return FakeClock()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL cluster for the whole session; skipped (failed on CI) without binaries."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401

        cluster = ThrowawayPostgres()
    except (ImportError, PostgresBinariesMissing) as err:
        reason = f"PostgreSQL tests need the server binaries and psycopg: {err}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_dsn(postgres_cluster: ThrowawayPostgres) -> str:
    """A database in the session's cluster; each test gets its own schema in it."""
    return postgres_cluster.create_database("spanflow_test")


def make_spec(kind: StoreKind, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    """A spec for fresh, empty data of the given kind."""
    if kind == "memory":
        return StoreSpec("memory")
    if kind == "sqlite":
        return StoreSpec("sqlite", path=str(tmp_path / "runs.db"))
    dsn: str = request.getfixturevalue("postgres_dsn")
    return StoreSpec("postgres", dsn=dsn, schema=f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=ALL_STORES)
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    """Fresh data for every kind of store."""
    return make_spec(request.param, request, tmp_path)


@pytest.fixture(params=SHARED_STORES)
def shared_store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    """Fresh data for every store that several processes can open."""
    return make_spec(request.param, request, tmp_path)


@pytest.fixture
def sqlite_spec(tmp_path: Path) -> StoreSpec:
    """A fresh SQLite file."""
    return StoreSpec("sqlite", path=str(tmp_path / "runs.db"))


@pytest.fixture
def postgres_spec(postgres_dsn: str) -> StoreSpec:
    """A fresh PostgreSQL schema."""
    return StoreSpec("postgres", dsn=postgres_dsn, schema=f"test_{uuid.uuid4().hex[:12]}")


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
