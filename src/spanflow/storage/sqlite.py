"""`SqliteStorage`: runs in one SQLite file (stdlib `sqlite3`, WAL), safe across processes.

Each store owns one connection, used only from its own single worker thread, so the event
loop never blocks on disk and calls run one at a time in the order they were made. Several
processes may open the same file: WAL lets readers run beside the one writer, `busy_timeout`
makes a writer wait for another instead of failing at once, and `claim_run` is a conditional
``UPDATE`` inside ``BEGIN IMMEDIATE``, so of several processes claiming a run exactly one wins.
``synchronous=NORMAL``: a crashed process loses nothing committed (an OS crash or power loss
may lose the last commits, never corrupt the file). Every write is one transaction.

``read_only=True`` opens the file with SQLite's ``mode=ro``: it must exist, nothing in it is
created or changed (not even the journal mode), and a file without spanflow's tables is a
`StorageError` rather than a database to set up. A spanflow database is in WAL mode, so SQLite
itself, as for any reader of a WAL database, creates ``<file>-shm`` (its shared-memory index)
and an empty ``<file>-wal`` beside it when missing, and leaves them; the database file is not
touched. ``immutable=1`` would avoid them but is unsafe while another process writes.

Event logs live in ``spanflow_events``. A write to a run's log wakes this store's own waiters
at once; a waiter also looks every `POLL_INTERVAL` seconds, which is how it sees what other
processes write (SQLite has no notifications across processes).

Agent memory (`ThreadStore`) lives in ``spanflow_threads`` and ``spanflow_messages``; an
append is one ``BEGIN IMMEDIATE`` transaction, so appenders of one thread (in any process)
take their turn and number their messages on from each other's. A read-only store on a file
older than schema version 5 reads no threads and refuses to write one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

from spanflow.errors import StorageError
from spanflow.storage._checks import (
    check_from_status,
    check_id_filter,
    check_if_status,
    check_lease,
    check_listing,
    check_page,
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
from spanflow.storage._events import (
    POLL_INTERVAL,
    Waiters,
    check_event_range,
    decode_event,
    encode_events,
)
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
    run_row,
    sqlite_ddl,
)
from spanflow.storage._threads import (
    MESSAGE_COLUMNS,
    THREAD_COLUMNS,
    THREADS_VERSION,
    EncodedMessage,
    check_id,
    check_last,
    check_message_page,
    check_owner,
    check_thread,
    check_thread_ids,
    encode_messages,
    message_of_row,
    old_schema_has_no_threads,
    other_resource,
    thread_of_row,
)
from spanflow.storage.base import (
    EXECUTING_STATUSES,
    KEEPS_CANCEL_REQUEST,
    EventEntry,
    Lease,
    LoggedEvent,
    MessagePage,
    RunPage,
    RunStatus,
    StoredMessage,
    StoredRun,
    StoredThread,
    ThreadPage,
)

__all__ = ["SqliteStorage"]

_T = TypeVar("_T")

_COLUMNS = RUN_COLUMNS
_COLUMNS_BY_VERSION = {
    1: _COLUMNS.replace("owner, lease_until, cancel_requested", "NULL, 0, 0"),
    3: _COLUMNS.replace("cancel_requested", "0"),
}
"""The columns as a read-only store reads a database older than version 4 (before version 3:
no lease; before 4: no cancel flag)."""
_COLUMNS_BY_VERSION[2] = _COLUMNS_BY_VERSION[1]
_MARKS = ", ".join("?" * len(RUN_COLUMNS.split(",")))
_KEPT = ", ".join(f"'{status}'" for status in KEEPS_CANCEL_REQUEST)
"""The statuses that keep the cancel flag, as SQL literals (constants, not user input)."""
_INSERT = f"INSERT INTO {RUNS_TABLE} ({_COLUMNS}) VALUES ({_MARKS}) ON CONFLICT (run_id) DO NOTHING"
_UPSERT = (
    f"INSERT INTO {RUNS_TABLE} ({_COLUMNS}) VALUES ({_MARKS}) "
    "ON CONFLICT (run_id) DO UPDATE SET workflow_id = excluded.workflow_id, "
    "resource_id = excluded.resource_id, status = excluded.status, "
    "snapshot = excluded.snapshot, updated_at = excluded.updated_at, "
    "owner = excluded.owner, lease_until = excluded.lease_until, "
    f"cancel_requested = {RUNS_TABLE}.cancel_requested AND excluded.status IN ({_KEPT})"
)
_UPSERT_IF_OWNER = _UPSERT + f" WHERE {RUNS_TABLE}.owner IS ?"
_RETURNING_SAVED = " RETURNING created_at, cancel_requested"
_STALLED = (
    f"SELECT {{columns}} FROM {RUNS_TABLE} WHERE status IN ({{executing}}) "
    "AND {lease_until} <= ? {workflows} ORDER BY updated_at, run_id LIMIT ?"
)
_NEWEST_FIRST = "ORDER BY created_at DESC, run_id DESC"
_OTHER_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name LIMIT 5"
_NEXT_SEQ = (
    f"SELECT coalesce((SELECT max(seq) + 1 FROM {EVENTS_TABLE} WHERE run_id = ?), 0) "
    f"WHERE EXISTS (SELECT 1 FROM {RUNS_TABLE} WHERE run_id = ?)"
)
_INSERT_EVENT = f"INSERT INTO {EVENTS_TABLE} (run_id, seq, event, created_at) VALUES (?, ?, ?, ?)"
_EVENTS_FROM = f"SELECT seq, event FROM {EVENTS_TABLE} WHERE run_id = ? AND seq >= ? ORDER BY seq"
_LAST_EVENT = f"SELECT max(seq) FROM {EVENTS_TABLE} WHERE run_id = ?"
_THREAD = f"SELECT {THREAD_COLUMNS} FROM {THREADS_TABLE} WHERE id = ?"
_THREAD_OWNER = f"SELECT resource_id FROM {THREADS_TABLE} WHERE id = ?"
_INSERT_THREAD = f"INSERT INTO {THREADS_TABLE} ({THREAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
_UPDATE_THREAD = f"UPDATE {THREADS_TABLE} SET title = ?, metadata = ?, updated_at = ? WHERE id = ?"
_TOUCH_THREAD = (
    f"INSERT INTO {THREADS_TABLE} ({THREAD_COLUMNS}) VALUES (?, ?, NULL, '{{}}', ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at "
    f"WHERE {THREADS_TABLE}.resource_id = excluded.resource_id RETURNING 1"
)
"""Create the thread of an append, or mark the stored one updated; no row back: the stored
thread belongs to another resource."""
_NEXT_MESSAGE = f"SELECT coalesce(max(seq) + 1, 0) FROM {MESSAGES_TABLE} WHERE thread_id = ?"
_INSERT_MESSAGE = f"INSERT INTO {MESSAGES_TABLE} ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
_LAST_MESSAGES = (
    f"SELECT {MESSAGE_COLUMNS} FROM (SELECT {MESSAGE_COLUMNS} FROM {MESSAGES_TABLE} "
    "WHERE thread_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq"
)
_MESSAGE_PAGE = (
    f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGES_TABLE} WHERE thread_id = ? "
    "ORDER BY seq LIMIT ? OFFSET ?"
)


class SqliteStorage:
    """A `Storage` in one SQLite file, shared safely by several processes."""

    durable = True
    """Runs outlive the process: the engine checkpoints after every entry."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        event_log: bool = True,
    ) -> None:
        """Create a store for `path`; the file is opened (and created) on first use.

        Args:
            path: The database file, created if missing (its directory must exist);
                ``":memory:"`` gives a private in-memory database.
            busy_timeout: Seconds a write waits for another process's write to finish before
                failing with `StorageError`.
            clock: Returns the current time in epoch seconds; tests pass a fake one.
            read_only: Only read: the file must exist and hold spanflow's tables, and any
                write fails with `StorageError`. The file is left unchanged, though SQLite may
                create its ``-shm`` and ``-wal`` files beside it (see the module docstring).
            event_log: Keep each run's event log (``Workflow.observe`` reads it); ``False``
                saves one insert per event.
        """
        self._path = os.fspath(path)
        if read_only and self._path == ":memory:":
            raise ValueError("a read-only SqliteStorage needs a file, not ':memory:'")
        self._read_only = read_only
        self.event_log = event_log
        self._version = SCHEMA_VERSION
        """The schema version of the file: older only for a read-only store on an old file
        (before 3: no event log, no lease columns; before 4: no cancel flag)."""
        self._waiters = Waiters()
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanflow-sqlite")
        self._connection: sqlite3.Connection | None = None  # touched by the worker thread only
        self._closed = False

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"SqliteStorage({self._path!r})"

    async def __aenter__(self) -> SqliteStorage:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the file and check or create the tables now rather than on first use."""
        await self._call(lambda connection: None)

    async def insert_run(self, run: StoredRun) -> None:
        """Store a new run; raise `RunClaimError` if a run with that id already exists.

        Fills ``run.created_at`` (when 0) and sets ``run.updated_at``.
        """
        check_run(run)
        now = self._clock()
        created_at = run.created_at or now

        def insert(connection: sqlite3.Connection) -> None:
            row = run_row(run, created_at, now)
            if connection.execute(_INSERT, row).rowcount == 0:
                raise duplicate_run(run.run_id)

        await self._call(insert)
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
        upsert = (_UPSERT if if_owner is None else _UPSERT_IF_OWNER) + _RETURNING_SAVED
        values = row if if_owner is None else (*row, if_owner)

        def write(connection: sqlite3.Connection) -> tuple[float, int]:
            # fetchall: the statement is done (and, alone, committed) once its row is read.
            stored = connection.execute(upsert, values).fetchall()
            if not stored:  # the owner condition did not hold
                raise lease_lost(run.run_id, cast(str, if_owner))
            _append(connection, run.run_id, texts, now)
            return cast(tuple[float, int], stored[0])

        def save(connection: sqlite3.Connection) -> tuple[float, int]:
            if not texts:  # one statement (conditional or not): a transaction of its own
                return write(connection)
            with _transaction(connection, "BEGIN IMMEDIATE"):
                return write(connection)

        run.created_at, flag = await self._call(save)
        run.cancel_requested = bool(flag)
        run.updated_at = now
        if texts:
            self._waiters.wake(run.run_id)

    async def append_events(self, run_id: str, events: Sequence[EventEntry]) -> None:
        """Append `events` to the run's log in one transaction (nothing for a run not stored)."""
        if not events or not self.event_log:
            return
        texts = encode_events(run_id, events)
        now = self._clock()

        def append(connection: sqlite3.Connection) -> None:
            with _transaction(connection, "BEGIN IMMEDIATE"):
                _append(connection, run_id, texts, now)

        await self._call(append)
        self._waiters.wake(run_id)

    async def read_events(
        self, run_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[LoggedEvent]:
        """The run's logged events from `offset` on, in order."""
        check_event_range(offset, limit)
        sql = _EVENTS_FROM + (" LIMIT ?" if limit is not None else "")
        values = (run_id, offset) if limit is None else (run_id, offset, limit)

        def read(connection: sqlite3.Connection) -> list[tuple[int, str]]:
            if self._version < 3:
                return []
            return connection.execute(sql, values).fetchall()

        rows = await self._call(read)
        return [decode_event(run_id, seq, text, where=self._path) for seq, text in rows]

    async def count_events(self, run_id: str) -> int:
        """How many events the run's log holds (numbered from 0: the last number plus one)."""

        def count(connection: sqlite3.Connection) -> int:
            if self._version < 3:
                return 0
            found = connection.execute(_LAST_EVENT, (run_id,)).fetchone()
            return 0 if found is None or found[0] is None else int(found[0]) + 1

        return await self._call(count)

    async def wait_for_events(self, run_id: str, *, offset: int, max_wait: float) -> bool:
        """Wait until the run's log holds an event numbered `offset` or later (this process's
        writes wake at once; other processes' are seen within `POLL_INTERVAL` seconds)."""
        check_event_range(offset, None)

        def last(connection: sqlite3.Connection) -> int:
            if self._version < 3:
                return -1
            found = connection.execute(_LAST_EVENT, (run_id,)).fetchone()
            return -1 if found is None or found[0] is None else int(found[0])

        async def ready() -> bool:
            return await self._call(last) >= offset

        return await self._waiters.wait(run_id, max_wait, ready, poll=POLL_INTERVAL)

    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run, or ``None``."""

        def get(connection: sqlite3.Connection) -> tuple[Any, ...] | None:
            return cast(
                tuple[Any, ...] | None, connection.execute(self._select, (run_id,)).fetchone()
            )

        found = await self._call(get)
        return None if found is None else self._stored_run(found)

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
        marks = ", ".join("?" * len(expected))
        executing = ", ".join("?" * len(EXECUTING_STATUSES))
        now = self._clock()

        def claim(connection: sqlite3.Connection) -> tuple[Any, ...]:
            with _transaction(connection, "BEGIN IMMEDIATE"):
                moved = connection.execute(
                    f"UPDATE {RUNS_TABLE} SET status = ?, updated_at = ?, owner = ?, "
                    f"lease_until = ?, cancel_requested = cancel_requested AND ? "
                    f"WHERE run_id = ? AND status IN ({marks}) "
                    f"AND NOT (status IN ({executing}) AND lease_until > ? AND owner IS NOT ?)",
                    (
                        to_status,
                        now,
                        owner,
                        now + lease if lease else 0.0,
                        to_status in KEEPS_CANCEL_REQUEST,
                        run_id,
                        *expected,
                        *EXECUTING_STATUSES,
                        now,
                        owner,
                    ),
                ).rowcount
                found = connection.execute(self._select, (run_id,)).fetchone()
            if found is None:
                raise run_not_found(run_id)
            if not moved:
                if found[3] in expected:
                    raise lease_refused(run_id, found[3], found[7], found[8])
                raise claim_refused(run_id, found[3], expected)
            return cast(tuple[Any, ...], found)

        return self._stored_run(await self._call(claim))

    async def renew_lease(self, run_id: str, *, owner: str, lease: float) -> Lease | None:
        """Extend `owner`'s lease on an executing run; the new lease, or ``None``."""
        check_lease(lease)
        executing = ", ".join("?" * len(EXECUTING_STATUSES))
        until = self._clock() + lease

        def renew(connection: sqlite3.Connection) -> list[tuple[int]]:
            return connection.execute(
                f"UPDATE {RUNS_TABLE} SET lease_until = ? WHERE run_id = ? AND owner = ? "
                f"AND status IN ({executing}) RETURNING cancel_requested",
                (until, run_id, owner, *EXECUTING_STATUSES),
            ).fetchall()

        renewed = await self._call(renew)
        return Lease(until, bool(renewed[0][0])) if renewed else None

    async def request_cancel(self, run_id: str) -> StoredRun | None:
        """Set the ``cancel_requested`` flag of an executing run; the run, or ``None``."""
        executing = ", ".join("?" * len(EXECUTING_STATUSES))
        now = self._clock()

        def request(connection: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if self._version < 4:  # known once connected; only a read-only store stays older
                raise old_schema_cannot_cancel(self._path, self._version)
            return connection.execute(
                f"UPDATE {RUNS_TABLE} SET cancel_requested = 1, updated_at = ? "
                f"WHERE run_id = ? AND status IN ({executing}) RETURNING {_COLUMNS}",
                (now, run_id, *EXECUTING_STATUSES),
            ).fetchall()

        found = await self._call(request)
        return self._stored_run(found[0]) if found else None

    async def stalled_runs(
        self, *, workflow_ids: Collection[str] | None = None, limit: int = 100
    ) -> list[StoredRun]:
        """Executing runs whose lease is not live, oldest ``updated_at`` first."""
        wanted = check_stalled(workflow_ids, limit)
        if wanted is not None and not wanted:
            return []
        workflows = "" if wanted is None else f"AND workflow_id IN ({', '.join('?' * len(wanted))})"
        values = (*EXECUTING_STATUSES, self._clock(), *(wanted or ()), limit)

        def stalled(connection: sqlite3.Connection) -> list[tuple[Any, ...]]:
            sql = _STALLED.format(  # the columns are known once connected
                columns=self._columns,
                executing=", ".join("?" * len(EXECUTING_STATUSES)),
                lease_until="lease_until" if self._version >= 3 else "0",
                workflows=workflows,
            )
            return connection.execute(sql, values).fetchall()

        runs, _ = split_readable(await self._call(stalled), self._stored_run)
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
            workflow_id, status, resource_id, created=created, placeholder="?", match_all="1"
        )

        def page(connection: sqlite3.Connection) -> tuple[int, list[Any]]:
            # One read transaction, so the total and the page agree.
            with _transaction(connection, "BEGIN"):
                total = connection.execute(
                    f"SELECT count(*) FROM {RUNS_TABLE} WHERE {where}", values
                ).fetchone()[0]
                rows = connection.execute(
                    f"SELECT {self._columns} FROM {RUNS_TABLE} WHERE {where} {_NEWEST_FIRST} "
                    "LIMIT ? OFFSET ?",
                    (*values, limit, offset),
                ).fetchall()
            return total, rows

        total, rows = await self._call(page)
        runs, damaged = split_readable(rows, self._stored_run)
        return RunPage(runs=runs, total=total, limit=limit, offset=offset, damaged=damaged)

    async def count_runs(
        self, *, workflow_id: str | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """How many runs each workflow has per status (nonzero counts only).

        Reads only the ``(workflow_id, status, ...)`` index, never a snapshot.
        """
        check_id_filter(workflow_id, argument="workflow_id")
        where, values = run_filter(workflow_id, None, None, placeholder="?", match_all="1")

        def count(connection: sqlite3.Connection) -> list[tuple[str, str, int]]:
            return connection.execute(
                f"SELECT workflow_id, status, count(*) FROM {RUNS_TABLE} WHERE {where} "
                "GROUP BY workflow_id, status",
                values,
            ).fetchall()

        return counts_by_workflow(await self._call(count))

    async def delete_run(
        self, run_id: str, *, if_status: Collection[RunStatus] | None = None
    ) -> bool:
        """Remove a run; ``True`` if it existed. With `if_status`, only in one of those."""
        allowed = check_if_status(if_status)
        if allowed is None:

            def delete(connection: sqlite3.Connection) -> bool:
                with _transaction(connection, "BEGIN IMMEDIATE"):
                    sql = f"DELETE FROM {RUNS_TABLE} WHERE run_id = ?"
                    deleted = connection.execute(sql, (run_id,)).rowcount > 0
                    _delete_events(connection, run_id)
                return deleted

            return await self._call(delete)
        marks = ", ".join("?" * len(allowed))

        def delete_if(connection: sqlite3.Connection) -> bool:
            with _transaction(connection, "BEGIN IMMEDIATE"):
                deleted = connection.execute(
                    f"DELETE FROM {RUNS_TABLE} WHERE run_id = ? AND status IN ({marks})",
                    (run_id, *allowed),
                ).rowcount
                found = connection.execute(
                    f"SELECT status FROM {RUNS_TABLE} WHERE run_id = ?", (run_id,)
                ).fetchone()
                if found is None:
                    _delete_events(connection, run_id)
            if found is not None:
                raise delete_refused(run_id, found[0], allowed)
            return deleted > 0

        return await self._call(delete_if)

    async def save_thread(self, thread: StoredThread) -> None:
        """Create the thread or update its title and metadata (see `ThreadStore.save_thread`)."""
        metadata = check_thread(thread)
        now = self._clock()

        def save(connection: sqlite3.Connection) -> float:
            self._check_threads_writable()
            with _transaction(connection, "BEGIN IMMEDIATE"):
                found = connection.execute(
                    f"SELECT resource_id, created_at FROM {THREADS_TABLE} WHERE id = ?",
                    (thread.thread_id,),
                ).fetchone()
                if found is None:
                    created = thread.created_at or now
                    connection.execute(
                        _INSERT_THREAD,
                        (
                            thread.thread_id,
                            thread.resource_id,
                            thread.title,
                            metadata,
                            created,
                            now,
                        ),
                    )
                    return created
                if found[0] != thread.resource_id:
                    raise other_resource(thread.thread_id, thread.resource_id)
                connection.execute(_UPDATE_THREAD, (thread.title, metadata, now, thread.thread_id))
                return cast(float, found[1])

        thread.created_at = await self._call(save)
        thread.updated_at = now

    async def get_thread(self, thread_id: str, *, resource_id: str) -> StoredThread | None:
        """The resource's stored thread, or ``None`` (see `ThreadStore.get_thread`)."""
        check_thread_ids(thread_id, resource_id)

        def get(connection: sqlite3.Connection) -> tuple[Any, ...] | None:
            if self._version < THREADS_VERSION:
                return None
            return cast(
                tuple[Any, ...] | None, connection.execute(_THREAD, (thread_id,)).fetchone()
            )

        # One row read: whose it is and what it holds come from the same statement.
        found = await self._call(get)
        if found is None:
            return None
        check_owner(thread_id, found[1], resource_id)
        return thread_of_row(found, where=self._path)

    async def list_threads(
        self, *, resource_id: str, limit: int = 20, offset: int = 0
    ) -> ThreadPage:
        """The resource's threads, most recently updated first (the ``by_resource`` index)."""
        check_id(resource_id, argument="resource_id")
        check_page(limit, offset)

        def page(connection: sqlite3.Connection) -> tuple[int, list[Any]]:
            if self._version < THREADS_VERSION:
                return 0, []
            with _transaction(connection, "BEGIN"):
                total = connection.execute(
                    f"SELECT count(*) FROM {THREADS_TABLE} WHERE resource_id = ?", (resource_id,)
                ).fetchone()[0]
                rows = connection.execute(
                    f"SELECT {THREAD_COLUMNS} FROM {THREADS_TABLE} WHERE resource_id = ? "
                    "ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
                    (resource_id, limit, offset),
                ).fetchall()
            return total, rows

        total, rows = await self._call(page)
        threads = [thread_of_row(row, where=self._path) for row in rows]
        return ThreadPage(threads=threads, total=total, limit=limit, offset=offset)

    async def delete_thread(self, thread_id: str, *, resource_id: str) -> bool:
        """Remove the resource's thread and its messages, in one transaction; ``True`` if it
        existed (see `ThreadStore.delete_thread`)."""
        check_thread_ids(thread_id, resource_id)

        def delete(connection: sqlite3.Connection) -> bool:
            self._check_threads_writable()
            # The write lock is held from BEGIN IMMEDIATE on: no one else's thread of that id
            # can appear or go between the delete and the look that explains a miss.
            with _transaction(connection, "BEGIN IMMEDIATE"):
                sql = f"DELETE FROM {THREADS_TABLE} WHERE id = ? AND resource_id = ?"
                if connection.execute(sql, (thread_id, resource_id)).rowcount == 0:
                    # Not the resource's: another's (refused, not named), or none at all.
                    if connection.execute(_THREAD_OWNER, (thread_id,)).fetchone() is not None:
                        raise other_resource(thread_id, resource_id)
                    return False
                sql = f"DELETE FROM {MESSAGES_TABLE} WHERE thread_id = ?"
                connection.execute(sql, (thread_id,))
                return True

        return await self._call(delete)

    async def append_messages(
        self, thread_id: str, *, resource_id: str, messages: Sequence[dict[str, Any]]
    ) -> list[StoredMessage]:
        """Append `messages` to the thread in one transaction, all or none (see
        `ThreadStore.append_messages`)."""
        encoded = encode_messages(thread_id, resource_id, messages)
        if not encoded:
            return []
        now = self._clock()

        def append(connection: sqlite3.Connection) -> list[tuple[Any, ...]]:
            self._check_threads_writable()
            with _transaction(connection, "BEGIN IMMEDIATE"):
                return _append_messages(connection, thread_id, resource_id, encoded, now)

        rows = await self._call(append)
        return [message_of_row(row, where=self._path) for row in rows]

    async def last_messages(
        self, thread_id: str, *, resource_id: str | None = None, limit: int
    ) -> list[StoredMessage]:
        """The thread's last `limit` messages, in thread order (a backward walk of the key)."""
        check_message_page(thread_id, resource_id, 1, 0)
        check_last(limit)

        def last(connection: sqlite3.Connection) -> list[Any]:
            if self._version < THREADS_VERSION:
                return []
            with _transaction(connection, "BEGIN"):
                self._check_owner(connection, thread_id, resource_id)
                return connection.execute(_LAST_MESSAGES, (thread_id, limit)).fetchall()

        rows = await self._call(last)
        return [message_of_row(row, where=self._path) for row in rows]

    async def list_messages(
        self,
        thread_id: str,
        *,
        resource_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> MessagePage:
        """A page of the thread's messages, in thread order."""
        check_message_page(thread_id, resource_id, limit, offset)

        def page(connection: sqlite3.Connection) -> tuple[int, list[Any]]:
            if self._version < THREADS_VERSION:
                return 0, []
            with _transaction(connection, "BEGIN"):
                self._check_owner(connection, thread_id, resource_id)
                total = connection.execute(
                    f"SELECT count(*) FROM {MESSAGES_TABLE} WHERE thread_id = ?", (thread_id,)
                ).fetchone()[0]
                rows = connection.execute(_MESSAGE_PAGE, (thread_id, limit, offset)).fetchall()
            return total, rows

        total, rows = await self._call(page)
        found = [message_of_row(row, where=self._path) for row in rows]
        return MessagePage(messages=found, total=total, limit=limit, offset=offset)

    async def delete_messages(self, *, resource_id: str) -> int:
        """Remove every message of the resource's threads; how many there were."""
        check_id(resource_id, argument="resource_id")

        def delete(connection: sqlite3.Connection) -> int:
            self._check_threads_writable()
            sql = f"DELETE FROM {MESSAGES_TABLE} WHERE resource_id = ?"
            return connection.execute(sql, (resource_id,)).rowcount

        return await self._call(delete)

    def _check_threads_writable(self) -> None:
        # Known once connected; only a read-only store stays on an older version.
        if self._version < THREADS_VERSION:
            raise old_schema_has_no_threads(self._path, self._version)

    @staticmethod
    def _check_owner(
        connection: sqlite3.Connection, thread_id: str, resource_id: str | None
    ) -> None:
        if resource_id is None:
            return
        found = connection.execute(_THREAD_OWNER, (thread_id,)).fetchone()
        if found is not None and found[0] != resource_id:
            raise other_resource(thread_id, resource_id)

    async def close(self) -> None:
        """Close the connection once calls already made have finished. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=False)

    async def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise StorageError(f"{self!r} is closed; create a new store")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, work)

    def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        # On the worker thread.
        connection = self._connection or self._connect()
        try:
            return work(connection)
        except sqlite3.Error as err:
            raise self._storage_error(err) from err

    def _connect(self) -> sqlite3.Connection:
        if self._read_only:
            quoted = urllib.parse.quote(os.path.abspath(self._path))
            target, uri = f"file:{quoted}?mode=ro", True
        else:
            target, uri = self._path, False
        try:
            connection = sqlite3.connect(
                target,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN / COMMIT ourselves
                check_same_thread=False,  # created here, used only on this worker thread
                uri=uri,
            )
        except sqlite3.Error as err:
            raise self._storage_error(err) from err
        try:
            connection.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout * 1000)}")
            if self._read_only:
                self._check_tables(connection)
            else:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = NORMAL")
                self._prepare_tables(connection)
        except BaseException as err:
            connection.close()
            if isinstance(err, sqlite3.Error):
                raise self._storage_error(err) from err
            raise
        self._connection = connection
        return connection

    def _prepare_tables(self, connection: sqlite3.Connection) -> None:
        # Look first without a write lock (the usual case: all is there), and create or
        # upgrade the tables under BEGIN IMMEDIATE after looking again, so two processes
        # opening a new or older file together do not both do it.
        if installed_version(_inspect(connection), where=self._path) == SCHEMA_VERSION:
            return
        with _transaction(connection, "BEGIN IMMEDIATE"):
            version = installed_version(_inspect(connection), where=self._path)
            if version < SCHEMA_VERSION:
                for statement in sqlite_ddl(version):
                    connection.execute(statement)

    def _check_tables(self, connection: sqlite3.Connection) -> None:
        # A read-only store reads an older schema as it is (it may not upgrade it).
        version = installed_version(_inspect(connection), where=self._path)
        self._version = version
        if version == 0:
            others = [name for (name,) in connection.execute(_OTHER_TABLES)]
            holds = f"its tables: {', '.join(others)}" if others else "it has no tables"
            raise StorageError(
                f"{self._path} is not a spanflow database (no {RUNS_TABLE} table; {holds}); "
                "it was opened read-only and left unchanged"
            )

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def _columns(self) -> str:
        return _COLUMNS_BY_VERSION.get(self._version, _COLUMNS)

    @property
    def _select(self) -> str:
        return f"SELECT {self._columns} FROM {RUNS_TABLE} WHERE run_id = ?"

    def _stored_run(self, row: tuple[Any, ...]) -> StoredRun:
        run_id, workflow_id, resource_id, status, snapshot, created_at, updated_at = row[:7]
        return StoredRun(
            run_id=run_id,
            workflow_id=workflow_id,
            status=status,
            snapshot=decode_snapshot(run_id, snapshot, where=self._path),
            resource_id=resource_id,
            created_at=created_at,
            updated_at=updated_at,
            owner=row[7],
            lease_until=row[8] or 0.0,
            cancel_requested=bool(row[9]),
        )

    def _storage_error(self, err: sqlite3.Error) -> StorageError:
        code = getattr(err, "sqlite_errorname", "")
        if code in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            return StorageError(f"{self._path} is not a spanflow database: {err}")
        if code == "SQLITE_READONLY" and self._read_only:
            return StorageError(f"SQLite database {self._path} was opened read-only: {err}")
        if code == "SQLITE_CANTOPEN":
            return StorageError(
                f"cannot open SQLite database {self._path}: {err} "
                "(does its directory exist, and may this process write there?)"
            )
        if code.startswith("SQLITE_BUSY"):
            return StorageError(
                f"SQLite database {self._path} stayed locked by another writer for "
                f"{self._busy_timeout} s ({err}); retry, or raise busy_timeout"
            )
        return StorageError(f"SQLite database {self._path}: {err}")


def _append(connection: sqlite3.Connection, run_id: str, texts: list[str], now: float) -> None:
    # Inside the caller's transaction: the events numbered on from the log's last one, for a
    # run that is stored (nothing otherwise).
    if not texts:
        return
    found = connection.execute(_NEXT_SEQ, (run_id, run_id)).fetchone()
    if found is None:
        return
    first = found[0]
    rows = [(run_id, first + n, text, now) for n, text in enumerate(texts)]
    connection.executemany(_INSERT_EVENT, rows)


def _append_messages(
    connection: sqlite3.Connection,
    thread_id: str,
    resource_id: str,
    encoded: list[EncodedMessage],
    now: float,
) -> list[tuple[Any, ...]]:
    # Inside the caller's write transaction: the thread created or marked updated (refused if
    # another resource owns it), then the messages numbered on from its last one.
    if not connection.execute(_TOUCH_THREAD, (thread_id, resource_id, now, now)).fetchall():
        raise other_resource(thread_id, resource_id)
    first = connection.execute(_NEXT_MESSAGE, (thread_id,)).fetchone()[0]
    rows = [
        (thread_id, first + n, resource_id, role, text, now)
        for n, (role, text) in enumerate(encoded)
    ]
    connection.executemany(_INSERT_MESSAGE, rows)
    return rows


def _delete_events(connection: sqlite3.Connection, run_id: str) -> None:
    connection.execute(f"DELETE FROM {EVENTS_TABLE} WHERE run_id = ?", (run_id,))


def _inspect(connection: sqlite3.Connection) -> FoundSchema:
    tables = {
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
            (META_TABLE, RUNS_TABLE),
        )
    }
    version = None
    if META_TABLE in tables:
        found = connection.execute(
            f"SELECT value FROM {META_TABLE} WHERE key = 'schema_version'"
        ).fetchone()
        version = None if found is None else str(found[0])
    return FoundSchema(META_TABLE in tables, RUNS_TABLE in tables, version)


@contextmanager
def _transaction(connection: sqlite3.Connection, begin: str) -> Iterator[None]:
    connection.execute(begin)
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # SQLite may already have rolled back by itself
            connection.execute("ROLLBACK")
        raise
