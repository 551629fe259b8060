"""The tables of the SQL stores, their version, and what to do with a database found on open.

Both SQL stores keep runs in ``spanflow_runs`` and a ``schema_version`` row in the key/value
table ``spanflow_meta``. On open a store inspects what is there and either creates the tables,
accepts them, or refuses with `StorageError`: it never creates tables over a database that
looks damaged or that a newer spanflow wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spanflow.errors import StorageError
from spanflow.storage._codec import encode_snapshot
from spanflow.storage.base import StoredRun

__all__ = [
    "META_TABLE",
    "RUNS_TABLE",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "FoundSchema",
    "postgres_ddl",
    "run_row",
    "sqlite_ddl",
    "tables_to_create",
]

SCHEMA_VERSION = 1
"""The version of the tables this spanflow reads and writes."""

META_TABLE = "spanflow_meta"
RUNS_TABLE = "spanflow_runs"
RUN_COLUMNS = "run_id, workflow_id, resource_id, status, snapshot, created_at, updated_at"
"""The columns of ``spanflow_runs`` in the order `run_row` gives their values."""


def run_row(run: StoredRun, created_at: float, updated_at: float) -> tuple[Any, ...]:
    """The values of `RUN_COLUMNS` for `run`, its snapshot encoded as JSON text."""
    snapshot = encode_snapshot(run.run_id, run.snapshot)
    return (
        run.run_id,
        run.workflow_id,
        run.resource_id,
        run.status,
        snapshot,
        created_at,
        updated_at,
    )


@dataclass(frozen=True, slots=True)
class FoundSchema:
    """What a store found in the database before touching it."""

    has_meta: bool
    has_runs: bool
    version: str | None
    """The ``schema_version`` value in ``spanflow_meta``, as stored (``None`` when absent)."""


def tables_to_create(found: FoundSchema, *, where: str) -> bool:
    """``True`` if the spanflow tables must be created; raise if the database is unusable.

    Args:
        found: What the store found.
        where: The database as the user knows it (a path, ``host:port/db``), for messages.
    """
    if not found.has_meta:
        if found.has_runs:
            raise StorageError(
                f"{where} has a {RUNS_TABLE} table but no {META_TABLE} table: it was not "
                "created by spanflow or is damaged; spanflow will not write to it"
            )
        return True
    try:
        version = int(found.version) if found.version is not None else None
    except ValueError:
        version = None
    if version is None or version < 1:
        raise StorageError(
            f"{where}: {META_TABLE} holds no valid schema_version ({found.version!r}); "
            "the database is damaged: restore it from a backup"
        )
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{where} uses spanflow schema version {version}, but this spanflow only knows "
            f"version {SCHEMA_VERSION}: upgrade spanflow (pip install -U spanflow)"
        )
    if not found.has_runs:
        raise StorageError(
            f"{where}: missing table {RUNS_TABLE} although {META_TABLE} says schema version "
            f"{version} is installed; the database is damaged: restore it from a backup "
            "(spanflow will not recreate the table over lost data)"
        )
    return False


def _index_ddl(table: str) -> list[str]:
    # One index per filter of `list_runs`, each already in its newest-first order.
    prefix = table.rsplit(".", 1)[-1].strip('"')
    return [
        f"CREATE INDEX {prefix}_by_created ON {table} (created_at DESC, run_id DESC)",
        f"CREATE INDEX {prefix}_by_workflow ON {table} (workflow_id, created_at DESC, run_id DESC)",
        f"CREATE INDEX {prefix}_by_status ON {table} (status, created_at DESC, run_id DESC)",
        f"CREATE INDEX {prefix}_by_resource ON {table} (resource_id, created_at DESC, run_id DESC)",
    ]


def sqlite_ddl() -> list[str]:
    """The statements that create schema version 1 in SQLite (run inside one transaction)."""
    return [
        f"CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE {RUNS_TABLE} (
            run_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            resource_id TEXT,
            status TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        *_index_ddl(RUNS_TABLE),
        f"INSERT INTO {META_TABLE} (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')",
    ]


def postgres_ddl(schema: str) -> list[str]:
    """The statements that create schema version 1 in PostgreSQL schema `schema`.

    `schema` must already be a safe plain identifier (`PostgresStorage` checks it). The
    snapshot column is ``json``, not ``jsonb``: ``json`` keeps the text as written, so key
    order, float spelling and ``\\u0000`` survive the round trip exactly as in SQLite, and it
    is cheaper to write; spanflow never queries inside snapshots.
    """
    meta, runs = f'"{schema}".{META_TABLE}', f'"{schema}".{RUNS_TABLE}'
    return [
        f"CREATE TABLE {meta} (key text PRIMARY KEY, value text NOT NULL)",
        f"""CREATE TABLE {runs} (
            run_id text PRIMARY KEY,
            workflow_id text NOT NULL,
            resource_id text,
            status text NOT NULL,
            snapshot json NOT NULL,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL
        )""",
        *_index_ddl(runs),
        f"INSERT INTO {meta} (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')",
    ]
