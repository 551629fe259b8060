"""The tables of the SQL stores, their version, and what to do with a database found on open.

Both SQL stores keep runs in ``spanflow_runs`` and a ``schema_version`` row in the key/value
table ``spanflow_meta``. On open a store inspects what is there and either creates the tables,
upgrades them, accepts them, or refuses with `StorageError`: it never creates tables over a
database that looks damaged or that a newer spanflow wrote.

The schema grows by numbered versions (`_UPGRADES`): a new database runs every step from
version 1, an older one only the steps it lacks, in one transaction with the version row, so
both end up with the same tables and indexes and an upgrade that fails leaves the database as
it was. A step may only add (tables, columns, indexes), never rewrite or drop stored runs. A
database upgraded by this spanflow is refused by an older one ("upgrade spanflow"), so upgrade
every process that shares a database together. A read-only store never upgrades: it reads an
older version as it is.

Versions: 1, the runs and meta tables with one index per `list_runs` filter; 2, an index on
``(workflow_id, status, created_at)`` so that `count_runs` can read only the index and a
listing filtered by workflow and status reads only matching rows; 3, ``spanflow_events``, the
runs' event logs (one row per event, keyed by ``(run_id, seq)``; the event as JSON text in
SQLite, ``json`` in PostgreSQL, like snapshots), and the runs' ``owner`` and ``lease_until``
columns (who executes a run, and until when their claim holds); 4, the runs'
``cancel_requested`` column (a cancel asked of a run's executor by another process;
``INTEGER`` 0/1 in SQLite, ``boolean`` in PostgreSQL); 5, agent memory: ``spanflow_threads``
(one row per conversation, with the resource that owns it, indexed per resource, most recently
updated first) and ``spanflow_messages`` (one row per message, keyed by ``(thread_id, seq)``
so the last N of a thread are one backward index walk, and indexed per resource for deleting
a resource's messages; metadata and content as JSON like snapshots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spanflow.errors import StorageError
from spanflow.storage._codec import encode_snapshot
from spanflow.storage.base import StoredRun

__all__ = [
    "EVENTS_TABLE",
    "MESSAGES_TABLE",
    "META_TABLE",
    "RUNS_TABLE",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "THREADS_TABLE",
    "FoundSchema",
    "installed_version",
    "postgres_ddl",
    "run_row",
    "sqlite_ddl",
]

SCHEMA_VERSION = 5
"""The version of the tables this spanflow writes (it reads every version up to it)."""

META_TABLE = "spanflow_meta"
RUNS_TABLE = "spanflow_runs"
EVENTS_TABLE = "spanflow_events"
THREADS_TABLE = "spanflow_threads"
MESSAGES_TABLE = "spanflow_messages"
RUN_COLUMNS = (
    "run_id, workflow_id, resource_id, status, snapshot, created_at, updated_at, owner, "
    "lease_until, cancel_requested"
)
"""The columns of ``spanflow_runs`` in the order `run_row` gives their values."""


def run_row(
    run: StoredRun, created_at: float, updated_at: float, *, cancel_requested: bool | None = None
) -> tuple[Any, ...]:
    """The values of `RUN_COLUMNS` for `run`, its snapshot encoded as JSON text (and its
    ``cancel_requested`` flag, unless `cancel_requested` says otherwise)."""
    snapshot = encode_snapshot(run.run_id, run.snapshot)
    return (
        run.run_id,
        run.workflow_id,
        run.resource_id,
        run.status,
        snapshot,
        created_at,
        updated_at,
        run.owner,
        run.lease_until,
        run.cancel_requested if cancel_requested is None else cancel_requested,
    )


@dataclass(frozen=True, slots=True)
class FoundSchema:
    """What a store found in the database before touching it."""

    has_meta: bool
    has_runs: bool
    version: str | None
    """The ``schema_version`` value in ``spanflow_meta``, as stored (``None`` when absent)."""


def installed_version(found: FoundSchema, *, where: str) -> int:
    """The schema version in the database, 0 if the spanflow tables must be created.

    Raises `StorageError` if the database is unusable: damaged, or from a newer spanflow.

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
        return 0
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
    return version


@dataclass(frozen=True, slots=True)
class _Names:
    """The qualified names and the JSON column type an upgrade step writes."""

    runs: str
    events: str
    threads: str
    messages: str
    prefix: str
    """Prefix of index names (the runs table's unqualified name)."""
    json_type: str
    bool_type: str
    """The column type of a flag, and its false value."""
    false: str


def _v1_indexes(names: _Names) -> list[str]:
    table, prefix = names.runs, names.prefix
    # One index per filter of `list_runs`, each already in its newest-first order.
    return [
        f"CREATE INDEX {prefix}_by_created ON {table} (created_at DESC, run_id DESC)",
        f"CREATE INDEX {prefix}_by_workflow ON {table} (workflow_id, created_at DESC, run_id DESC)",
        f"CREATE INDEX {prefix}_by_status ON {table} (status, created_at DESC, run_id DESC)",
        f"CREATE INDEX {prefix}_by_resource ON {table} (resource_id, created_at DESC, run_id DESC)",
    ]


