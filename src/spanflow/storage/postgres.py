"""`PostgresStorage`: runs in PostgreSQL (psycopg 3, async pool), for deployments with many workers.

psycopg is imported when a store is created, not when spanflow is, so spanflow works without
the ``postgres`` extra. The pool opens on first use. Before it does, one plain connection
creates or checks the tables under an advisory lock (two processes starting together do not
race), and its failure is quick and clear: a server that refuses or does not answer within
`connect_timeout` gives `StorageError`, never a hang, and so does a connection lost later.

Outages: the pool checks a connection before handing it out (a dead one is replaced), every
statement has a ``statement_timeout``, and a write of a run (`save_run`, `append_events`) and
the reads of one (`get_run`, `read_events`) are retried on a lost connection for up to
`retry_for` seconds, so a run does not fail because PostgreSQL restarted or the network
blinked for less than that. (A write whose commit reached the server just as the connection
dropped is written again: for an event append, the events are then logged twice.)
`claim_run` is one conditional ``UPDATE … RETURNING``, so exactly one concurrent claimer wins.

Event logs live in ``spanflow_events``. Every write to a log sends ``NOTIFY spanflow_events``
(payload ``schema/run_id``) in its transaction, so it arrives once the events are committed;
one listening connection per store, opened by the first `wait_for_events`, wakes the waiters
of this process. The notification is only a wake-up: the events are read from the table, so an
event of any size is fine, and a waiter also looks once a second in case the listening
connection was lost.

Agent memory (`ThreadStore`) lives in ``spanflow_threads`` and ``spanflow_messages``; its
methods are in `PostgresThreads` (``_postgres_threads.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from spanflow.errors import StorageError
from spanflow.storage._checks import (
    check_from_status,
    check_id_filter,
    check_if_status,
    check_lease,
    check_listing,
    check_run,
    check_stalled,
    claim_refused,
    counts_by_workflow,
    delete_refused,
    duplicate_run,
    lease_lost,
    lease_refused,
    old_schema_cannot_cancel,
    run_filter,
    run_not_found,
    saved_cancel_flag,
    split_readable,
)
from spanflow.storage._codec import decode_snapshot
from spanflow.storage._events import Waiters, check_event_range, decode_event, encode_events
from spanflow.storage._postgres_threads import PostgresThreads
from spanflow.storage._schema import (
    EVENTS_TABLE,
    MESSAGES_TABLE,
    META_TABLE,
    RUN_COLUMNS,
    RUNS_TABLE,
    SCHEMA_VERSION,
    THREADS_TABLE,
    FoundSchema,
    installed_version,
    postgres_ddl,
    run_row,
)
from spanflow.storage.base import (
    EXECUTING_STATUSES,
    KEEPS_CANCEL_REQUEST,
    EventEntry,
    Lease,
    LoggedEvent,
    RunPage,
    RunStatus,
    StoredRun,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    Connection = psycopg.AsyncConnection[tuple[Any, ...]]

__all__ = ["PostgresStorage"]

_T = TypeVar("_T")

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_COLUMNS = RUN_COLUMNS.replace("snapshot", "snapshot::text")
_MARKS = ", ".join(["%s"] * len(RUN_COLUMNS.split(",")))
_COLUMNS_BY_VERSION = {
    1: _COLUMNS.replace("owner, lease_until, cancel_requested", "NULL, 0, false"),
    3: _COLUMNS.replace("cancel_requested", "false"),
}
"""The columns as a read-only store reads a schema older than version 4 (before version 3: no
lease; before 4: no cancel flag)."""
_COLUMNS_BY_VERSION[2] = _COLUMNS_BY_VERSION[1]
_KEPT = ", ".join(f"'{status}'" for status in KEEPS_CANCEL_REQUEST)
"""The statuses that keep the cancel flag, as SQL literals (constants, not user input)."""
_NEWEST_FIRST = "ORDER BY created_at DESC, run_id DESC"
_DB_NOW = "extract(epoch from clock_timestamp())::double precision"
"""PostgreSQL's own time in epoch seconds: the clock every host's leases are read on."""
_CHANNEL = "spanflow_events"
"""The ``NOTIFY`` channel of every store's event logs (the payload names schema and run)."""
_MAX_PAYLOAD = 7000
"""Longer ``schema/run_id`` payloads (PostgreSQL takes 8000 bytes) wake the whole schema."""
_LISTEN_POLL = 1.0
"""Seconds between a waiter's own looks, should the listening connection be lost."""


