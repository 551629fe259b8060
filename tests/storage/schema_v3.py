"""Schema version 3 as spanflow created it (event log and leases, no cancel flag yet), frozen
here to test the upgrade from it.

A version 3 database holds the version 1 tables and indexes plus the steps to versions 2 and 3,
whether it was created at version 3 or upgraded to it. Never change these statements: they are
what databases in the field hold.
"""

from __future__ import annotations

from tests.storage.schema_v1 import postgres_v1, sqlite_v1

__all__ = ["postgres_v3", "sqlite_v3"]


def _v2_and_v3(runs: str, events: str, json_type: str) -> list[str]:
    return [
        "CREATE INDEX spanflow_runs_by_workflow_status "
        f"ON {runs} (workflow_id, status, created_at DESC, run_id DESC)",
        f"ALTER TABLE {runs} ADD COLUMN owner text",
        f"ALTER TABLE {runs} ADD COLUMN lease_until double precision NOT NULL DEFAULT 0",
        f"""CREATE TABLE {events} (
            run_id text NOT NULL,
            seq bigint NOT NULL,
            event {json_type} NOT NULL,
            created_at double precision NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
    ]


def sqlite_v3() -> list[str]:
    """The statements that made a version 3 SQLite database."""
    return [
        *sqlite_v1(),
        *_v2_and_v3("spanflow_runs", "spanflow_events", "text"),
        "UPDATE spanflow_meta SET value = '3' WHERE key = 'schema_version'",
    ]


def postgres_v3(schema: str) -> list[str]:
    """The statements that made a version 3 PostgreSQL schema."""
    runs, events = f'"{schema}".spanflow_runs', f'"{schema}".spanflow_events'
    return [
        *postgres_v1(schema),
        *_v2_and_v3(runs, events, "json"),
        f"UPDATE \"{schema}\".spanflow_meta SET value = '3' WHERE key = 'schema_version'",
    ]