def _v2_indexes(names: _Names) -> list[str]:
    table, prefix = names.runs, names.prefix
    # `count_runs` groups by (workflow_id, status): this index covers it, so counting need not
    # read a snapshot; and a listing by workflow and status (the server's runs page) walks
    # only the matching runs, newest first, its date bounds a range on created_at.
    return [
        f"CREATE INDEX {prefix}_by_workflow_status "
        f"ON {table} (workflow_id, status, created_at DESC, run_id DESC)"
    ]


def _v3_events(names: _Names) -> list[str]:
    # The run event log: numbered from 0 per run; the primary key is the order of reading.
    # And the lease of the process executing a run.
    return [
        f"ALTER TABLE {names.runs} ADD COLUMN owner text",
        f"ALTER TABLE {names.runs} ADD COLUMN lease_until double precision NOT NULL DEFAULT 0",
        f"""CREATE TABLE {names.events} (
            run_id text NOT NULL,
            seq bigint NOT NULL,
            event {names.json_type} NOT NULL,
            created_at double precision NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
    ]


def _v4_cancel(names: _Names) -> list[str]:
    # A cancel asked by another process, for the run's executor to act on.
    return [
        f"ALTER TABLE {names.runs} ADD COLUMN cancel_requested {names.bool_type} "
        f"NOT NULL DEFAULT {names.false}"
    ]


def _v5_threads(names: _Names) -> list[str]:
    # Agent memory. A thread's messages are numbered from 0, so the primary key is the order
    # of reading and "the last N" walks it backwards; the resource is kept on each message
    # too, so deleting a resource's messages needs no join.
    threads, messages = names.threads, names.messages
    return [
        f"""CREATE TABLE {threads} (
            id text PRIMARY KEY,
            resource_id text NOT NULL,
            title text,
            metadata {names.json_type} NOT NULL,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL
        )""",
        f"CREATE INDEX {THREADS_TABLE}_by_resource "
        f"ON {threads} (resource_id, updated_at DESC, id DESC)",
        f"""CREATE TABLE {messages} (
            thread_id text NOT NULL,
            seq bigint NOT NULL,
            resource_id text NOT NULL,
            role text NOT NULL,
            content {names.json_type} NOT NULL,
            created_at double precision NOT NULL,
            PRIMARY KEY (thread_id, seq)
        )""",
        f"CREATE INDEX {MESSAGES_TABLE}_by_resource ON {messages} (resource_id)",
    ]


_UPGRADES = {2: _v2_indexes, 3: _v3_events, 4: _v4_cancel, 5: _v5_threads}
"""The statements that take the tables from the version before to this one."""


def _upgrade(
    from_version: int,
    *,
    meta: str,
    runs: str,
    tables: list[str],
    types: tuple[str, str, str],
) -> list[str]:
    """The statements that take a database from `from_version` (0: empty) to `SCHEMA_VERSION`.

    `types`: the dialect's JSON column type, flag column type and false value.
    """
    prefix = runs.rsplit(".", 1)[-1].strip('"')
    schema = runs[: len(runs) - len(RUNS_TABLE)]  # '"schema".' or ''
    names = _Names(
        runs,
        schema + EVENTS_TABLE,
        schema + THREADS_TABLE,
        schema + MESSAGES_TABLE,
        prefix,
        *types,
    )
    statements = [*tables, *_v1_indexes(names)] if from_version == 0 else []
    for version in range(max(from_version, 1) + 1, SCHEMA_VERSION + 1):
        statements += _UPGRADES[version](names)
    if from_version == 0:
        statements.append(
            f"INSERT INTO {meta} (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')"
        )
    else:
        statements.append(
            f"UPDATE {meta} SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'"
        )
    return statements


def sqlite_ddl(from_version: int = 0) -> list[str]:
    """The statements that take an SQLite database to `SCHEMA_VERSION`, in one transaction.

    `from_version` is the version installed, 0 for a database without spanflow's tables.
    """
    tables = [
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
    ]
    return _upgrade(
        from_version,
        meta=META_TABLE,
        runs=RUNS_TABLE,
        tables=tables,
        types=("text", "INTEGER", "0"),
    )


def postgres_ddl(schema: str, from_version: int = 0) -> list[str]:
    """The statements that take PostgreSQL schema `schema` to `SCHEMA_VERSION`, in one transaction.

    `from_version` is the version installed, 0 for a schema without spanflow's tables.
    `schema` must already be a safe plain identifier (`PostgresStorage` checks it). The
    snapshot column is ``json``, not ``jsonb``: ``json`` keeps the text as written, so key
    order, float spelling and ``\\u0000`` survive the round trip exactly as in SQLite, and it
    is cheaper to write; spanflow never queries inside snapshots.
    """
    meta, runs = f'"{schema}".{META_TABLE}', f'"{schema}".{RUNS_TABLE}'
    tables = [
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
    ]
    return _upgrade(
        from_version, meta=meta, runs=runs, tables=tables, types=("json", "boolean", "false")
    )
