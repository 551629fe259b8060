"""`SqliteStorage(read_only=True)`: reads a spanflow database and never creates or changes one."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from spanflow.errors import StorageError
from spanflow.storage import SqliteStorage, StoredRun

from .schema_v1 import sqlite_v1
from .schema_v3 import sqlite_v3


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_read_only_store_reads_the_runs_another_store_wrote(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SqliteStorage(path) as writer:
        await writer.save_run(
            StoredRun(run_id="r1", workflow_id="w", status="success", snapshot={})
        )

    async with SqliteStorage(path, read_only=True) as reader:
        page = await reader.list_runs()
        run = await reader.get_run("r1")

    assert [stored.run_id for stored in page.runs] == ["r1"]
    assert run is not None
    assert run.status == "success"


async def test_a_read_only_store_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    async with SqliteStorage(path):
        pass
    before = digest(path)

    async with SqliteStorage(path, read_only=True) as reader:
        with pytest.raises(StorageError, match="was opened read-only"):
            await reader.save_run(
                StoredRun(run_id="r1", workflow_id="w", status="success", snapshot={})
            )

    assert digest(path) == before


async def test_a_read_only_store_never_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"

    with pytest.raises(StorageError, match="cannot open SQLite database"):
        async with SqliteStorage(path, read_only=True):
            pass

    assert not path.exists()


async def test_a_file_without_spanflows_tables_is_a_storage_error_left_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    connection.close()
    before = digest(path)

    with pytest.raises(StorageError, match=r"is not a spanflow database \(no spanflow_runs"):
        async with SqliteStorage(path, read_only=True):
            pass

    assert digest(path) == before


async def test_a_read_only_store_reads_a_version_1_file_without_upgrading_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        for statement in sqlite_v1():
            connection.execute(statement)
        connection.execute(
            "INSERT INTO spanflow_runs VALUES ('r1', 'w', NULL, 'success', '{}', 10.0, 11.0)"
        )
    connection.close()
    before = digest(path)

    async with SqliteStorage(path, read_only=True) as reader:
        page = await reader.list_runs(status="success")
        counts = await reader.count_runs()

    assert [run.run_id for run in page.runs] == ["r1"]
    assert counts == {"w": {"success": 1}}
    assert digest(path) == before


async def test_a_read_only_store_reads_a_version_3_file_without_a_cancel_flag(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as connection:
        for statement in sqlite_v3():
            connection.execute(statement)
        connection.execute(
            "INSERT INTO spanflow_runs VALUES ('r1', 'w', NULL, 'running', '{}', 10.0, 11.0, "
            "'host:1:a', 0)"
        )
    connection.close()
    before = digest(path)

    async with SqliteStorage(path, read_only=True) as reader:
        run = await reader.get_run("r1")
        page = await reader.list_runs(status="running")
        stalled = await reader.stalled_runs()
        with pytest.raises(
            StorageError,
            match=r"schema version 3, which has no cancel_requested column.*opened read-only",
        ):
            await reader.request_cancel("r1")

    assert run is not None
    assert (run.owner, run.cancel_requested) == ("host:1:a", False)
    assert [listed.cancel_requested for listed in page.runs] == [False]
    assert [found.run_id for found in stalled] == ["r1"]
    assert digest(path) == before


async def test_a_read_only_store_on_a_version_1_file_finds_every_executing_run_stalled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as connection:
        for statement in sqlite_v1():
            connection.execute(statement)
        connection.execute(
            "INSERT INTO spanflow_runs VALUES ('r1', 'w', NULL, 'waiting', '{}', 10.0, 11.0)"
        )
    connection.close()

    async with SqliteStorage(path, read_only=True) as reader:
        stalled = await reader.stalled_runs()

    assert [(run.run_id, run.lease_until, run.cancel_requested) for run in stalled] == [
        ("r1", 0.0, False)
    ]


def test_read_only_needs_a_file() -> None:
    with pytest.raises(ValueError, match="needs a file"):
        SqliteStorage(":memory:", read_only=True)
