"""`PostgresStorage`'s agent memory (`ThreadStore`): threads and messages in PostgreSQL.

A mixin of `PostgresStorage`, apart only to keep each module one reader's read: it uses the
store's pool, retries and schema version. An append is one transaction whose first statement
creates or locks the thread's row, so appenders of one thread take their turn and number their
messages on from each other's; it is not retried on a lost connection (a retried append could
store its messages twice), the reads are. A read-only store on a schema older than version 5
reads no threads and refuses to write one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from spanflow.storage._checks import check_page
from spanflow.storage._threads import (
    MESSAGE_COLUMNS,
    THREAD_COLUMNS,
    THREADS_VERSION,
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
from spanflow.storage.base import MessagePage, StoredMessage, StoredThread, ThreadPage

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.AsyncConnection[tuple[Any, ...]]

__all__ = ["PostgresThreads"]

_T = TypeVar("_T")

_THREAD_COLUMNS = THREAD_COLUMNS.replace("metadata", "metadata::text")
_MESSAGE_COLUMNS = MESSAGE_COLUMNS.replace("content", "content::text")


class PostgresThreads:
    """The `ThreadStore` methods of `PostgresStorage`."""

    _clock: Callable[[], float]
    _version: int
    """The schema version of the tables, known once connected."""
    _threads: str
    _messages: str
    """The qualified names of the thread and message tables."""

    if TYPE_CHECKING:

        def _connection(self) -> AbstractAsyncContextManager[Connection]: ...

        async def _retrying(self, work: Callable[[], Awaitable[_T]]) -> _T: ...

        def _where_schema(self) -> str: ...

    async def save_thread(self, thread: StoredThread) -> None:
        """Create the thread or update its title and metadata (see `ThreadStore.save_thread`)."""
        metadata = check_thread(thread)
        now = self._clock()
        values = (thread.thread_id, thread.resource_id, thread.title, metadata)
        async with self._connection() as connection, connection.transaction():
            self._check_threads_writable()
            # Insert, or update a thread of the same resource; no row back: another's.
            cursor = await connection.execute(
                f"INSERT INTO {self._threads} ({THREAD_COLUMNS}) "
                "VALUES (%s, %s, %s, %s::json, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "title = excluded.title, metadata = excluded.metadata, "
                f"updated_at = excluded.updated_at WHERE {self._threads}.resource_id = "
                "excluded.resource_id RETURNING created_at",
                (*values, thread.created_at or now, now),
            )
            stored = await cursor.fetchone()
            if stored is None:
                raise other_resource(thread.thread_id, thread.resource_id)
        thread.created_at, thread.updated_at = float(stored[0]), now

    async def get_thread(self, thread_id: str, *, resource_id: str) -> StoredThread | None:
        """The resource's stored thread, or ``None`` (see `ThreadStore.get_thread`)."""
        check_thread_ids(thread_id, resource_id)

        async def get() -> tuple[Any, ...] | None:
            async with self._connection() as connection:
                if self._version < THREADS_VERSION:
                    return None
                cursor = await connection.execute(
                    f"SELECT {_THREAD_COLUMNS} FROM {self._threads} WHERE id = %s", (thread_id,)
                )
                return await cursor.fetchone()

        # One row read: whose it is and what it holds come from the same statement.
        row = await self._retrying(get)
        if row is None:
            return None
        check_owner(thread_id, row[1], resource_id)
        return thread_of_row(row, where=self._where_schema())

    async def list_threads(
        self, *, resource_id: str, limit: int = 20, offset: int = 0
    ) -> ThreadPage:
        """The resource's threads, most recently updated first (the ``by_resource`` index)."""
        check_id(resource_id, argument="resource_id")
        check_page(limit, offset)

        async def page() -> tuple[int, list[Any]]:
            async with self._connection() as connection, connection.transaction():
                if self._version < THREADS_VERSION:
                    return 0, []
                await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor = await connection.execute(
                    f"SELECT count(*) FROM {self._threads} WHERE resource_id = %s", (resource_id,)
                )
                counted = await cursor.fetchone()
                cursor = await connection.execute(
                    f"SELECT {_THREAD_COLUMNS} FROM {self._threads} WHERE resource_id = %s "
                    "ORDER BY updated_at DESC, id DESC LIMIT %s OFFSET %s",
                    (resource_id, limit, offset),
                )
                return (0 if counted is None else int(counted[0])), await cursor.fetchall()

        total, rows = await self._retrying(page)
        threads = [thread_of_row(row, where=self._where_schema()) for row in rows]
        return ThreadPage(threads=threads, total=total, limit=limit, offset=offset)

    async def delete_thread(self, thread_id: str, *, resource_id: str) -> bool:
        """Remove the resource's thread and its messages, in one transaction; ``True`` if it
        existed (see `ThreadStore.delete_thread`)."""
        check_thread_ids(thread_id, resource_id)
        async with self._connection() as connection, connection.transaction():
            self._check_threads_writable()
            # The thread's row goes first, and only if it is the resource's: its lock then
            # waits for an append under way, whose messages the next statement removes too.
            cursor = await connection.execute(
                f"DELETE FROM {self._threads} WHERE id = %s AND resource_id = %s RETURNING 1",
                (thread_id, resource_id),
            )
            if await cursor.fetchone() is None:
                # Not the resource's: another's (refused, not named), or none at all.
                cursor = await connection.execute(
                    f"SELECT 1 FROM {self._threads} WHERE id = %s AND resource_id <> %s",
                    (thread_id, resource_id),
                )
                if await cursor.fetchone() is not None:
                    raise other_resource(thread_id, resource_id)
                return False
            await connection.execute(
                f"DELETE FROM {self._messages} WHERE thread_id = %s", (thread_id,)
            )
            return True

    async def append_messages(
        self, thread_id: str, *, resource_id: str, messages: Sequence[dict[str, Any]]
    ) -> list[StoredMessage]:
        """Append `messages` to the thread in one transaction, all or none (see
        `ThreadStore.append_messages`)."""
        encoded = encode_messages(thread_id, resource_id, messages)
        if not encoded:
            return []
        now = self._clock()
        async with self._connection() as connection, connection.transaction():
            self._check_threads_writable()
            # Creates the thread, or locks its row until commit: appenders take turns.
            cursor = await connection.execute(
                f"INSERT INTO {self._threads} ({THREAD_COLUMNS}) "
                "VALUES (%s, %s, NULL, '{}'::json, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at "
                f"WHERE {self._threads}.resource_id = excluded.resource_id RETURNING 1",
                (thread_id, resource_id, now, now),
            )
            if await cursor.fetchone() is None:
                raise other_resource(thread_id, resource_id)
            cursor = await connection.execute(
                f"SELECT coalesce(max(seq) + 1, 0) FROM {self._messages} WHERE thread_id = %s",
                (thread_id,),
            )
            found = await cursor.fetchone()
            first = 0 if found is None else int(found[0])
            await connection.execute(
                f"INSERT INTO {self._messages} ({MESSAGE_COLUMNS}) "
                "SELECT %s, %s + item.ord - 1, %s, item.role, item.content::json, %s "
                "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS item(role, content, ord)",
                (
                    thread_id,
                    first,
                    resource_id,
                    now,
                    [role for role, _ in encoded],
                    [text for _, text in encoded],
                ),
            )
        rows = [
            (thread_id, first + n, resource_id, role, text, now)
            for n, (role, text) in enumerate(encoded)
        ]
        return [message_of_row(row, where=self._where_schema()) for row in rows]

    async def last_messages(
        self, thread_id: str, *, resource_id: str | None = None, limit: int
    ) -> list[StoredMessage]:
        """The thread's last `limit` messages, in thread order (a backward walk of the key)."""
        check_message_page(thread_id, resource_id, 1, 0)
        check_last(limit)

        async def last() -> list[Any]:
            async with self._connection() as connection, connection.transaction():
                if self._version < THREADS_VERSION:
                    return []
                await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                await self._check_owner(connection, thread_id, resource_id)
                cursor = await connection.execute(
                    f"SELECT * FROM (SELECT {_MESSAGE_COLUMNS} FROM {self._messages} "
                    "WHERE thread_id = %s ORDER BY seq DESC LIMIT %s) AS last ORDER BY seq",
                    (thread_id, limit),
                )
                return await cursor.fetchall()

        rows = await self._retrying(last)
        return [message_of_row(row, where=self._where_schema()) for row in rows]

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

        async def page() -> tuple[int, list[Any]]:
            async with self._connection() as connection, connection.transaction():
                if self._version < THREADS_VERSION:
                    return 0, []
                await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                await self._check_owner(connection, thread_id, resource_id)
                cursor = await connection.execute(
                    f"SELECT count(*) FROM {self._messages} WHERE thread_id = %s", (thread_id,)
                )
                counted = await cursor.fetchone()
                cursor = await connection.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM {self._messages} WHERE thread_id = %s "
                    "ORDER BY seq LIMIT %s OFFSET %s",
                    (thread_id, limit, offset),
                )
                return (0 if counted is None else int(counted[0])), await cursor.fetchall()

        total, rows = await self._retrying(page)
        found = [message_of_row(row, where=self._where_schema()) for row in rows]
        return MessagePage(messages=found, total=total, limit=limit, offset=offset)

    async def delete_messages(self, *, resource_id: str) -> int:
        """Remove every message of the resource's threads; how many there were."""
        check_id(resource_id, argument="resource_id")
        async with self._connection() as connection:
            self._check_threads_writable()
            cursor = await connection.execute(
                f"DELETE FROM {self._messages} WHERE resource_id = %s", (resource_id,)
            )
            return cursor.rowcount

    def _check_threads_writable(self) -> None:
        # Known once connected; only a read-only store stays on an older version.
        if self._version < THREADS_VERSION:
            raise old_schema_has_no_threads(self._where_schema(), self._version)

    async def _check_owner(
        self, connection: Connection, thread_id: str, resource_id: str | None
    ) -> None:
        if resource_id is None:
            return
        cursor = await connection.execute(
            f"SELECT resource_id FROM {self._threads} WHERE id = %s", (thread_id,)
        )
        found = await cursor.fetchone()
        if found is not None and found[0] != resource_id:
            raise other_resource(thread_id, resource_id)
