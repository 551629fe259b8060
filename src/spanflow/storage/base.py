"""The `Storage` protocol: where runs and their snapshots live between (and across) processes.

Storage sees plain data only. A run is a `StoredRun`: a few indexed columns (ids, status,
timestamps) plus `snapshot`, a JSON-able dict that the engine alone interprets. Every store
(memory, SQLite, PostgreSQL) passes the same contract tests in ``tests/storage``.

Beside each run a store keeps its **event log** (``distributed.md`` §2): every event the run
emitted, in its wire form, numbered from 0 in the order written (`LoggedEvent`). The engine
appends to it as the run goes (`append_events`) and with every snapshot it writes
(``save_run(run, events=...)``, one transaction), so what the log says is never behind the
snapshot; `read_events` and `wait_for_events` let any process follow a run live
(``Workflow.observe``). The log is deleted with its run.

A run can be asked to stop by any process (``distributed.md`` §4): `request_cancel` sets its
``cancel_requested`` flag, and the process executing it learns of the flag when it renews its
lease (`Lease`) or saves the run, and cancels it. `stalled_runs` finds the runs whose executing
process is gone (their lease ran out), for a worker to queue them again.

The same three stores keep agent memory, behind a protocol of its own, `ThreadStore` (so a
store of runs need not keep threads, and code that needs only memory says so): **threads**
(`StoredThread`, one conversation, owned by one resource such as a user) and their
**messages** (`StoredMessage`, numbered from 0 per thread in the order appended). An append
is one transaction: all of its messages are written, or none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "ENDED_STATUSES",
    "EXECUTING_STATUSES",
    "IDLE_STATUSES",
    "KEEPS_CANCEL_REQUEST",
    "DamagedRun",
    "EventEntry",
    "Lease",
    "LoggedEvent",
    "MessagePage",
    "RunPage",
    "RunStatus",
    "Storage",
    "StoredMessage",
    "StoredRun",
    "StoredThread",
    "ThreadPage",
    "ThreadStore",
    "WireEvent",
    "unrenderable_event",
    "wire_of",
]

RunStatus = Literal[
    "pending",
    "queued",
    "running",
    "waiting",
    "suspended",
    "success",
    "failed",
    "canceled",
    "tripwire",
]
"""Every status a stored run can have, in lifecycle order. ``pending``: created, not started
yet; ``queued``: handed to a queue, waiting for a worker to execute it."""

EXECUTING_STATUSES: tuple[RunStatus, ...] = ("running", "waiting")
"""Statuses of a run that a process is executing (a waiting run sleeps inside its execution):
such a run is not deleted, and only a run left in one by a dead process is restarted."""
ENDED_STATUSES: tuple[RunStatus, ...] = ("success", "failed", "canceled", "tripwire")
"""Statuses of a run that is over: it will not execute again (short of a time travel)."""
IDLE_STATUSES: tuple[RunStatus, ...] = ("pending", "suspended", *ENDED_STATUSES)
"""Statuses of a run no process is executing nor about to: pending, suspended or ended (not
queued: a worker may take a queued run up at any moment). Such a run may be deleted."""
KEEPS_CANCEL_REQUEST: tuple[RunStatus, ...] = ("queued", *EXECUTING_STATUSES)
"""Statuses in which a run keeps its ``cancel_requested`` flag: it is still to execute or
executing, so the flag is still to be acted on. A write of any other status clears it."""


@dataclass(slots=True)
class StoredRun:
    """One run as a store keeps it."""

    run_id: str
    workflow_id: str
    status: RunStatus
    snapshot: dict[str, Any]
    """Everything needed to continue the run; JSON-able, opaque to the store."""
    resource_id: str | None = None
    created_at: float = 0.0
    """Epoch seconds (UTC). Stores fill it on insert when it is 0."""
    updated_at: float = 0.0
    """Epoch seconds (UTC). Stores set it on every write."""
    owner: str | None = None
    """Who executes the run (``host:pid:execution``), while it is running or waiting."""
    lease_until: float = 0.0
    """Epoch seconds until which `owner`'s claim holds; the owner renews it while it executes
    (`Storage.renew_lease`). A run whose lease is live cannot be claimed again; 0: no lease."""
    cancel_requested: bool = False
    """Whether some process asked for the run to be canceled (`Storage.request_cancel`) and
    the run has not ended since: its executor should cancel it. Only a run in one of
    `KEEPS_CANCEL_REQUEST` keeps it; stores clear it on any write of another status."""


@dataclass(frozen=True, slots=True)
class Lease:
    """What `Storage.renew_lease` found: the renewed lease, and whether to stop."""

    until: float
    """Epoch seconds until which the owner's claim now holds (the run's ``lease_until``)."""
    cancel_requested: bool
    """Whether a cancel was requested for the run (`Storage.request_cancel`): the heartbeat is
    how an executor in one process learns of a cancel asked in another."""


class WireEvent(Protocol):
    """An event as the engine hands it to a store: anything with its wire form."""

    def to_dict(self) -> dict[str, Any]: ...


EventEntry = dict[str, Any] | WireEvent
"""What `save_run` and `append_events` take: an event's wire dict, or the event itself, whose
`to_dict` a store calls when it needs the dict (the in-memory store only when it is read)."""


def wire_of(entry: EventEntry) -> dict[str, Any]:
    """An event's wire dict; if its `to_dict` fails (a value in it cannot be rendered), the
    event without its payload and a note saying why: a log entry never stops a run."""
    if isinstance(entry, dict):
        return entry
    try:
        return entry.to_dict()
    except Exception as error:
        return unrenderable_event(
            getattr(entry, "type", ""),
            getattr(entry, "run_id", ""),
            getattr(entry, "from_", "WORKFLOW"),
            error,
        )


def unrenderable_event(kind: Any, run_id: Any, source: Any, error: BaseException) -> dict[str, Any]:
    """What the log keeps of an event whose payload cannot be rendered or stored: its type,
    run and source, and in place of the payload what went wrong."""
    return {
        "type": str(kind),
        "runId": str(run_id),
        "from": str(source),
        "payload": {"unrenderable": f"{type(error).__name__}: {error}"},
    }


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One entry of a run's event log."""

    seq: int
    """Its place in the log: 0 for the run's first event, then 1, 2, ... across executions."""
    event: dict[str, Any]
    """The event's wire form (``WorkflowEvent.to_dict()``)."""


