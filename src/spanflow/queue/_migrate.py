"""`migrate`: the tables a queued deployment needs, created or upgraded in one idempotent step.

Two sets of tables live in the same PostgreSQL database: spanflow's (``spanflow_meta``,
``spanflow_runs``, ``spanflow_events``, created and upgraded by `PostgresStorage` itself, under
its own advisory lock) and procrastinate's (``procrastinate_jobs`` and its functions, types and
triggers, from the ``schema.sql`` shipped with the installed procrastinate). Both are applied
by spanflow's own step, ``spanflow db migrate --storage URL``; every worker does the same at
start (it opens the registry's store, which creates or upgrades its tables wherever they are,
and applies procrastinate's schema to the queue's database), so a fresh database works
without a separate procrastinate command.

procrastinate's schema is applied only when its tables are absent: its ``schema.sql`` is not
idempotent (it creates types and functions), and upgrading an existing procrastinate schema to
a newer procrastinate release is done with procrastinate's own migration files, which
spanflow does not replay. Several workers starting at once on an empty database are
serialised by a transaction-level advisory lock, so exactly one of them applies the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from spanflow.errors import StorageError
from spanflow.storage import PostgresStorage
from spanflow.storage._schema import META_TABLE

__all__ = ["MigrationReport", "apply_queue_schema", "describe_url", "migrate"]

_JOBS_TABLE: Final = "procrastinate_jobs"
_LOCK_KEY: Final = "spanflow.queue:procrastinate-schema"


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What `migrate` found and did."""

    spanflow_before: int
    """spanflow's schema version before (0: no spanflow tables)."""
    spanflow_after: int
    """spanflow's schema version now."""
    procrastinate_applied: bool
    """Whether procrastinate's schema was applied now (False: it was there already)."""

    @property
    def changed(self) -> bool:
        """Whether anything was created or upgraded."""
        return self.procrastinate_applied or self.spanflow_before != self.spanflow_after

    def lines(self) -> list[str]:
        """One line per set of tables, for a person."""
        if self.spanflow_before == 0:
            spanflow = f"spanflow tables: created (schema version {self.spanflow_after})"
        elif self.spanflow_before != self.spanflow_after:
            spanflow = (
                f"spanflow tables: upgraded from schema version {self.spanflow_before} "
                f"to {self.spanflow_after}"
            )
        else:
            spanflow = f"spanflow tables: up to date (schema version {self.spanflow_after})"
        queue = (
            "procrastinate schema: applied"
            if self.procrastinate_applied
            else "procrastinate schema: present, left as it is"
        )
        return [spanflow, queue]


async def migrate(postgres_url: str, *, schema: str = "public") -> MigrationReport:
    """Create or upgrade spanflow's tables and apply procrastinate's schema if absent.

    Idempotent: a second call changes nothing and says so. Safe to run from several processes
    at once (each step holds its own advisory lock).

    Args:
        postgres_url: A libpq URL or connection string (``postgresql://user@host:5432/db``).
        schema: The PostgreSQL schema of spanflow's tables (as `PostgresStorage`'s);
            procrastinate's tables go where the connection's ``search_path`` points (normally
            ``public``).

    Raises:
        StorageError: PostgreSQL cannot be reached, or its tables are damaged or newer than
            this spanflow knows.
    """
    import psycopg

    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            before = await _spanflow_version(conn, schema)
    except psycopg.Error as err:
        raise StorageError(
            f"cannot migrate PostgreSQL at {describe_url(postgres_url)}: {err}"
        ) from err
    async with PostgresStorage(postgres_url, schema=schema, min_size=1, max_size=1):
        pass  # opening creates or upgrades spanflow's tables
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            after = await _spanflow_version(conn, schema)
    except psycopg.Error as err:
        raise StorageError(
            f"cannot migrate PostgreSQL at {describe_url(postgres_url)}: {err}"
        ) from err
    return MigrationReport(before, after, await apply_queue_schema(postgres_url))


async def apply_queue_schema(postgres_url: str) -> bool:
    """Apply procrastinate's schema at `postgres_url` if it is absent; whether it was.

    Raises:
        StorageError: PostgreSQL cannot be reached, or the schema failed to apply.
    """
    import psycopg

    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            return await _apply_procrastinate_schema(conn)
    except psycopg.Error as err:
        raise StorageError(
            f"cannot apply procrastinate's schema at {describe_url(postgres_url)}: {err}"
        ) from err


async def _spanflow_version(conn: Any, schema: str) -> int:
    meta = f'"{schema}".{META_TABLE}'
    cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (meta,))
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0
    cursor = await conn.execute(f"SELECT value FROM {meta} WHERE key = 'schema_version'")
    row = await cursor.fetchone()
    try:
        return int(row[0]) if row is not None else 0
    except (TypeError, ValueError):
        return 0  # PostgresStorage has refused such a table already, with the reason


async def _apply_procrastinate_schema(conn: Any) -> bool:
    """Apply ``schema.sql`` in one transaction, under an advisory lock, if absent."""
    from procrastinate.schema import SchemaManager

    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK_KEY,))
        cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_JOBS_TABLE,))
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return False
        # No parameters: psycopg sends the script as it is (simple query protocol), so its
        # ``%`` signs need no escaping and its many statements run in this transaction.
        await conn.execute(SchemaManager.get_schema())
    return True


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a PostgreSQL URL, for messages (never its password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "an unparsable PostgreSQL URL"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or params.get('user') or ''}"
