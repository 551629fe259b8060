"""What every store shares for agent memory (`ThreadStore`): argument checks, the text form of
thread metadata and messages, the errors, and rows made into `StoredThread` / `StoredMessage`.

Messages and metadata are encoded here, before a store opens a transaction, with the same
compact ASCII-only JSON as snapshots: a message that is not JSON data is refused before
anything is written, and the in-memory store keeps exactly what an SQL store would read back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from spanflow.errors import InvalidInputError, StorageError
from spanflow.storage._checks import check_page
from spanflow.storage.base import StoredMessage, StoredThread

__all__ = [
    "MESSAGE_COLUMNS",
    "THREADS_VERSION",
    "THREAD_COLUMNS",
    "EncodedMessage",
    "check_id",
    "check_last",
    "check_message_page",
    "check_owner",
    "check_thread",
    "check_thread_ids",
    "decode_json",
    "encode_messages",
    "message_of_row",
    "old_schema_has_no_threads",
    "other_resource",
    "thread_of_row",
]

THREADS_VERSION = 5
"""The schema version that added the thread and message tables."""

THREAD_COLUMNS = "id, resource_id, title, metadata, created_at, updated_at"
"""The columns of ``spanflow_threads`` in the order `thread_of_row` reads them."""
MESSAGE_COLUMNS = "thread_id, seq, resource_id, role, content, created_at"
"""The columns of ``spanflow_messages`` in the order `message_of_row` reads them."""

EncodedMessage = tuple[str, str]
"""A message ready to store: its role and its JSON text."""

_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()


def check_id(value: object, *, argument: str) -> str:
    """Reject an id that is not a non-empty string (every store would store it differently)."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{argument} must be a non-empty string; got {value!r}")
    return value


def check_thread_ids(thread_id: object, resource_id: object) -> None:
    """Check the ids of `get_thread` and `delete_thread`: the thread and who asks for it."""
    check_id(thread_id, argument="thread_id")
    check_id(resource_id, argument="resource_id")


def check_owner(thread_id: str, owner: str, asked: str) -> None:
    """Refuse a stored thread of `owner` to the resource `asked` if it is another, with
    `other_resource`: a thread id alone never reads or removes another resource's thread."""
    if owner != asked:
        raise other_resource(thread_id, asked)


def check_thread(thread: StoredThread) -> str:
    """Check a thread before `save_thread` and return its metadata as JSON text."""
    check_id(thread.thread_id, argument="thread.thread_id")
    check_id(thread.resource_id, argument=f"thread.resource_id of thread {thread.thread_id!r}")
    if thread.title is not None and not isinstance(thread.title, str):
        raise InvalidInputError(
            f"thread.title of thread {thread.thread_id!r} must be a string or None; "
            f"got {thread.title!r}"
        )
    if not isinstance(thread.metadata, dict):
        raise InvalidInputError(
            f"thread.metadata of thread {thread.thread_id!r} must be a dict; "
            f"got {type(thread.metadata).__name__}"
        )
    try:
        return _ENCODER.encode(thread.metadata)
    except (TypeError, ValueError, RecursionError) as err:
        raise InvalidInputError(
            f"cannot store thread {thread.thread_id!r}: its metadata is not JSON data ({err})"
        ) from err


def encode_messages(thread_id: str, resource_id: str, messages: object) -> list[EncodedMessage]:
    """Check the arguments of `append_messages` and encode every message, so that a message
    that cannot be stored is refused before the first one is written."""
    check_id(thread_id, argument="thread_id")
    check_id(resource_id, argument="resource_id")
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise InvalidInputError(
            f"messages must be a list of message dicts; got {type(messages).__name__}"
        )
    encoded: list[EncodedMessage] = []
    for index, message in enumerate(messages):
        what = f"messages[{index}] for thread {thread_id!r}"
        if not isinstance(message, Mapping):
            raise InvalidInputError(f"{what} must be a dict; got {type(message).__name__}")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidInputError(f"{what} needs a 'role' string; got {role!r}")
        try:
            text = _ENCODER.encode(dict(message))
        except (TypeError, ValueError, RecursionError) as err:
            raise InvalidInputError(
                f"{what} is not JSON data ({err}); nothing was stored: a message may hold only "
                "dicts with str keys, lists, str, int, finite float, bool and None"
            ) from err
        encoded.append((role, text))
    return encoded


def check_last(limit: object) -> int:
    """Check the `limit` of `last_messages`: an int, 0 or more."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int; got {limit!r}")
    if limit < 0:
        raise ValueError(f"limit must be 0 or more; got {limit}")
    return limit


def check_message_page(thread_id: object, resource_id: object, limit: Any, offset: Any) -> None:
    """Check the arguments of `list_messages` (and the ids of `last_messages`)."""
    check_id(thread_id, argument="thread_id")
    if resource_id is not None:
        check_id(resource_id, argument="resource_id")
    check_page(limit, offset)


def other_resource(thread_id: str, asked: str) -> InvalidInputError:
    """The error for a thread named with another resource than the one it belongs to (which
    it does not name: one resource learns nothing of another's)."""
    return InvalidInputError(
        f"thread {thread_id!r} belongs to another resource than {asked!r}: a thread id is "
        "scoped to the resource that created it; use a new thread id for this resource"
    )


def old_schema_has_no_threads(where: str, version: int) -> StorageError:
    """The error for a write of threads or messages to tables a read-only store found too old
    to hold them (it may not upgrade them)."""
    return StorageError(
        f"{where} is at spanflow schema version {version}, which has no thread or message "
        "tables, and this store was opened read-only so it cannot upgrade it: open it "
        "writable once (any spanflow process that writes upgrades it) to keep agent memory"
    )


def decode_json(text: str, *, what: str, where: str) -> dict[str, Any]:
    """A stored JSON object, or `StorageError` naming what it belongs to and the store."""
    try:
        value = _DECODER.decode(text)
    except (TypeError, ValueError) as err:
        raise StorageError(
            f"{what} in {where} is not valid JSON ({err}); the database is damaged"
        ) from err
    if not isinstance(value, dict):
        raise StorageError(
            f"{what} in {where} is a JSON {type(value).__name__}, not an object; "
            "the database is damaged"
        )
    return value


def thread_of_row(row: Sequence[Any], *, where: str) -> StoredThread:
    """A thread from its row (`THREAD_COLUMNS`, metadata as JSON text)."""
    thread_id, resource_id, title, metadata, created_at, updated_at = row
    return StoredThread(
        thread_id=thread_id,
        resource_id=resource_id,
        title=title,
        metadata=decode_json(metadata, what=f"the metadata of thread {thread_id!r}", where=where),
        created_at=created_at,
        updated_at=updated_at,
    )


def message_of_row(row: Sequence[Any], *, where: str) -> StoredMessage:
    """A message from its row (`MESSAGE_COLUMNS`, content as JSON text)."""
    thread_id, seq, resource_id, role, content, created_at = row
    return StoredMessage(
        thread_id=thread_id,
        seq=int(seq),
        resource_id=resource_id,
        role=role,
        content=decode_json(content, what=f"message {seq} of thread {thread_id!r}", where=where),
        created_at=created_at,
    )
