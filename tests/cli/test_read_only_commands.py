"""``runs list`` and ``runs show`` only read: they create no database and change no file."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import ThrowawayPostgres

from .conftest import Cli

HELLO = "tests.cli.sample_workflows:hello"


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """Another program's SQLite file, with a table of its own."""
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("argv", [["runs", "list"], ["runs", "show", "some-run"]])
def test_reading_where_there_is_no_database_says_so_and_creates_none(
    cli: Cli, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    done = cli(*argv)

    assert done.code == 1
    assert done.error_line.startswith(
        f"spanflow: error: {' '.join(argv[:2])}: no database at {tmp_path / 'spanflow.db'}"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["runs", "list"], ["runs", "show", "some-run"]])
def test_another_programs_sqlite_file_is_a_storage_error_and_left_unchanged(
    cli: Cli, argv: list[str], foreign: Path
) -> None:
    before = digest(foreign)

    done = cli(*argv, "--db", str(foreign))

    assert done.code == 1
    assert done.error_line == (
        f"spanflow: error: {' '.join(argv[:2])}: {foreign} is not a spanflow database (no "
        "spanflow_runs table; its tables: notes); it was opened read-only and left unchanged"
    )
    assert digest(foreign) == before
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["notes.db"]


def test_a_missing_database_names_the_demos_when_it_has_runs(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_db = tmp_path / "spanflow-demo.db"
    cli("run", HELLO, "--input", '{"name": "Ada"}', "--db", str(demo_db))
    monkeypatch.setattr("spanflow.cli.storage.DEMO_DB", demo_db)

    done = cli("runs", "list", "--db", str(tmp_path / "elsewhere.db"))

    assert done.code == 1
    assert done.error_line.endswith(
        f"(spanflow demo keeps its runs in {demo_db}: spanflow runs list --db {demo_db})"
    )


def test_piped_show_lines_have_no_trailing_spaces(cli: Cli, db: Path) -> None:
    cli("run", HELLO, "--input", '{"name": "Ada"}', "--db", str(db))
    run_id = cli("runs", "list", "--db", str(db)).out.splitlines()[1].split()[0]

    done = cli("runs", "show", run_id, "--db", str(db))

    assert done.code == 0, done.err
    assert "workflow  hello\n" in done.out
    assert [line for line in done.out.splitlines() if line != line.rstrip()] == []


def test_reading_a_spanflow_database_leaves_its_bytes_and_adds_only_sqlites_wal_files(
    cli: Cli, db: Path
) -> None:
    # A spanflow database is in WAL mode, and any reader of a WAL database makes SQLite create
    # its shared-memory index (-shm) and an empty log (-wal) beside it: they are SQLite's, not
    # a change to the database, which stays byte for byte what the writer left.
    cli("run", HELLO, "--input", '{"name": "Ada"}', "--db", str(db))
    run_id = cli("runs", "list", "--db", str(db)).out.splitlines()[1].split()[0]
    before = digest(db)

    listed = cli("runs", "list", "--db", str(db))
    shown = cli("runs", "show", run_id, "--db", str(db))

    assert (listed.code, shown.code) == (0, 0), listed.err + shown.err
    assert digest(db) == before
    assert {p.name for p in db.parent.iterdir()} <= {"runs.db", "runs.db-shm", "runs.db-wal"}
    wal = db.with_name("runs.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.mark.postgres
@pytest.mark.parametrize("argv", [["runs", "list"], ["runs", "show", "some-run"]])
def test_reading_a_postgresql_database_without_spanflow_tables_creates_none(
    cli: Cli, argv: list[str], postgres_cluster: ThrowawayPostgres
) -> None:
    dsn = postgres_cluster.create_database(f"cli_{uuid.uuid4().hex[:12]}")

    done = cli(*argv, "--storage", dsn)

    with psycopg.connect(dsn, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    assert done.code == 1
    assert "holds no spanflow tables" in done.error_line
    assert "left unchanged" in done.error_line
    assert tables == []
