"""Choosing a store from a URL or path, and from ``SPANFLOW_STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanflow.storage import (
    STORAGE_URL_ENV,
    MemoryStorage,
    PostgresStorage,
    SqliteStorage,
    default_storage_from_env,
    storage_from_url,
)

__all__: list[str] = []


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("runs.db", "runs.db"),
        ("/var/lib/spanflow/runs.db", "/var/lib/spanflow/runs.db"),
        ("sqlite:///runs.db", "runs.db"),
        ("sqlite:////var/lib/spanflow/runs.db", "/var/lib/spanflow/runs.db"),
        ("sqlite://", ":memory:"),
    ],
)
def test_a_path_or_sqlite_url_gives_sqlite(url: str, path: str) -> None:
    store = storage_from_url(url)

    assert isinstance(store, SqliteStorage)
    assert store.path == path


@pytest.mark.parametrize(
    "url", ["postgresql://spanflow@db:5432/runs", "postgres://spanflow@db/runs"]
)
def test_a_postgres_url_gives_postgres_without_connecting(url: str) -> None:
    assert isinstance(storage_from_url(url), PostgresStorage)


def test_memory_url_gives_memory() -> None:
    assert isinstance(storage_from_url("memory://"), MemoryStorage)


@pytest.mark.parametrize("url", ["mysql://db/runs", "memory://somewhere", "sqlite:/x", ""])
def test_an_unknown_url_is_refused_with_the_choices(url: str) -> None:
    with pytest.raises(ValueError, match="memory://"):
        storage_from_url(url)


def test_the_environment_variable_names_the_store() -> None:
    store = default_storage_from_env({STORAGE_URL_ENV: "memory://"})

    assert isinstance(store, MemoryStorage)


def test_without_the_variable_the_store_is_spanflow_db_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(STORAGE_URL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)

    store = default_storage_from_env()

    assert isinstance(store, SqliteStorage)
    assert store.path == "spanflow.db"


async def test_the_default_sqlite_file_is_created_on_first_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    store = default_storage_from_env({STORAGE_URL_ENV: ""})
    await store.list_runs()
    await store.close()

    assert (tmp_path / "spanflow.db").exists()
