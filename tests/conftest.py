"""Session-wide fixtures: the throwaway PostgreSQL cluster and fresh stores of every kind.

`store_spec` runs a test once per store (memory, SQLite, PostgreSQL) against new, empty data;
`shared_store_spec` does the same for the stores several processes can open. In CI a missing
PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanflow.tracing._guard import RAISE_INTERNAL_ERRORS
from tests.support.postgres import PostgresBinariesMissing, ThrowawayPostgres
from tests.support.stores import ALL_STORES, SHARED_STORES, FakeClock, StoreSpec, make_spec

# A tracing bug fails the test that meets it instead of vanishing into a log (`_guard`); also
# in the worker subprocesses the tests start, which inherit the environment.
os.environ[RAISE_INTERNAL_ERRORS] = "1"


@pytest.fixture
def tracing_errors_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a test that breaks tracing on purpose: the guard logs and swallows, as in production."""
    monkeypatch.delenv(RAISE_INTERNAL_ERRORS)


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
