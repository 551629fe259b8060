"""The writer of a run's event log for one execution (``distributed.md`` §2).

Every event the execution emits is handed to `EventLog.append` (it is one of the run's event
sinks) and written to the store in order, numbered on from the log's last entry by the store,
which makes its wire form (`WorkflowEvent.to_dict`) when it needs it (the in-memory store only
when the log is read):

- with every snapshot the execution writes (`EventLog.save`: ``save_run(run, events=...)``, one
  transaction), so the log is never behind the snapshot: the checkpoint after an entry carries
  that entry's events, and the end (suspended or finished) carries ``workflow-finish``, so
  whoever reads a run as suspended or ended also finds every event up to its end;
- and between snapshots by a background flusher, as soon as the run's task yields to the event
  loop, so observers see a running step live. Events that arrive together go in one write.

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
from spanflow.storage.base import EventEntry, Storage, StoredRun, wire_of
from spanflow.workflows.events import WorkflowEvent

__all__ = ["EventLog"]

logger = logging.getLogger("spanflow.events")


class EventLog:
    """Writes one execution's events to its run's log, in order."""

    def __init__(self, storage: Storage, run_id: str) -> None:
        self._storage = storage
        self._run_id = run_id
        self._pending: list[EventEntry] = []
        self._lock = asyncio.Lock()
        """Held by every write, so writes reach the store in the order of their events."""
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def append(self, event: WorkflowEvent) -> None:
        """Queue `event` (an event sink); the flusher writes it soon."""
        self._pending.append(event)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_loop(), name=f"spanflow-events-{self._run_id}"
            )
        self._wake.set()

    async def save(self, run: StoredRun) -> None:
        """Write `run` and every event queued so far in one transaction."""
        async with self._lock:
            events, self._pending = self._pending, []
            try:
                await _write(lambda logged: self._storage.save_run(run, events=logged), events)
            except BaseException:
                self._pending[:0] = events
                raise

    async def close(self) -> None:
        """Stop the flusher; events still queued are written first (failures logged). Returns
        at once, without yielding to the loop, when there is nothing to stop or write."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            # Under the lock, so a write in progress completes first; the flusher is then
            # waiting (for the lock or a wake-up) and takes nothing more once cancelled. Not
            # awaited: the run's last write must not wait for the flusher to be scheduled.
            async with self._lock:
                flusher.cancel()
        await self._flush()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

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
                    "they go with the next write",
                    len(events),
                    self._run_id,
                    error,
                )


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
                {
                    "type": str(wire.get("type")),
                    "runId": str(wire.get("runId")),
                    "from": str(wire.get("from")),
                    "payload": {"unrenderable": f"{type(error).__name__}: {error}"},
                }
            )
    return out if replaced else events
