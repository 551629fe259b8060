"""`MemoryStorage`: runs in a dict, for tests and for a workflow used without a registry.

Nothing survives the process, so the engine writes only the snapshots that matter here
(created, waiting, suspended, finished; not one per entry), and only the most recent finished
runs are kept (`max_finished_runs`). A write copies only the top level of the snapshot dict
and relies on the engine's rule: **once a snapshot is handed to a store, neither the dict nor
anything inside it is mutated again** (the engine builds each snapshot anew, sharing only
values it no longer changes). Reads return copies of every dict and list, so what a caller
does with a loaded snapshot cannot change what is stored. No method awaits while it
holds the store's lock, so the store is safe to share between tasks, and (the lock being a
`threading.Lock`) between threads.

Event logs keep the entries handed in as they are (the same no-mutation rule applies): an
event's wire dict is made only when the log is read, so a run nobody observes pays nothing
for it. Logs are dropped with their run, also when `max_finished_runs` drops it; a waiter is
woken at once.

Agent memory (`ThreadStore`): threads and their messages, kept until deleted (no retention
limit: memory is the application's to delete). Messages are stored as the JSON an SQL store
would read back (encoded, then decoded), so all three stores answer alike.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

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
    run_not_found,
    saved_cancel_flag,
)
from spanflow.storage._events import Waiters, check_event_range
from spanflow.storage._threads import (
    check_id,
    check_last,
    check_message_page,
    check_owner,
    check_thread,
    check_thread_ids,
    decode_json,
    encode_messages,
    other_resource,
)
from spanflow.storage.base import (
    ENDED_STATUSES,
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
    wire_of,
)

__all__ = ["MemoryStorage"]


_FINISHED: frozenset[str] = frozenset(ENDED_STATUSES)


class MemoryStorage:
    """A `Storage` (and `ThreadStore`) that keeps runs and threads in this process's memory."""

    durable = False
    """Nothing outlives the process, so the engine skips the per-entry checkpoints here."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        max_finished_runs: int | None = 1000,
        event_log: bool = True,
    ) -> None:
        """Create an empty store.

        Args:
            clock: Returns the current time in epoch seconds; tests pass a fake one.
            max_finished_runs: How many finished runs (success, failed, canceled, tripwire) to
                keep; the ones that finished longest ago are dropped beyond it, so a long-lived
                process does not grow without bound. Runs that can still go on (pending, queued,
                running, waiting, suspended) are never dropped. ``None`` keeps every run.
            event_log: Keep each run's event log (``Workflow.observe`` reads it).
        """
        if max_finished_runs is not None and (
            not isinstance(max_finished_runs, int) or max_finished_runs < 0
        ):
            raise ValueError(
                f"max_finished_runs must be None or an int >= 0, got {max_finished_runs!r}"
            )
        self._clock = clock
        self._max_finished = max_finished_runs
        self.event_log = event_log
        self._runs: dict[str, StoredRun] = {}
        self._events: dict[str, list[EventEntry]] = {}
        self._waiters = Waiters()
        self._finished: dict[str, None] = {}
        """Finished run ids, oldest first (an ordered set)."""
        self._threads: dict[str, StoredThread] = {}
        self._messages: dict[str, list[StoredMessage]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStorage(<{len(self._runs)} runs>)"

    async def __aenter__(self) -> MemoryStorage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Nothing to open; present so every store can be opened the same way."""
        self._check_open()

    async def insert_run(self, run: StoredRun) -> None:
        """Store a new run; raise `RunClaimError` if a run with that id already exists.

        Fills ``run.created_at`` (when 0) and sets ``run.updated_at``.
        """
        check_run(run)
        with self._lock:
            self._check_open()
            if run.run_id in self._runs:
                raise duplicate_run(run.run_id)
            now = self._clock()
            run.created_at = run.created_at or now
            run.updated_at = now
            self._runs[run.run_id] = replace(run, snapshot=dict(run.snapshot))
            self._retain(run.run_id, run.status)

    async def save_run(
        self, run: StoredRun, *, events: Sequence[EventEntry] = (), if_owner: str | None = None
    ) -> None:
        """Insert or replace the run, keeping the stored ``created_at`` of an existing run, and
        append `events` to its log.

        Sets ``run.updated_at``, ``run.cancel_requested`` (see `Storage.save_run`) and, when it
        is 0, ``run.created_at``.
        """
        check_run(run)
        with self._lock:
            self._check_open()
            now = self._clock()
            existing = self._runs.get(run.run_id)
            if if_owner is not None and existing is not None and existing.owner != if_owner:
                raise lease_lost(run.run_id, if_owner)
            if existing is None:
                run.created_at = run.created_at or now
                run.cancel_requested = saved_cancel_flag(run)
            else:
                run.created_at = existing.created_at
                run.cancel_requested = (
                    existing.cancel_requested and run.status in KEEPS_CANCEL_REQUEST
                )
            run.updated_at = now
            self._runs[run.run_id] = replace(run, snapshot=dict(run.snapshot))
            if events and self.event_log:
                self._events.setdefault(run.run_id, []).extend(events)
            self._retain(run.run_id, run.status)
        if events:
            self._waiters.wake(run.run_id)

    async def append_events(self, run_id: str, events: Sequence[EventEntry]) -> None:
        """Append `events` to the run's log (nothing for a run not stored)."""
        with self._lock:
            self._check_open()
            if not events or not self.event_log or run_id not in self._runs:
                return
            self._events.setdefault(run_id, []).extend(events)
        self._waiters.wake(run_id)

    async def read_events(
        self, run_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[LoggedEvent]:
        """The run's logged events from `offset` on (copies of their dicts)."""
        check_event_range(offset, limit)
        with self._lock:
            self._check_open()
            logged = self._events.get(run_id, [])
            end = len(logged) if limit is None else min(len(logged), offset + limit)
            out = []
            for seq in range(offset, end):
                wire = logged[seq] = wire_of(logged[seq])  # made once, on first read
                out.append(LoggedEvent(seq, _copy_tree(wire)))
            return out

    async def count_events(self, run_id: str) -> int:
        """How many events the run's log holds."""
        with self._lock:
            self._check_open()
            return len(self._events.get(run_id, ()))

    async def wait_for_events(self, run_id: str, *, offset: int, max_wait: float) -> bool:
        """Wait until the run's log holds an event numbered `offset` or later."""
        check_event_range(offset, None)

        async def ready() -> bool:
            with self._lock:
                self._check_open()
                return len(self._events.get(run_id, ())) > offset

        return await self._waiters.wait(run_id, max_wait, ready)

    async def get_run(self, run_id: str) -> StoredRun | None:
        """A copy of the stored run, or ``None``."""
        with self._lock:
            self._check_open()
            stored = self._runs.get(run_id)
            return None if stored is None else _copy_out(stored)

    async def claim_run(
        self,
        run_id: str,
        *,
        from_status: Collection[RunStatus],
        to_status: RunStatus,
        owner: str | None = None,
        lease: float = 0.0,
    ) -> StoredRun:
        """Move a run from one of `from_status` to `to_status` and return it.

        Only the status, owner and lease change; the snapshot is the engine's to rewrite.
        """
        expected = check_from_status(from_status, to_status)
        check_lease(lease)
        with self._lock:
            self._check_open()
            stored = self._runs.get(run_id)
            if stored is None:
                raise run_not_found(run_id)
            if stored.status not in expected:
                raise claim_refused(run_id, stored.status, expected)
            now = self._clock()
            if (
                stored.status in EXECUTING_STATUSES
                and stored.lease_until > now
                and stored.owner != owner
            ):
                raise lease_refused(run_id, stored.status, stored.owner, stored.lease_until)
            stored.status = to_status
            stored.updated_at = now
            stored.owner = owner
            stored.lease_until = now + lease if lease else 0.0
            stored.cancel_requested &= to_status in KEEPS_CANCEL_REQUEST
            self._retain(run_id, to_status)
            return _copy_out(stored)

    async def renew_lease(self, run_id: str, *, owner: str, lease: float) -> Lease | None:
        """Extend `owner`'s lease on an executing run; the new lease, or ``None``."""
        check_lease(lease)
        with self._lock:
            self._check_open()
            stored = self._runs.get(run_id)
            if stored is None or stored.owner != owner or stored.status not in EXECUTING_STATUSES:
                return None
            stored.lease_until = self._clock() + lease
            return Lease(stored.lease_until, stored.cancel_requested)

    async def request_cancel(self, run_id: str) -> StoredRun | None:
        """Set the ``cancel_requested`` flag of an executing run; the run, or ``None``."""
        with self._lock:
            self._check_open()
            stored = self._runs.get(run_id)
            if stored is None or stored.status not in EXECUTING_STATUSES:
                return None
            stored.cancel_requested = True
            stored.updated_at = self._clock()
            return _copy_out(stored)

    async def stalled_runs(
        self, *, workflow_ids: Collection[str] | None = None, limit: int = 100
    ) -> list[StoredRun]:
        """Executing runs whose lease is not live, oldest ``updated_at`` first."""
        wanted = check_stalled(workflow_ids, limit)
        with self._lock:
            self._check_open()
            now = self._clock()
            stalled = [
                run
                for run in self._runs.values()
                if run.status in EXECUTING_STATUSES
                and run.lease_until <= now
                and (wanted is None or run.workflow_id in wanted)
            ]
            stalled.sort(key=lambda run: (run.updated_at, run.run_id))
            return [_copy_out(run) for run in stalled[:limit]]

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
        lower, upper = check_listing(
            limit,
            offset,
            status,
            workflow_id=workflow_id,
            resource_id=resource_id,
            from_date=from_date,
            to_date=to_date,
        )
        with self._lock:
            self._check_open()
            matching = [
                run
                for run in self._runs.values()
                if (workflow_id is None or run.workflow_id == workflow_id)
                and (status is None or run.status == status)
                and (resource_id is None or run.resource_id == resource_id)
                and (lower is None or run.created_at >= lower)
                and (upper is None or run.created_at < upper)
            ]
            matching.sort(key=lambda run: (run.created_at, run.run_id), reverse=True)
            page = [_copy_out(run) for run in matching[offset : offset + limit]]
        return RunPage(runs=page, total=len(matching), limit=limit, offset=offset)

    async def count_runs(
        self, *, workflow_id: str | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """How many runs each workflow has per status (nonzero counts only)."""
        check_id_filter(workflow_id, argument="workflow_id")
        with self._lock:
            self._check_open()
            counted = Counter(
                (run.workflow_id, run.status)
                for run in self._runs.values()
                if workflow_id is None or run.workflow_id == workflow_id
            )
        return counts_by_workflow((wid, status, n) for (wid, status), n in counted.items())

    async def delete_run(
        self, run_id: str, *, if_status: Collection[RunStatus] | None = None
    ) -> bool:
        """Remove a run; ``True`` if it existed. With `if_status`, only in one of those."""
        allowed = check_if_status(if_status)
        with self._lock:
            self._check_open()
            stored = self._runs.get(run_id)
            if stored is None:
                return False
            if allowed is not None and stored.status not in allowed:
                raise delete_refused(run_id, stored.status, allowed)
            self._finished.pop(run_id, None)
            del self._runs[run_id]
            self._events.pop(run_id, None)
            return True

    async def close(self) -> None:
        """Drop every run. Safe to call twice; the store refuses further use."""
        with self._lock:
            self._closed = True
            self._runs.clear()
            self._events.clear()
            self._finished.clear()
            self._threads.clear()
            self._messages.clear()

    async def save_thread(self, thread: StoredThread) -> None:
        """Create the thread or update its title and metadata (see `ThreadStore.save_thread`)."""
        metadata = decode_json(check_thread(thread), what="metadata", where="memory")
        with self._lock:
            self._check_open()
            stored = self._threads.get(thread.thread_id)
            if stored is not None and stored.resource_id != thread.resource_id:
                raise other_resource(thread.thread_id, thread.resource_id)
            now = self._clock()
            thread.created_at = stored.created_at if stored else thread.created_at or now
            thread.updated_at = now
            self._threads[thread.thread_id] = replace(thread, metadata=metadata)

    async def get_thread(self, thread_id: str, *, resource_id: str) -> StoredThread | None:
        """A copy of the resource's stored thread, or ``None`` (see `ThreadStore.get_thread`)."""
        check_thread_ids(thread_id, resource_id)
        with self._lock:
            self._check_open()
            stored = self._threads.get(thread_id)
            if stored is None:
                return None
            check_owner(thread_id, stored.resource_id, resource_id)
            return _copy_thread(stored)

    async def list_threads(
        self, *, resource_id: str, limit: int = 20, offset: int = 0
    ) -> ThreadPage:
        """The resource's threads, most recently updated first."""
        check_id(resource_id, argument="resource_id")
        check_page(limit, offset)
        with self._lock:
            self._check_open()
            owned = [t for t in self._threads.values() if t.resource_id == resource_id]
            owned.sort(key=lambda thread: (thread.updated_at, thread.thread_id), reverse=True)
            page = [_copy_thread(thread) for thread in owned[offset : offset + limit]]
        return ThreadPage(threads=page, total=len(owned), limit=limit, offset=offset)

    async def delete_thread(self, thread_id: str, *, resource_id: str) -> bool:
        """Remove the resource's thread and its messages; ``True`` if it existed (see
        `ThreadStore.delete_thread`)."""
        check_thread_ids(thread_id, resource_id)
        with self._lock:
            self._check_open()
            stored = self._threads.get(thread_id)
            if stored is None:
                return False
            check_owner(thread_id, stored.resource_id, resource_id)
            self._messages.pop(thread_id, None)
            del self._threads[thread_id]
            return True

    async def append_messages(
        self, thread_id: str, *, resource_id: str, messages: Sequence[dict[str, Any]]
    ) -> list[StoredMessage]:
        """Append `messages` to the thread, all or none (see `ThreadStore.append_messages`)."""
        encoded = encode_messages(thread_id, resource_id, messages)
        if not encoded:
            return []
        contents = [decode_json(text, what="message", where="memory") for _, text in encoded]
        with self._lock:
            self._check_open()
            now = self._clock()
            thread = self._threads.get(thread_id)
            if thread is not None and thread.resource_id != resource_id:
                raise other_resource(thread_id, resource_id)
            if thread is None:
                thread = self._threads[thread_id] = StoredThread(thread_id, resource_id)
                thread.created_at = now
            thread.updated_at = now
            log = self._messages.setdefault(thread_id, [])
            added = [
                StoredMessage(thread_id, len(log) + n, resource_id, role, content, now)
                for n, ((role, _), content) in enumerate(zip(encoded, contents, strict=True))
            ]
            log.extend(added)
            return [_copy_message(message) for message in added]

    async def last_messages(
        self, thread_id: str, *, resource_id: str | None = None, limit: int
    ) -> list[StoredMessage]:
        """The thread's last `limit` messages, in thread order."""
        check_message_page(thread_id, resource_id, 1, 0)
        check_last(limit)
        with self._lock:
            log = self._owned_messages(thread_id, resource_id)
            kept = log[len(log) - limit :] if limit else []
            return [_copy_message(message) for message in kept]

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
        with self._lock:
            log = self._owned_messages(thread_id, resource_id)
            page = [_copy_message(message) for message in log[offset : offset + limit]]
            return MessagePage(messages=page, total=len(log), limit=limit, offset=offset)

    async def delete_messages(self, *, resource_id: str) -> int:
        """Remove every message of the resource's threads; how many there were."""
        check_id(resource_id, argument="resource_id")
        with self._lock:
            self._check_open()
            deleted = 0
            for thread in self._threads.values():
                if thread.resource_id == resource_id:
                    deleted += len(self._messages.pop(thread.thread_id, ()))
            return deleted

    def _owned_messages(self, thread_id: str, resource_id: str | None) -> list[StoredMessage]:
        """The thread's messages, checking it belongs to `resource_id` if given (lock held)."""
        self._check_open()
        thread = self._threads.get(thread_id)
        if thread is None:
            return []
        if resource_id is not None and thread.resource_id != resource_id:
            raise other_resource(thread_id, resource_id)
        return self._messages.get(thread_id, [])

    def _retain(self, run_id: str, status: str) -> None:
        """Track finished runs and drop the oldest beyond `max_finished_runs` (lock held)."""
        self._finished.pop(run_id, None)
        if status not in _FINISHED:
            return
        self._finished[run_id] = None
        limit = self._max_finished
        while limit is not None and len(self._finished) > limit:
            oldest = next(iter(self._finished))
            del self._finished[oldest]
            self._runs.pop(oldest, None)
            self._events.pop(oldest, None)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("this MemoryStorage is closed; create a new store")


def _copy_thread(thread: StoredThread) -> StoredThread:
    return replace(thread, metadata=_copy_tree(thread.metadata))


def _copy_message(message: StoredMessage) -> StoredMessage:
    return replace(message, content=_copy_tree(message.content))


def _copy_out(run: StoredRun) -> StoredRun:
    return replace(run, snapshot=_copy_tree(run.snapshot))


def _copy_tree(value: Any) -> Any:
    """Copy the containers of JSON-like data; share the leaves (immutable in JSON data).

    About three times as fast as `copy.deepcopy`, which matters for listing big snapshots.
    """
    kind = type(value)
    if kind is dict:
        return {key: _copy_tree(item) for key, item in value.items()}
    if kind is list:
        return [_copy_tree(item) for item in value]
    if kind is tuple:
        return tuple(_copy_tree(item) for item in value)
    return value
