"""Schema version 4 as spanflow created it (event log, leases and the cancel flag; no agent
memory yet), frozen here to test the upgrade from it.

A version 4 database holds the version 3 tables plus the step to version 4, whether it was
created at version 4 or upgraded to it. Never change these statements: they are what databases
in the field hold.
"""

from __future__ import annotations

from tests.storage.schema_v3 import postgres_v3, sqlite_v3

__all__ = ["postgres_v4", "sqlite_v4"]


def sqlite_v4() -> list[str]:
    """The statements that made a version 4 SQLite database."""
    return [
        *sqlite_v3()[:-1],  # less its version row's update
        "ALTER TABLE spanflow_runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "UPDATE spanflow_meta SET value = '4' WHERE key = 'schema_version'",
    ]


def postgres_v4(schema: str) -> list[str]:
    """The statements that made a version 4 PostgreSQL schema."""
    return [
        *postgres_v3(schema)[:-1],  # less its version row's update
        f'ALTER TABLE "{schema}".spanflow_runs ADD COLUMN cancel_requested boolean '
        "NOT NULL DEFAULT false",
        f"UPDATE \"{schema}\".spanflow_meta SET value = '4' WHERE key = 'schema_version'",
    ]