@dataclass(frozen=True, slots=True)
class DamagedRun:
    """A stored run whose row a store could not read (its snapshot is not valid JSON)."""

    run_id: str
    workflow_id: str
    status: str
    problem: str
    """What is wrong, as the store's `StorageError` says it."""


@dataclass(slots=True)
class RunPage:
    """A page of `list_runs`, newest first, with the total number of matching runs.

    A run whose stored row cannot be read is left out of `runs` and reported in `damaged`
    instead (it still counts in `total`), so one damaged row never hides the others.
    """

    runs: list[StoredRun]
    total: int
    limit: int
    offset: int
    extra: dict[str, Any] = field(default_factory=dict)
    damaged: list[DamagedRun] = field(default_factory=list)
    """Runs of this page whose rows could not be read, in page order."""


@runtime_checkable
class Storage(Protocol):
    """Where runs live. Implementations: `MemoryStorage`, `SqliteStorage`, `PostgresStorage`."""

    durable: bool
    """Whether runs outlive the process. The engine saves a snapshot after every top-level
    entry only to durable stores (so a crash loses at most the running step); a store that
    dies with the process gets the snapshots that matter in it: created, waiting, suspended,
    finished."""

    async def insert_run(self, run: StoredRun) -> None:
        """Store a new run; raise `RunClaimError` if a run with that id already exists.

        The run may have any status: the engine inserts it ``pending`` at ``create_run`` and
        claims it ``pending -> running`` when it starts (or ``pending -> queued`` when a queue
        executes it). Its ``cancel_requested`` is stored as given.
        """
        ...

    event_log: bool
    """Whether the store keeps event logs. A store made with ``event_log=False`` drops the
    events handed to it and its logs read as empty (``Workflow.observe`` refuses it)."""

    async def save_run(
        self, run: StoredRun, *, events: Sequence[EventEntry] = (), if_owner: str | None = None
    ) -> None:
        """Write the run's current status and snapshot (insert or replace), and append `events`
        to its event log in the same transaction.

        With `if_owner` (the executor's owner id), write only if the stored run is still owned
        by it; otherwise raise `RunClaimError` and write nothing: its lease ran out and another
        process claimed the run, whose writes must not be overwritten.

        ``run.cancel_requested`` is not the caller's to write: while the saved status is one of
        `KEEPS_CANCEL_REQUEST` the stored flag is kept (a cancel another process requested
        meanwhile is never lost), any other status clears it. Either way the store sets
        ``run.cancel_requested`` to the flag as stored, so the executor learns of a request
        with every save. (A run saved for the first time gets its own flag, cleared likewise.)
        """
        ...

    async def append_events(self, run_id: str, events: Sequence[EventEntry]) -> None:
        """Append `events` (in order) to the run's event log, numbered on from its
        last entry, in one transaction, and wake whoever waits for them. Appending to a run
        that is not stored (deleted meanwhile) writes nothing."""
        ...

    async def read_events(
        self, run_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[LoggedEvent]:
        """The run's logged events from number `offset` on (at most `limit`), in order; an
        empty list for an unknown run.

        Raises:
            ValueError: `offset` is negative or `limit` is below 1.
            TypeError: `offset` or `limit` is not an int.
        """
        ...

    async def count_events(self, run_id: str) -> int:
        """How many events the run's log holds: the number its next event gets (0 for an
        unknown run or a store without an event log). Cheaper than reading the log: a
        follower that starts now reads from here."""
        ...

    async def wait_for_events(self, run_id: str, *, offset: int, max_wait: float) -> bool:
        """Wait until the run's log holds an event numbered `offset` or later, at most
        `max_wait` seconds; ``True`` if it does. A wake-up only: read the events with
        `read_events`. (PostgreSQL: ``LISTEN/NOTIFY``; SQLite: this process's own writes wake
        at once, other processes' are seen by a short poll; memory: at once.)"""
        ...

    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run, or ``None``."""
        ...

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

        Exactly one of several concurrent claimers wins; the others get `RunClaimError`
        naming the status they found. A run that is running or waiting under a live lease
        (``lease_until`` after the store's clock; PostgreSQL's own clock) of another owner than
        `owner` is refused too, naming that owner. The claimed run gets `owner` and a lease of
        `lease` seconds from now (none for 0). An unknown id raises `RunNotFoundError`.

        The run keeps its ``cancel_requested`` flag if `to_status` is one of
        `KEEPS_CANCEL_REQUEST` (so a run whose executor died after a cancel was requested is
        canceled by whoever takes it over), and loses it otherwise.
        """
        ...

    async def renew_lease(self, run_id: str, *, owner: str, lease: float) -> Lease | None:
        """Extend `owner`'s lease on an executing run to `lease` seconds from now (0: let it
        run out now); the new lease and whether a cancel was requested, or ``None`` if the run
        is no longer executing under `owner` (another process claimed it after the lease ran
        out, or it was canceled or deleted)."""
        ...

    async def request_cancel(self, run_id: str) -> StoredRun | None:
        """Ask whoever executes the run to cancel it: atomically set its ``cancel_requested``
        if its status is running or waiting (`EXECUTING_STATUSES`), and return the run as
        stored now (flag set; asking twice is harmless). ``None`` if no such run is stored or
        it is not executing (pending, queued, suspended and ended runs are canceled by
        claiming them instead). The executor learns of it at its next lease renewal or save.

        Raises:
            StorageError: the store cannot write (read-only), or its tables are older than
                schema version 4 and it may not upgrade them (read-only).
        """
        ...

    async def stalled_runs(
        self, *, workflow_ids: Collection[str] | None = None, limit: int = 100
    ) -> list[StoredRun]:
        """Runs left executing by a process that is gone: status running or waiting and a
        lease that is not live (``lease_until`` at or before the store's clock; PostgreSQL's
        own clock, as for `claim_run`), oldest ``updated_at`` first (then by `run_id`), at most
        `limit`. `workflow_ids` limits it to runs of those workflows (empty: none). A run whose
        row cannot be read (a damaged snapshot) is left out.

        Raises:
            ValueError: `limit` is out of range (1 to 1000).
            TypeError: `limit` is not an int, or `workflow_ids` is a bare string or holds
                something other than strings.
        """
        ...

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

        `from_date` and `to_date` bound `created_at`, both ends included: a run matches when
        ``datetime.fromtimestamp(run.created_at, UTC)`` (its creation time to the microsecond)
        is neither before `from_date` nor after `to_date`. A naive datetime means UTC. The
        `total` of the page counts every run matching all the filters.

        Raises:
            InvalidInputError: `from_date` or `to_date` is not a datetime, `from_date` is after
                `to_date`, or `workflow_id` / `resource_id` is not a string (the message
                names the argument).
            ValueError: `status` is not a `RunStatus`, or `limit`/`offset` is out of range.
            TypeError: `limit` or `offset` is not an int.
        """
        ...

    async def count_runs(
        self, *, workflow_id: str | None = None
    ) -> dict[str, dict[RunStatus, int]]:
        """How many runs each workflow has per status: ``{workflow_id: {status: n}}``.

        Workflows come in id order, statuses in `RunStatus` order, and only statuses with at
        least one run appear (a workflow without runs does not appear at all). `workflow_id`
        limits it to that workflow.

        Raises:
            InvalidInputError: `workflow_id` is not a string.
        """
        ...

    async def delete_run(
        self, run_id: str, *, if_status: Collection[RunStatus] | None = None
    ) -> bool:
        """Remove a run and its event log; ``True`` if it existed, ``False`` for an unknown id.

        With `if_status`, remove it only if its status is one of those, checked and deleted
        atomically (a run claimed meanwhile is not deleted); otherwise raise `RunStateError`
        naming the status found and leave the run as it is.
        """
        ...

    async def close(self) -> None:
        """Release connections and files. Safe to call twice."""
        ...


# -- agent memory: threads and their messages ------------------------------------------------


@dataclass(slots=True)
class StoredThread:
    """One conversation as a store keeps it: its id, the resource that owns it, and its
    description. Its messages are stored apart (`StoredMessage`)."""

    thread_id: str
    resource_id: str
    """Who the thread belongs to (a user, a tenant): a thread id is never reused by another
    resource, so one resource can never read or extend another's conversation."""
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    """JSON-able data of the application's (opaque to the store)."""
    created_at: float = 0.0
    """Epoch seconds (UTC). Stores fill it on insert when it is 0."""
    updated_at: float = 0.0
    """Epoch seconds (UTC): the thread's last write, its own or an append of messages."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a thread as a store keeps it."""

    thread_id: str
    seq: int
    """Its place in the thread: 0 for the first message appended, then 1, 2, ..."""
    resource_id: str
    role: str
    """The message's ``role`` (``user``, ``assistant``, ``tool``, ``system``), kept apart so a
    store can be inspected without decoding the content."""
    content: dict[str, Any]
    """The whole message as the JSON object it was appended as (its ``role`` included)."""
    created_at: float
    """Epoch seconds (UTC) of the append that wrote it."""


@dataclass(slots=True)
class ThreadPage:
    """A page of `ThreadStore.list_threads`: most recently updated first, and how many there
    are in all."""

    threads: list[StoredThread]
    total: int
    limit: int
    offset: int


@dataclass(slots=True)
class MessagePage:
    """A page of `ThreadStore.list_messages`: in thread order (oldest first), and how many
    messages the thread holds in all."""

    messages: list[StoredMessage]
    total: int
    limit: int
    offset: int


@runtime_checkable
class ThreadStore(Protocol):
    """Where agent memory lives: threads per resource and their messages. Implemented by
    `MemoryStorage`, `SqliteStorage` and `PostgresStorage`, beside `Storage`.

    Every method checks its arguments before touching storage (`InvalidInputError`, naming
    the argument), so a refused call writes nothing. A thread belongs to the resource that
    created it: naming it with another resource is refused (`InvalidInputError`), for reads
    as for writes. An SQL store opened read-only on tables older than schema version 5 reads
    no threads and refuses every write with `StorageError`.
    """

    async def save_thread(self, thread: StoredThread) -> None:
        """Create the thread, or update the title and metadata of the stored one (keeping its
        ``created_at``); sets ``thread.created_at`` and ``thread.updated_at``.

        Raises:
            InvalidInputError: the thread is stored for another resource, or a field cannot
                be stored (an empty id, metadata that is not JSON data).
        """
        ...

    async def get_thread(self, thread_id: str, *, resource_id: str) -> StoredThread | None:
        """The stored thread of `resource_id`, or ``None`` if no thread of that id is stored.

        The resource is required, as for every other read of a thread: knowing a thread's id
        is not enough to read another resource's.

        Raises:
            InvalidInputError: the thread belongs to another resource (which is not named), or
                an id is not a non-empty string.
        """
        ...

    async def list_threads(
        self, *, resource_id: str, limit: int = 20, offset: int = 0
    ) -> ThreadPage:
        """The resource's threads, most recently updated first (then by id, descending).

        Raises:
            InvalidInputError: `resource_id` is not a non-empty string.
            ValueError: `limit` (1 to 1000) or `offset` (0 or more) is out of range.
            TypeError: `limit` or `offset` is not an int.
        """
        ...

    async def delete_thread(self, thread_id: str, *, resource_id: str) -> bool:
        """Remove the thread of `resource_id` and all its messages, in one transaction;
        ``True`` if it existed, ``False`` if no thread of that id is stored.

        Whose the thread is is checked in the same transaction as the delete, so another
        resource's thread is never removed, not even by a racing call.

        Raises:
            InvalidInputError: the thread belongs to another resource (which is not named;
                nothing is removed), or an id is not a non-empty string.
        """
        ...

    async def append_messages(
        self,
        thread_id: str,
        *,
        resource_id: str,
        messages: Sequence[dict[str, Any]],
    ) -> list[StoredMessage]:
        """Append `messages` (each a JSON object with a string ``role``) to the thread, in
        order, numbered on from its last message, in one transaction that also creates the
        thread (no title, no metadata) when it is not stored yet and sets its ``updated_at``.
        All of them are stored, or none. An empty list writes nothing.

        Returns the messages as stored.

        Raises:
            InvalidInputError: the thread is stored for another resource, or a message is not
                a JSON object with a string ``role`` (the message names which one); checked
                before anything is written.
        """
        ...

    async def last_messages(
        self, thread_id: str, *, resource_id: str | None = None, limit: int
    ) -> list[StoredMessage]:
        """The thread's last `limit` messages (0 or more), in thread order; an empty list for
        an unknown thread. With `resource_id`, the thread must belong to it.

        Raises:
            InvalidInputError: the thread belongs to another resource than `resource_id`.
            ValueError: `limit` is negative.
            TypeError: `limit` is not an int.
        """
        ...

    async def list_messages(
        self,
        thread_id: str,
        *,
        resource_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> MessagePage:
        """A page of the thread's messages in thread order (`offset` counts from its first);
        empty for an unknown thread. With `resource_id`, the thread must belong to it.

        Raises:
            InvalidInputError: the thread belongs to another resource than `resource_id`.
            ValueError: `limit` (1 to 1000) or `offset` (0 or more) is out of range.
            TypeError: `limit` or `offset` is not an int.
        """
        ...

    async def delete_messages(self, *, resource_id: str) -> int:
        """Remove every message of every thread of the resource, in one transaction, and
        return how many there were. The threads stay (empty); `delete_thread` removes one."""
        ...
