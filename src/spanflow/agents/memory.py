"""`Memory`: an agent's conversations, kept in the same stores as runs, per resource and thread.

A **thread** is one conversation; a **resource** is whoever owns it (a user, a tenant). A thread
belongs to the resource that started it: naming it with another resource is refused, so one
user can never read, extend or delete another's conversation (every method that names a thread
takes its resource too). Given to an agent
(``agent.generate(..., memory={"thread": t, "resource": r})``), the agent calls `recall` before
the call (the thread's last messages go in front of the new ones) and `remember` with the
call's new messages after it, all of them in one transaction: a call that fails appends nothing,
and a call that succeeds never leaves half its messages behind.

Messages are kept as their chat-shaped JSON (``Message.to_dict()``) and come back as the same
`Message` objects: user, assistant (with its tool calls) and tool results alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spanflow.agents.messages import Message, MessagesInput, coerce_messages, message_from_dict
from spanflow.errors import InvalidInputError, StorageError
from spanflow.storage import StoredMessage, StoredThread, ThreadStore

__all__ = ["Memory", "Thread"]


@dataclass(frozen=True, slots=True)
class Thread:
    """One conversation of a memory."""

    id: str
    resource: str
    """Who the thread belongs to."""
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    """Epoch seconds (UTC) of its first message."""
    updated_at: float = 0.0
    """Epoch seconds (UTC) of its last write."""


class Memory:
    """Threads and their messages, per resource, in a store (memory, SQLite or PostgreSQL).

    Example:
        ```python
        memory = Memory(SqliteStorage("app.db"), last_messages=10)
        await memory.remember(thread="t1", resource="alice", messages=["Hi, I'm Alice"])
        history = await memory.recall(thread="t1", resource="alice")
        ```
    """

    def __init__(self, storage: ThreadStore, *, last_messages: int = 20) -> None:
        """Keep conversations in `storage`.

        Args:
            storage: A store that keeps threads (`MemoryStorage`, `SqliteStorage`,
                `PostgresStorage`; often the registry's own store, beside its runs).
            last_messages: How many of a thread's last messages `recall` gives (0: none).

        Raises:
            TypeError: `storage` keeps no threads, or `last_messages` is not an int.
            ValueError: `last_messages` is negative.
        """
        if not isinstance(storage, ThreadStore):
            raise TypeError(
                "Memory needs a store that keeps threads (MemoryStorage, SqliteStorage or "
                f"PostgresStorage); got {type(storage).__name__}"
            )
        self._storage = storage
        self._last = _check_count(last_messages, argument="last_messages")

    @property
    def storage(self) -> ThreadStore:
        """Where the threads are kept."""
        return self._storage

    @property
    def last_messages(self) -> int:
        """How many of a thread's last messages `recall` gives."""
        return self._last

    def __repr__(self) -> str:
        return f"Memory({self._storage!r}, last_messages={self._last})"

    async def recall(
        self, *, thread: str, resource: str, last_messages: int | None = None
    ) -> list[Message]:
        """The thread's last messages (`last_messages` of them, the memory's own number by
        default), oldest first; none for a thread not stored yet.

        Raises:
            InvalidInputError: `thread` belongs to another resource, or an id is empty.
            StorageError: the store failed, or a stored message cannot be read.
        """
        count = self._last if last_messages is None else _check_count(last_messages)
        _check_ids(thread=thread, resource=resource)
        stored = await self._storage.last_messages(thread, resource_id=resource, limit=count)
        return [_message_of(message) for message in stored]

    async def remember(self, *, thread: str, resource: str, messages: MessagesInput) -> None:
        """Append `messages` (message objects, chat dicts or strings, which are user messages)
        to the thread, in one transaction: all of them are kept, or none. The thread is
        created by its first messages.

        Raises:
            InvalidInputError: `thread` belongs to another resource, an id is empty, or a
                message is not valid (nothing is written).
            StorageError: the store failed (nothing is written).
        """
        _check_ids(thread=thread, resource=resource)
        wire = [message.to_dict() for message in coerce_messages(messages)]
        await self._storage.append_messages(thread, resource_id=resource, messages=wire)

    async def list_threads(
        self, *, resource: str, limit: int = 20, offset: int = 0
    ) -> list[Thread]:
        """The resource's threads, most recently updated first (`limit` from `offset` on)."""
        _check_ids(resource=resource)
        page = await self._storage.list_threads(resource_id=resource, limit=limit, offset=offset)
        return [_thread_of(stored) for stored in page.threads]

    async def get_thread(self, thread: str, *, resource: str) -> Thread | None:
        """The resource's thread, or ``None`` if it is not stored.

        Raises:
            InvalidInputError: `thread` belongs to another resource, or an id is empty.
        """
        _check_ids(thread=thread, resource=resource)
        stored = await self._storage.get_thread(thread, resource_id=resource)
        return None if stored is None else _thread_of(stored)

    async def list_messages(
        self, *, thread: str, resource: str, limit: int = 20, offset: int = 0
    ) -> list[Message]:
        """A page of the thread's messages, oldest first (`offset` counts from its first).

        Raises:
            InvalidInputError: `thread` belongs to another resource.
            ValueError: `limit` (1 to 1000) or `offset` (0 or more) is out of range.
        """
        _check_ids(thread=thread, resource=resource)
        page = await self._storage.list_messages(
            thread, resource_id=resource, limit=limit, offset=offset
        )
        return [_message_of(message) for message in page.messages]

    async def delete_thread(self, thread: str, *, resource: str) -> bool:
        """Remove the resource's thread and its messages; ``True`` if it existed.

        Raises:
            InvalidInputError: `thread` belongs to another resource (nothing is removed), or
                an id is empty.
        """
        _check_ids(thread=thread, resource=resource)
        return await self._storage.delete_thread(thread, resource_id=resource)

    async def delete_messages(self, *, resource: str) -> int:
        """Remove every message of the resource's threads (the threads stay, empty; remove
        them with `delete_thread`); how many messages there were."""
        _check_ids(resource=resource)
        return await self._storage.delete_messages(resource_id=resource)


def _check_count(value: object, *, argument: str = "last_messages") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int; got {value!r}")
    if value < 0:
        raise ValueError(f"{argument} must be 0 or more; got {value}")
    return value


def _check_ids(*, resource: object, thread: object = "-") -> None:
    # Said here with the Memory's own argument names, not the store's `resource_id`.
    for argument, value in (("thread", thread), ("resource", resource)):
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{argument} must be a non-empty string; got {value!r}")


def _message_of(stored: StoredMessage) -> Message:
    """A stored message as the `Message` it was remembered as."""
    try:
        return message_from_dict(stored.content, what="stored message")
    except InvalidInputError as err:
        raise StorageError(
            f"message {stored.seq} of thread {stored.thread_id!r} is not a message this "
            f"spanflow can read ({err}); delete the thread, or restore it from a backup"
        ) from err


def _thread_of(stored: StoredThread) -> Thread:
    return Thread(
        id=stored.thread_id,
        resource=stored.resource_id,
        title=stored.title,
        metadata=stored.metadata,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )
