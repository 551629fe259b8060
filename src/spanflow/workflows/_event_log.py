"""The writer of a run's event log for one execution (``distributed.md`` §2).

Every event the execution emits is handed to `EventLog.append` (it is one of the run's event
sinks) and written to the store in order, numbered on from the log's last entry by the store,
which makes its wire form (`WorkflowEvent.to_dict`) when it needs it (the in-memory store only
when the log is read):

- with every snapshot the execution writes (`EventLog.save`: ``save_run(run, events=...)``, one
  transaction), so the log is never behind the snapshot: the checkpoint after an entry carries
  that entry's events, and the end (suspended or finished) carries ``workflow-finish``, so
  whoever reads a run as suspended or ended also finds every event up to its end;
- and between snapshots on their own, when no snapshot write has taken them within
  `FLUSH_DELAY` (50 ms), so observers see a long-running step live. Events that wait together
  go in one write, and a run of quick steps writes its events with its checkpoints only.

So between two checkpoints the log may run ahead of the snapshot by the events of the entry in
progress; after a crash a restart re-runs that entry, and its events appear again after the
dead execution's. A write that fails keeps its events for the next one (the next snapshot
write then fails the run as any store failure does). An event the store refuses as not JSON
(a NaN a step wrote with ``ctx.writer``, say) is logged without its payload and a note saying
why, rather than hold up the run's snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from spanflow.errors import StorageError
from spanflow.storage.base import EventEntry, Storage, StoredRun, unrenderable_event, wire_of
from spanflow.workflows.events import WorkflowEvent

__all__ = ["EventLog"]

logger = logging.getLogger("spanflow.events")


FLUSH_DELAY = 0.05
"""Seconds an event may wait for the next snapshot write before it is written on its own."""


class EventLog:
    """Writes one execution's events to its run's log, in order."""

    def __init__(self, storage: Storage, run_id: str) -> None:
        self._storage = storage
        self._run_id = run_id
        self._pending: list[EventEntry] = []
        self._lock = asyncio.Lock()
        """Held by every write, so writes reach the store in the order of their events."""
        self._timer: asyncio.TimerHandle | None = None
        """Set while events wait: when it fires, they are written on their own."""
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False

    def append(self, event: WorkflowEvent) -> None:
        """Queue `event` (an event sink): the next snapshot write takes it, or, if none comes
        within `FLUSH_DELAY`, a write of its own. Ignored once the log is closed."""
        if self._closed:
            return
        self._pending.append(event)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._due)

    def discard(self, event: WorkflowEvent) -> None:
        """Take back a queued `event` that turned out untrue (an end whose write failed)."""
        self._pending = [queued for queued in self._pending if queued is not event]

    async def save(self, run: StoredRun, *, if_owner: str | None = None) -> None:
        """Write `run` and every event queued so far in one transaction (`Storage.save_run`)."""
        async with self._lock:
            events, self._pending = self._pending, []
            self._stop_timer()
            try:
                await _write(
                    lambda logged: self._storage.save_run(run, events=logged, if_owner=if_owner),
                    events,
                )
            except BaseException:
                self._pending[:0] = events
                raise

    async def close(self) -> None:
        """Write what is still queued, in one last attempt (a failure is logged and the events
        dropped: a later execution of the run must not find them written after its own), and
        stop. Returns at once, without yielding to the loop, when nothing is queued or being
        written."""
        self._closed = True
        self._stop_timer()
        flushing, self._flushing = self._flushing, None
        if flushing is not None and not flushing.done():
            await flushing
        await self._flush()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        if self._pending and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.get_running_loop().create_task(
                self._flush(), name=f"spanflow-events-{self._run_id}"
            )

    async def _flush(self) -> None:
        if not self._pending:
            return
        async with self._lock:
            events, self._pending = self._pending, []
            if not events:
                return
            try:
                await _write(
                    lambda logged: self._storage.append_events(self._run_id, logged), events
                )
            except Exception as error:
                self._pending[:0] = events
                logger.warning(
                    "spanflow: could not write %d event(s) of run %s to its event log (%s); "
                    "they go with the next write, if any",
                    len(events),
                    self._run_id,
                    error,
                )
            finally:
                if self._closed:
                    self._pending = []
                elif self._pending and self._timer is None:  # queued while this write ran
                    self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._due)


async def _write(
    write: Callable[[list[EventEntry]], Awaitable[None]], events: list[EventEntry]
) -> None:
    """`write(events)`; if the store refuses it and some events are not JSON, again with those
    events replaced by a note (only a refused write pays for looking)."""
    try:
        await write(events)
    except StorageError:
        storable = _storable(events)
        if storable is events:
            raise  # the events were fine: the run's snapshot (or the store) is the problem
        await write(storable)


_STRICT_JSON = json.JSONEncoder(allow_nan=False)


def _storable(events: list[EventEntry]) -> list[EventEntry]:
    """`events`, with each one that is not strict JSON replaced by a note saying why (the same
    list if none is)."""
    out: list[EventEntry] = []
    replaced = False
    for event in events:
        wire = wire_of(event)
        try:
            _STRICT_JSON.encode(wire)
            out.append(wire)
        except (TypeError, ValueError, RecursionError) as error:
            replaced = True
            out.append(
                unrenderable_event(wire.get("type"), wire.get("runId"), wire.get("from"), error)
            )
    return out if replaced else events
