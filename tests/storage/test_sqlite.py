"""SqliteStorage on files it did not make or that went wrong: it refuses clearly, never guesses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from spanflow.errors import RunClaimError, StorageError
from spanflow.storage import SqliteStorage, StoredRun

from .schema_v1 import sqlite_v1
from .schema_v3 import sqlite_v3

__all__: list[str] = []


def _run() -> StoredRun:
    return StoredRun("run-1", "onboarding", "running", {"steps": {}})


async def _create(path: Path) -> None:
    """Make `path` a spanflow database holding run ``run-1``."""
    async with SqliteStorage(path) as store:
        await store.insert_run(_run())


def _sql(path: Path, *statements: str) -> None:
    """Run statements on `path` behind the store's back."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            for statement in statements:
                connection.execute(statement)
    finally:
        connection.close()


def _tables(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}
    finally:
        connection.close()


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _schema(path: Path) -> list[tuple[object, ...]]:
    """Every table and index spanflow made, with the SQL that made it."""
    return _query(
        path,
        "SELECT type, name, sql FROM sqlite_master "
        "WHERE name LIKE 'spanflow%' AND sql IS NOT NULL ORDER BY name",
    )


def _make_v1(path: Path) -> None:
    """A database as spanflow 0.1 left it, holding run ``old-run``."""
    _sql(
        path,
        *sqlite_v1(),
        "INSERT INTO spanflow_runs VALUES ('old-run', 'onboarding', 'user-7', 'suspended', "
        '\'{"steps": {"ask": {"status": "suspended"}}}\', 10.5, 11.5)',
    )


async def test_a_new_file_gets_the_tables_and_write_ahead_logging(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"

    await _create(path)

    assert _tables(path) == {
        "spanflow_events",
        "spanflow_messages",
        "spanflow_meta",
        "spanflow_runs",
        "spanflow_threads",
    }
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        version = connection.execute("SELECT value FROM spanflow_meta").fetchall()
        assert version == [("5",)]
    finally:
        connection.close()


async def test_a_file_that_is_not_sqlite_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 200)

    store = SqliteStorage(path)
    with pytest.raises(StorageError) as caught:
        await store.get_run("run-1")
    await store.close()

    assert str(caught.value) == f"{path} is not a spanflow database: file is not a database"
    assert path.read_bytes().startswith(b"these are my notes")