class PostgresStorage(PostgresThreads):
    """A `Storage` in a PostgreSQL database, shared by any number of processes.

    Use one store from one event loop: its pool belongs to the loop that opened it. Snapshots
    are stored as ``json`` (see `postgres_ddl` for why not ``jsonb``).
    """

    durable = True
    """Runs outlive the process: the engine checkpoints after every entry."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        event_log: bool = True,
        retry_for: float = 15.0,
        statement_timeout: float = 30.0,
    ) -> None:
        """Create a store; nothing connects until first use (or `open`).

        Args:
            dsn: A libpq connection string or URL (``postgresql://user@host:5432/db``).
            schema: The PostgreSQL schema holding spanflow's tables, created if missing; a
                plain lower-case identifier.
            min_size: Connections the pool keeps open.
            max_size: Connections the pool opens at most.
            connect_timeout: Seconds to wait for a connection (new or from the busy pool)
                before failing with `StorageError`.
            clock: Returns the current time in epoch seconds; tests pass a fake one.
            read_only: Only read: the schema must hold spanflow's tables, an older schema is
                read as it is (never created or upgraded), and the server refuses every
                write (each session has ``default_transaction_read_only``).
            event_log: Keep each run's event log (``Workflow.observe`` reads it); ``False``
                saves one insert per write of events.
            retry_for: Seconds a run's write or read is retried (with growing pauses, up to
                1 s) while the connection to PostgreSQL is lost; 0 never retries.
            statement_timeout: Seconds any one statement may take before the server cancels
                it (``statement_timeout``), so a stuck lock or server fails the call instead of
                hanging the run.
        """
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(
                f"schema must be a plain lower-case identifier such as 'spanflow'; got {schema!r}"
            )
        if not 1 <= min_size <= max_size:
            raise ValueError(f"need 1 <= min_size <= max_size; got {min_size} and {max_size}")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be positive; got {connect_timeout}")
        if not 0 <= retry_for <= 3600:
            raise ValueError(f"retry_for must be between 0 and 3600 seconds; got {retry_for}")
        if not 0 < statement_timeout <= 86_400:
            raise ValueError(f"statement_timeout must be positive; got {statement_timeout}")
        self._retry_for = retry_for
        self._statement_timeout = statement_timeout
        self._where = _describe(dsn)  # imports psycopg, or explains how to install it
        self._dsn = dsn
        self._schema = schema
        self._min_size, self._max_size = min_size, max_size
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._read_only = read_only
        self._runs = f'"{schema}".{RUNS_TABLE}'
        self._events = f'"{schema}".{EVENTS_TABLE}'
        self._threads = f'"{schema}".{THREADS_TABLE}'
        self._messages = f'"{schema}".{MESSAGES_TABLE}'
        self.event_log = event_log
        self._version = SCHEMA_VERSION
        """The schema version of the tables: older only for a read-only store on an old schema
        (before 3: no event log, no lease columns; before 4: no cancel flag)."""
        self._waiters = Waiters()
        self._listener: asyncio.Task[None] | None = None
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresStorage({self._where!r}, schema={self._schema!r})"

    async def __aenter__(self) -> PostgresStorage:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and check or create the tables now rather than on first use."""
        async with self._connection():
            pass

    async def insert_run(self, run: StoredRun) -> None:
        """Store a new run; raise `RunClaimError` if a run with that id already exists.

        Fills ``run.created_at`` (when 0) and sets ``run.updated_at``.
        """
        check_run(run)
        now = self._clock()
        created_at = run.created_at or now
        row = run_row(run, created_at, now)
        async with self._connection() as connection:
            cursor = await connection.execute(
                f"INSERT INTO {self._runs} ({RUN_COLUMNS}) VALUES ({_MARKS}) "
                "ON CONFLICT (run_id) DO NOTHING",
                row,
            )
            if cursor.rowcount == 0:
                raise duplicate_run(run.run_id)
        run.created_at, run.updated_at = created_at, now

    async def save_run(
        self, run: StoredRun, *, events: Sequence[EventEntry] = (), if_owner: str | None = None
    ) -> None:
        """Insert or replace the run, keeping the stored ``created_at`` of an existing run, and
        append `events` to its log, in one transaction.

        Sets ``run.updated_at``, ``run.cancel_requested`` (see `Storage.save_run`) and, when it
        is 0, ``run.created_at``.
        """
        check_run(run)
        now = self._clock()
        row = run_row(run, run.created_at or now, now, cancel_requested=saved_cancel_flag(run))
        texts = encode_events(run.run_id, events) if events and self.event_log else []

        async def save() -> tuple[Any, ...] | None:
            async with self._connection() as connection, connection.transaction():
                cursor = await connection.execute(
                    f"INSERT INTO {self._runs} ({RUN_COLUMNS}) VALUES ({_MARKS}) "
                    "ON CONFLICT (run_id) DO UPDATE SET workflow_id = excluded.workflow_id, "
                    "resource_id = excluded.resource_id, status = excluded.status, "
                    "snapshot = excluded.snapshot, updated_at = excluded.updated_at, "
                    "owner = excluded.owner, lease_until = excluded.lease_until, "
                    f"cancel_requested = {self._runs}.cancel_requested "
                    f"AND excluded.status IN ({_KEPT}) "
                    + ("" if if_owner is None else f"WHERE {self._runs}.owner = %s ")
                    + "RETURNING created_at, cancel_requested",
                    row if if_owner is None else (*row, if_owner),
                )
                stored = await cursor.fetchone()
                if stored is None and if_owner is not None:
                    raise lease_lost(run.run_id, if_owner)
                if texts:
                    await self._append(connection, run.run_id, texts, now)
            return stored

        stored = await self._retrying(save)
        if stored is not None:  # always, but for a type checker
            run.created_at, run.cancel_requested = stored[0], stored[1]
        run.updated_at = now

    async def append_events(self, run_id: str, events: Sequence[EventEntry]) -> None:
        """Append `events` to the run's log in one transaction (nothing for a run not stored)."""
        if not events or not self.event_log:
            return
        texts = encode_events(run_id, events)
        now = self._clock()

        async def append() -> None:
            async with self._connection() as connection, connection.transaction():
                await self._append(connection, run_id, texts, now)

        await self._retrying(append)

    async def read_events(
        self, run_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[LoggedEvent]:
        """The run's logged events from `offset` on, in order."""
        check_event_range(offset, limit)
        if self._version < 3:
            return []

        async def read() -> list[Any]:
            async with self._connection() as connection:
                cursor = await connection.execute(
                    f"SELECT seq, event::text FROM {self._events} WHERE run_id = %s "
                    "AND seq >= %s ORDER BY seq LIMIT %s",
                    (run_id, offset, limit),
                )
                return await cursor.fetchall()

        rows = await self._retrying(read)
        where = self._where_schema()
        return [decode_event(run_id, seq, text, where=where) for seq, text in rows]

    async def count_events(self, run_id: str) -> int:
        """How many events the run's log holds (numbered from 0: the last number plus one)."""
        if self._version < 3:
            return 0

        async def count() -> int:
            async with self._connection() as connection:
                cursor = await connection.execute(
                    f"SELECT max(seq) FROM {self._events} WHERE run_id = %s", (run_id,)
                )
                found = await cursor.fetchone()
            return 0 if found is None or found[0] is None else int(found[0]) + 1

        return await self._retrying(count)

    async def wait_for_events(self, run_id: str, *, offset: int, max_wait: float) -> bool:
        """Wait until the run's log holds an event numbered `offset` or later (woken by
        ``NOTIFY``; a look once a second besides)."""
        check_event_range(offset, None)
        await self._listen()

        async def ready() -> bool:
            if self._version < 3:
                return False
            async with self._connection() as connection:
                cursor = await connection.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {self._events} WHERE run_id = %s AND seq >= %s)",
                    (run_id, offset),
                )
                found = await cursor.fetchone()
            return bool(found and found[0])

        return await self._waiters.wait(run_id, max_wait, ready, poll=_LISTEN_POLL)

    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run, or ``None``."""

        async def get() -> tuple[Any, ...] | None:
            async with self._connection() as connection:
                cursor = await connection.execute(
                    f"SELECT {self._columns} FROM {self._runs} WHERE run_id = %s", (run_id,)
                )
                return await cursor.fetchone()

        row = await self._retrying(get)
        return None if row is None else self._stored_run(row)

    async def claim_run(
        self,
        run_id: str,
        *,
        from_status: Collection[RunStatus],
        to_status: RunStatus,
        owner: str | None = None,
        lease: float = 0.0,
    ) -> StoredRun:
        """Atomically move a run from one of `from_status` to `to_status` and return it.

        Only the status, owner and lease change; the snapshot is the engine's to rewrite.
        """
        expected = check_from_status(from_status, to_status)
        check_lease(lease)
        now = self._clock()
        async with self._connection() as connection:
            # Leases are read and set on PostgreSQL's clock: one clock for every host.
            cursor = await connection.execute(
                f"UPDATE {self._runs} SET status = %s, updated_at = %s, owner = %s, "
                f"lease_until = CASE WHEN %s > 0 THEN {_DB_NOW} + %s ELSE 0 END, "
                "cancel_requested = cancel_requested AND %s "
                "WHERE run_id = %s AND status = ANY(%s) AND NOT (status = ANY(%s) "
                f"AND lease_until > {_DB_NOW} AND owner IS DISTINCT FROM %s) "
                f"RETURNING {self._columns}",
                (
                    to_status,
                    now,
                    owner,
                    lease,
                    lease,
                    to_status in KEEPS_CANCEL_REQUEST,
                    run_id,
                    list(expected),
                    list(EXECUTING_STATUSES),
                    owner,
                ),
            )
            row = await cursor.fetchone()
            if row is None:
                cursor = await connection.execute(
                    f"SELECT status, owner, lease_until FROM {self._runs} WHERE run_id = %s",
                    (run_id,),
                )
                found = await cursor.fetchone()
                if found is None:
                    raise run_not_found(run_id)
                if found[0] in expected:
                    raise lease_refused(run_id, found[0], found[1], found[2])
                raise claim_refused(run_id, found[0], expected)
        return self._stored_run(row)

    async def renew_lease(self, run_id: str, *, owner: str, lease: float) -> Lease | None:
        """Extend `owner`'s lease on an executing run; the new lease, or ``None``."""
        check_lease(lease)
        async with self._connection() as connection:
            cursor = await connection.execute(
                f"UPDATE {self._runs} SET lease_until = {_DB_NOW} + %s WHERE run_id = %s "
                "AND owner = %s AND status = ANY(%s) RETURNING lease_until, cancel_requested",
                (lease, run_id, owner, list(EXECUTING_STATUSES)),
            )
            row = await cursor.fetchone()
        return None if row is None else Lease(float(row[0]), bool(row[1]))

    async def request_cancel(self, run_id: str) -> StoredRun | None:
        """Set the ``cancel_requested`` flag of an executing run; the run, or ``None``."""
        now = self._clock()
        async with self._connection() as connection:
            if self._version < 4:  # known once connected; only a read-only store stays older
                raise old_schema_cannot_cancel(self._where_schema(), self._version)
            cursor = await connection.execute(
                f"UPDATE {self._runs} SET cancel_requested = true, updated_at = %s "
                f"WHERE run_id = %s AND status = ANY(%s) RETURNING {_COLUMNS}",
                (now, run_id, list(EXECUTING_STATUSES)),
            )
            row = await cursor.fetchone()
        return None if row is None else self._stored_run(row)

    async def stalled_runs(
        self, *, workflow_ids: Collection[str] | None = None, limit: int = 100
    ) -> list[StoredRun]:
        """Executing runs whose lease is not live on PostgreSQL's clock, oldest ``updated_at``
        first."""
        wanted = check_stalled(workflow_ids, limit)
        if wanted is not None and not wanted:
            return []
        async with self._connection() as connection:
            # The columns are known once connected.
            lease_until = "lease_until" if self._version >= 3 else "0"
            cursor = await connection.execute(
                f"SELECT {self._columns} FROM {self._runs} WHERE status = ANY(%s) "
                f"AND {lease_until} <= {_DB_NOW} "
                + ("" if wanted is None else "AND workflow_id = ANY(%s) ")
                + "ORDER BY updated_at, run_id LIMIT %s",
                (list(EXECUTING_STATUSES), *(() if wanted is None else (list(wanted),)), limit),
            )
            rows = await cursor.fetchall()
        runs, _ = split_readable(rows, self._stored_run)
        return runs

    async def list_runs(
        self,
        *,
        workflow_id: str | None = None,
        status: RunStatus | None = None,
        resource_id: str | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> RunPage:
        """Runs matching every given filter, newest first (by `created_at`, then `run_id`).

        See `Storage.list_runs` for the date bounds.
        """
        created = check_listing(
            limit,
            offset,
            status,
            workflow_id=workflow_id,
            resource_id=resource_id,
            from_date=from_date,
            to_date=to_date,
        )
        where, values = run_filter(
            workflow_id, status, resource_id, created=created, placeholder="%s", match_all="true"
        )
        async with self._connection() as connection, connection.transaction():
            # One snapshot of the table for both queries, so the total and the page agree.
            await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor = await connection.execute(
                f"SELECT count(*) FROM {self._runs} WHERE {where}", values
            )
            counted = await cursor.fetchone()
            cursor = await connection.execute(
                f"SELECT {self._columns} FROM {self._runs} WHERE {where} {_NEWEST_FIRST} "
                "LIMIT %s OFFSET %s",
                (*values, limit, offset),
            )
            rows = await cursor.fetchall()
        total = 0 if counted is None else int(counted[0])
        runs, damaged = split_readable(rows, self._stored_run)
        return RunPage(runs=runs, total=total, limit=limit, offset=offset, damaged=damaged)

    async def count_runs(
        self, *, workflow_id: str | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """How many runs each workflow has per status (nonzero counts only).

        The ``(workflow_id, status, ...)`` index answers it (an index-only scan) whenever the
        planner finds that cheaper than reading the table.
        """
        check_id_filter(workflow_id, argument="workflow_id")
        where, values = run_filter(workflow_id, None, None, placeholder="%s", match_all="true")
        async with self._connection() as connection:
            cursor = await connection.execute(
                f"SELECT workflow_id, status, count(*) FROM {self._runs} WHERE {where} "
                "GROUP BY workflow_id, status",
                values,
            )
            rows = await cursor.fetchall()
        return counts_by_workflow((wid, status, int(n)) for wid, status, n in rows)

    async def delete_run(
        self, run_id: str, *, if_status: Collection[RunStatus] | None = None
    ) -> bool:
        """Remove a run; ``True`` if it existed. With `if_status`, only in one of those."""
        allowed = check_if_status(if_status)
        if allowed is None:
            async with self._connection() as connection, connection.transaction():
                cursor = await connection.execute(
                    f"DELETE FROM {self._runs} WHERE run_id = %s", (run_id,)
                )
                await self._delete_events(connection, run_id)
                return cursor.rowcount > 0
        async with self._connection() as connection, connection.transaction():
            # The row lock holds off a concurrent claim until the delete is decided.
            cursor = await connection.execute(
                f"SELECT status FROM {self._runs} WHERE run_id = %s FOR UPDATE", (run_id,)
            )
            found = await cursor.fetchone()
            if found is None:
                return False
            if found[0] not in allowed:
                raise delete_refused(run_id, found[0], allowed)
            await connection.execute(f"DELETE FROM {self._runs} WHERE run_id = %s", (run_id,))
            await self._delete_events(connection, run_id)
        return True

    async def close(self) -> None:
        """Close the pool's connections. Safe to call twice; the store refuses further use."""
        async with self._opening:
            self._closed = True
            pool, self._pool = self._pool, None
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        self._waiters.wake_all()
        if pool is not None:
            await pool.close()

    async def _append(
        self, connection: Connection, run_id: str, texts: list[str], now: float
    ) -> None:
        # Inside the caller's transaction: the events numbered on from the log's last one (a
        # concurrent writer of the same run would collide on the key and fail), and a NOTIFY
        # that PostgreSQL delivers once they are committed.
        if self._version < 3:
            raise StorageError(f"{self._where_schema()} has no event log table (schema < 3)")
        await connection.execute(
            f"INSERT INTO {self._events} (run_id, seq, event, created_at) "
            f"SELECT %s, coalesce((SELECT max(seq) + 1 FROM {self._events} WHERE run_id = %s), 0)"
            " + item.ord - 1, item.event::json, %s "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS item(event, ord) "
            f"WHERE EXISTS (SELECT 1 FROM {self._runs} WHERE run_id = %s)",
            (run_id, run_id, now, texts, run_id),
        )
        payload = f"{self._schema}/{run_id}"
        if len(payload.encode()) > _MAX_PAYLOAD:
            payload = f"{self._schema}/"
        await connection.execute("SELECT pg_notify(%s, %s)", (_CHANNEL, payload))

    async def _delete_events(self, connection: Connection, run_id: str) -> None:
        if self._version >= 3:
            await connection.execute(f"DELETE FROM {self._events} WHERE run_id = %s", (run_id,))

    async def _listen(self) -> None:
        """Start this store's listening connection if it is not running (best effort: without
        it, waiters still look once a second)."""
        if self._closed or (self._listener is not None and not self._listener.done()):
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(self._listen_loop(ready), name="spanflow-pg-listen")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(ready), self._connect_timeout)

    async def _listen_loop(self, ready: asyncio.Future[None]) -> None:
        import psycopg

        prefix = f"{self._schema}/"
        try:
            connection = await psycopg.AsyncConnection.connect(self._dsn, **self._session_options())
            async with connection:
                await connection.execute(f"LISTEN {_CHANNEL}")
                if not ready.done():
                    ready.set_result(None)
                async for notify in connection.notifies():
                    if not notify.payload.startswith(prefix):
                        continue
                    run_id = notify.payload[len(prefix) :]
                    if run_id:
                        self._waiters.wake(run_id)
                    else:
                        self._waiters.wake_all()
        except Exception as err:  # the waiters fall back to their own looks
            if not ready.done():
                ready.set_exception(err)
                ready.exception()
        finally:
            self._waiters.wake_all()

    async def _retrying(self, work: Callable[[], Awaitable[_T]]) -> _T:
        """`work()`, again (pausing 0.1 s, then longer, up to 1 s) while it fails on a lost
        connection of an open pool, for at most `retry_for` seconds; then its `StorageError`."""
        deadline = time.monotonic() + self._retry_for
        pause = 0.1
        while True:
            try:
                return await work()
            except StorageError as error:
                # Only a store that was working retries: a first connection that fails is a
                # setting to fix (or a server not up yet), said at once.
                opened = self._pool is not None
                if not (opened and _connection_lost(error)) or time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        import psycopg

        try:
            pool = self._pool or await self._open_pool()
            async with pool.connection(timeout=self._connect_timeout) as connection:
                yield connection
        except psycopg.Error as err:
            raise self._storage_error(err) from err

    async def _open_pool(self) -> AsyncConnectionPool[Connection]:
        from psycopg_pool import AsyncConnectionPool

        async with self._opening:
            if self._closed:
                raise StorageError(f"{self!r} is closed; create a new store")
            if self._pool is not None:
                return self._pool
            await self._prepare_tables()
            pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                open=False,
                kwargs=self._session_options(),
                check=AsyncConnectionPool.check_connection,
                timeout=self._connect_timeout,
                name="spanflow",
            )
            try:
                await pool.open(wait=True, timeout=self._connect_timeout)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
            return pool

    async def _prepare_tables(self) -> None:
        import psycopg

        try:
            # libpq rounds connect_timeout up to whole seconds (2 at least): enforce ours too.
            async with asyncio.timeout(self._connect_timeout):
                connection = await psycopg.AsyncConnection.connect(
                    self._dsn, **self._session_options()
                )
        except TimeoutError:
            raise StorageError(
                f"cannot connect to PostgreSQL at {self._where}: no answer within "
                f"{self._connect_timeout} s (is the server up and reachable?)"
            ) from None
        except psycopg.OperationalError as err:
            raise StorageError(f"cannot connect to PostgreSQL at {self._where}: {err}") from err
        if self._read_only:
            async with connection:
                await self._check_tables(connection)
            return
        async with connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"spanflow.schema:{self._schema}",)
            )
            found, found_schema = await self._inspect(connection)
            version = installed_version(found, where=self._where_schema())
            if version < SCHEMA_VERSION:
                # An upgrade builds its indexes in this transaction: on a big table, writers
                # wait for it once (CREATE INDEX CONCURRENTLY cannot run in a transaction).
                if not found_schema:
                    await connection.execute(f'CREATE SCHEMA "{self._schema}"')
                for statement in postgres_ddl(self._schema, version):
                    await connection.execute(statement)

    def _session_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"autocommit": True, "connect_timeout": self._libpq_timeout()}
        settings = f"-c statement_timeout={round(self._statement_timeout * 1000)}"
        if self._read_only:
            settings += " -c default_transaction_read_only=on"
        options["options"] = settings
        return options

    async def _check_tables(self, connection: Connection) -> None:
        # A read-only store reads an older schema as it is (it may not upgrade it).
        found, _ = await self._inspect(connection)
        version = installed_version(found, where=self._where_schema())
        self._version = version
        if version == 0:
            raise StorageError(
                f"{self._where_schema()} holds no spanflow tables; it was opened read-only "
                "and left unchanged"
            )

    async def _inspect(self, connection: Connection) -> tuple[FoundSchema, bool]:
        """What spanflow tables there are, and whether the schema exists."""
        meta = f'"{self._schema}".{META_TABLE}'
        cursor = await connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL, "
            "EXISTS (SELECT FROM pg_namespace WHERE nspname = %s)",
            (meta, self._runs, self._schema),
        )
        found = await cursor.fetchone()
        has_meta, has_runs, has_schema = (False, False, False) if found is None else found
        version = None
        if has_meta:
            cursor = await connection.execute(
                f"SELECT value FROM {meta} WHERE key = 'schema_version'"
            )
            row = await cursor.fetchone()
            version = None if row is None else str(row[0])
        return FoundSchema(has_meta, has_runs, version), has_schema

    def _libpq_timeout(self) -> int:
        return max(2, math.ceil(self._connect_timeout))

    def _where_schema(self) -> str:
        return f"PostgreSQL database {self._where} (schema {self._schema})"

    @property
    def _columns(self) -> str:
        return _COLUMNS_BY_VERSION.get(self._version, _COLUMNS)

    def _stored_run(self, row: tuple[Any, ...]) -> StoredRun:
        run_id, workflow_id, resource_id, status, snapshot, created_at, updated_at = row[:7]
        return StoredRun(
            run_id=run_id,
            workflow_id=workflow_id,
            status=status,
            snapshot=decode_snapshot(run_id, snapshot, where=self._where_schema()),
            resource_id=resource_id,
            created_at=created_at,
            updated_at=updated_at,
            owner=row[7],
            lease_until=row[8] or 0.0,
            cancel_requested=bool(row[9]),
        )

    def _storage_error(self, err: Exception) -> StorageError:
        import psycopg
        from psycopg_pool import PoolTimeout

        if isinstance(err, PoolTimeout):
            return StorageError(
                f"no connection to PostgreSQL at {self._where} within {self._connect_timeout} s "
                f"(server down, or all {self._max_size} pooled connections busy): {err}"
            )
        if isinstance(err, psycopg.OperationalError):
            return StorageError(f"lost or failed connection to PostgreSQL at {self._where}: {err}")
        return StorageError(f"PostgreSQL at {self._where} failed: {err}")


def _connection_lost(error: StorageError) -> bool:
    """Whether `error` came from a connection that failed or could not be had (worth a retry),
    not from the statement (a constraint, bad data, a timeout of the statement itself)."""
    import psycopg
    from psycopg_pool import PoolTimeout

    cause = error.__cause__
    if isinstance(cause, PoolTimeout):
        return True
    if isinstance(cause, psycopg.errors.QueryCanceled):
        return False
    return isinstance(cause, psycopg.OperationalError)


def _describe(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, for messages (never its password)."""
    try:
        from psycopg.conninfo import conninfo_to_dict
        from psycopg_pool import AsyncConnectionPool  # noqa: F401 - fail now, not on first use
    except ImportError as err:
        raise StorageError(
            "PostgresStorage needs psycopg 3 and psycopg-pool: pip install 'spanflow[postgres]'"
        ) from err
    try:
        params = conninfo_to_dict(dsn)
    except Exception as err:
        raise ValueError(f"not a valid PostgreSQL connection string: {err}") from None
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or params.get('user') or ''}"
