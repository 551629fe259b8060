"""Schema version 1 as spanflow 0.1 created it, frozen here to test the upgrade from it.

Never change these statements: they are what databases in the field hold.
"""

from __future__ import annotations

__all__ = ["postgres_v1", "sqlite_v1"]

_INDEXES = [
    "CREATE INDEX spanflow_runs_by_created ON {runs} (created_at DESC, run_id DESC)",
    "CREATE INDEX spanflow_runs_by_workflow ON {runs} (workflow_id, created_at DESC, run_id DESC)",
    "CREATE INDEX spanflow_runs_by_status ON {runs} (status, created_at DESC, run_id DESC)",
    "CREATE INDEX spanflow_runs_by_resource ON {runs} (resource_id, created_at DESC, run_id DESC)",
]


def sqlite_v1() -> list[str]:
    """The statements that made a version 1 SQLite database."""
    return [
        "CREATE TABLE spanflow_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE spanflow_runs (
            run_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            resource_id TEXT,
            status TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        *(index.format(runs="spanflow_runs") for index in _INDEXES),
        "INSERT INTO spanflow_meta (key, value) VALUES ('schema_version', '1')",
    ]


def postgres_v1(schema: str) -> list[str]:
    """The statements that made a version 1 PostgreSQL schema."""
    meta, runs = f'"{schema}".spanflow_meta', f'"{schema}".spanflow_runs'
    return [
        f'CREATE SCHEMA "{schema}"',
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
        *(index.format(runs=runs) for index in _INDEXES),
        f"INSERT INTO {meta} (key, value) VALUES ('schema_version', '1')",
    ]
