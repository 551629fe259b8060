"""Where a test's run store keeps its data: `StoreSpec`, shared by every suite that needs stores.

A `StoreSpec` says where one test's store lives (a SQLite file, a PostgreSQL schema), so a test
can open a second store object on the same data, in this process or in a worker process.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from spanflow.storage import MemoryStorage, PostgresStorage, SqliteStorage

__all__ = ["ALL_STORES", "SHARED_STORES", "FakeClock", "StoreKind", "StoreSpec", "make_spec"]

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


def make_spec(kind: StoreKind, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    """A spec for fresh, empty data of the given kind."""
    if kind == "memory":
        return StoreSpec("memory")
    if kind == "sqlite":
        return StoreSpec("sqlite", path=str(tmp_path / "runs.db"))
    dsn: str = request.getfixturevalue("postgres_dsn")
    return StoreSpec("postgres", dsn=dsn, schema=f"test_{uuid.uuid4().hex[:12]}")