async def test_a_foreign_sqlite_database_gets_our_tables_beside_its_own(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _sql(path, "CREATE TABLE notes (body TEXT)", "INSERT INTO notes VALUES ('keep me')")

    await _create(path)

    assert _tables(path) == {
        "notes",
        "spanflow_events",
        "spanflow_messages",
        "spanflow_meta",
        "spanflow_runs",
        "spanflow_threads",
    }
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
    finally:
        connection.close()


async def test_a_database_from_a_newer_spanflow_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    await _create(path)
    _sql(path, "UPDATE spanflow_meta SET value = '7' WHERE key = 'schema_version'")

    with pytest.raises(StorageError, match=r"uses spanflow schema version 7.*upgrade spanflow"):
        async with SqliteStorage(path) as store:
            await store.get_run("run-1")


async def test_a_missing_runs_table_is_reported_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    await _create(path)
    _sql(path, "DROP TABLE spanflow_runs")

    with pytest.raises(StorageError, match=r"missing table spanflow_runs.*damaged"):
        async with SqliteStorage(path):
            pass

    assert "spanflow_runs" not in _tables(path)


async def test_a_runs_table_without_meta_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _sql(path, "CREATE TABLE spanflow_runs (id INTEGER)")

    with pytest.raises(StorageError, match="has a spanflow_runs table but no spanflow_meta"):
        async with SqliteStorage(path):
            pass


async def test_a_snapshot_that_is_not_json_is_reported_naming_the_run(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    await _create(path)
    _sql(path, "UPDATE spanflow_runs SET snapshot = '{\"steps\": {' WHERE run_id = 'run-1'")

    async with SqliteStorage(path) as store:
        with pytest.raises(StorageError, match=r"snapshot of run 'run-1' in .* is not valid JSON"):
            await store.get_run("run-1")
        page = await store.list_runs()  # a listing reports it and goes on

    assert [damaged.run_id for damaged in page.damaged] == ["run-1"]
    assert "snapshot of run 'run-1'" in page.damaged[0].problem


async def test_a_missing_directory_is_reported_and_a_later_call_can_succeed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "not-yet" / "runs.db"
    store = SqliteStorage(path)
    try:
        with pytest.raises(StorageError, match=r"cannot open SQLite database .*not-yet"):
            await store.get_run("run-1")

        path.parent.mkdir()

        assert await store.get_run("run-1") is None
    finally:
        await store.close()


async def test_a_writer_blocked_past_busy_timeout_fails_instead_of_hanging(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    await _create(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        async with SqliteStorage(path, busy_timeout=0.2) as store:
            with pytest.raises(StorageError, match=r"stayed locked by another writer for 0.2 s"):
                await store.save_run(_run())
            assert await store.get_run("run-1") is not None  # readers are not blocked
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_failed_claim_leaves_no_transaction_open(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    await _create(path)

    async with SqliteStorage(path) as store:
        with pytest.raises(RunClaimError, match="its status is 'running'"):
            await store.claim_run("run-1", from_status=["suspended"], to_status="running")
        await store.save_run(StoredRun("run-2", "onboarding", "success", {}))

        assert (await store.list_runs()).total == 2


async def test_a_version_1_file_is_upgraded_in_place_keeping_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    _make_v1(path)

    async with SqliteStorage(path) as store:
        stored = await store.get_run("old-run")
        counts = await store.count_runs()

    assert stored == StoredRun(
        "old-run",
        "onboarding",
        "suspended",
        {"steps": {"ask": {"status": "suspended"}}},
        "user-7",
        created_at=10.5,
        updated_at=11.5,
    )
    assert counts == {"onboarding": {"suspended": 1}}
    assert _query(path, "SELECT value FROM spanflow_meta") == [("5",)]
    assert "spanflow_events" in _tables(path)


async def test_an_upgraded_file_has_exactly_the_tables_and_indexes_of_a_new_one(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    _make_v1(old)

    async with SqliteStorage(old), SqliteStorage(new):
        pass

    assert _schema(old) == _schema(new)
    assert "spanflow_runs_by_workflow_status" in {name for _, name, _ in _schema(new)}


async def test_an_upgrade_that_fails_leaves_the_file_at_version_1_with_its_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    _make_v1(path)
    # Fail the upgrade at its last statement, after the new index was built.
    _sql(
        path,
        "CREATE TRIGGER no_upgrades BEFORE UPDATE ON spanflow_meta "
        "BEGIN SELECT RAISE(ABORT, 'no upgrades today'); END",
    )

    with pytest.raises(StorageError, match="no upgrades today"):
        async with SqliteStorage(path):
            pass

    assert _query(path, "SELECT value FROM spanflow_meta") == [("1",)]
    assert _query(path, "SELECT run_id, status FROM spanflow_runs") == [("old-run", "suspended")]
    assert "spanflow_runs_by_workflow_status" not in {name for _, name, _ in _schema(path)}


@pytest.mark.parametrize(
    ("where", "plan"),
    [
        ("", "SCAN spanflow_runs USING COVERING INDEX spanflow_runs_by_workflow_status"),
        (
            "WHERE workflow_id = 'onboarding'",
            "SEARCH spanflow_runs USING COVERING INDEX spanflow_runs_by_workflow_status "
            "(workflow_id=?)",
        ),
    ],
)
async def test_counting_runs_reads_only_the_workflow_status_index(
    tmp_path: Path, where: str, plan: str
) -> None:
    path = tmp_path / "runs.db"
    await _create(path)

    steps = _query(
        path,
        "EXPLAIN QUERY PLAN SELECT workflow_id, status, count(*) FROM spanflow_runs "
        f"{where} GROUP BY workflow_id, status",
    )

    assert [step[-1] for step in steps] == [plan]


async def test_listing_by_workflow_status_and_dates_walks_only_the_matching_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    await _create(path)

    steps = _query(
        path,
        "EXPLAIN QUERY PLAN SELECT * FROM spanflow_runs WHERE workflow_id = 'w' "
        "AND status = 'suspended' AND created_at >= 1 AND created_at < 2 "
        "ORDER BY created_at DESC, run_id DESC LIMIT 20",
    )

    assert [step[-1] for step in steps] == [
        "SEARCH spanflow_runs USING INDEX spanflow_runs_by_workflow_status "
        "(workflow_id=? AND status=? AND created_at>? AND created_at<?)"
    ]


def _make_v3(path: Path) -> None:
    """A database at version 3 (event log and leases, no cancel flag), holding run
    ``old-run`` executing under a lease, with one logged event."""
    _sql(
        path,
        *sqlite_v3(),
        "INSERT INTO spanflow_runs VALUES ('old-run', 'onboarding', 'user-7', 'running', "
        "'{\"steps\": {}}', 10.5, 11.5, 'host:1:a', 99.0)",
        "INSERT INTO spanflow_events VALUES ('old-run', 0, '{\"type\": \"workflow-start\"}', 10.5)",
    )


async def test_a_version_3_file_is_upgraded_to_the_current_version_keeping_its_runs_and_logs(
    tmp_path: Path,
) -> None:
    path, new = tmp_path / "runs.db", tmp_path / "new.db"
    _make_v3(path)

    async with SqliteStorage(path) as store, SqliteStorage(new):
        stored = await store.get_run("old-run")
        events = await store.read_events("old-run")
        requested = await store.request_cancel("old-run")

    assert stored == StoredRun(
        "old-run",
        "onboarding",
        "running",
        {"steps": {}},
        "user-7",
        created_at=10.5,
        updated_at=11.5,
        owner="host:1:a",
        lease_until=99.0,
        cancel_requested=False,
    )
    assert [event.event for event in events] == [{"type": "workflow-start"}]
    assert requested is not None
    assert requested.cancel_requested
    assert _query(path, "SELECT value FROM spanflow_meta") == [("5",)]
    assert _schema(path) == _schema(new)


async def test_an_upgrade_from_version_3_that_fails_leaves_the_file_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    _make_v3(path)
    before = _schema(path)
    _sql(
        path,
        "CREATE TRIGGER no_upgrades BEFORE UPDATE ON spanflow_meta "
        "BEGIN SELECT RAISE(ABORT, 'no upgrades today'); END",
    )

    with pytest.raises(StorageError, match="no upgrades today"):
        async with SqliteStorage(path):
            pass

    assert _query(path, "SELECT value FROM spanflow_meta") == [("3",)]
    assert _query(path, "SELECT run_id, status FROM spanflow_runs") == [("old-run", "running")]
    assert [row for row in _schema(path) if row[1] != "no_upgrades"] == before
