"""Following a stored run from its event log: ``Workflow.observe`` and ``Run.observe``.

An observer needs nothing of the process executing the run but the store: it replays the
run's logged events from an offset, then follows new ones (the store's `wait_for_events`
wake-up, or a look every `LOOK_AGAIN` seconds) until the run is stored as suspended or
ended. The engine writes that status together with the run's last events (``_event_log``), so
one more read after seeing it gives every event up to its end. The stream's ``result`` is the
run as stored then, its values validated again by the workflow's schemas as a resume would
(``_snapshot.load_steps``); ``status`` follows the stored status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from spanflow.errors import RunNotFoundError, RunStateError, StorageError, StoredError
from spanflow.storage.base import ENDED_STATUSES, EXECUTING_STATUSES, Storage, StoredRun
from spanflow.workflows._snapshot import (
    RunSnapshot,
    load_steps,
    read_run_snapshot,
    stored_value,
)
from spanflow.workflows.events import WorkflowEvent
from spanflow.workflows.results import (
    StepResult,
    TripwireError,
    TripwireInfo,
    WorkflowResult,
    WorkflowStatus,
)
from spanflow.workflows.stream import WorkflowStream

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["LOOK_AGAIN", "observe", "stored_result"]

Prepare = Callable[[], Coroutine[Any, Any, int]]
"""What an observer does first (a queued execution's submission): the offset to follow from."""

LOOK_AGAIN = 1.0
"""Seconds an observer waits for a wake-up before it looks at the stored run again."""

_FOLLOWING: set[asyncio.Task[Any]] = set()
"""The observers' tasks, and submissions they await (the loop keeps only weak references to
tasks)."""


class _Watched:
    """What an observed stream's ``status`` reads: the run's status as last read."""

    def __init__(self) -> None:
        self.status = "pending"


def observe(
    workflow: Workflow,
    run_id: str,
    offset: int = 0,
    *,
    prepare: Prepare | None = None,
    until_end: bool = False,
    on_stored: Callable[[StoredRun], None] | None = None,
) -> WorkflowStream:
    """A stream of the run's events from number `offset`, then live ones, until the run is
    suspended or ended. Call it in a running event loop.

    `prepare` (a queued execution's submission) runs first, in the stream's task, and gives
    the offset to follow from (the log's length before the job was queued); what it raises
    ends the stream. `until_end` follows a run through suspensions until it ends; `on_stored`
    is told the run as stored when the stream ends.

    Raises:
        TypeError: `offset` is not an int.
        ValueError: `offset` is negative.
        StorageError: The workflow's store keeps no event log.
    """
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"offset must be an int; got {offset!r}")
    if offset < 0:
        raise ValueError(f"offset must be 0 or more; got {offset}")
    storage = workflow.storage
    if not storage.event_log:
        raise StorageError(
            f"{storage!r} keeps no event log (event_log=False), so runs cannot be observed"
        )
    watched = _Watched()
    out = WorkflowStream(watched)
    if prepare is not None:
        out.handed_over = asyncio.get_running_loop().create_future()
    follow = _Follow(workflow, run_id, out, watched, until_end, on_stored)
    task = asyncio.get_running_loop().create_task(
        follow.run(offset, prepare), name=f"spanflow-observe-{run_id}"
    )
    _FOLLOWING.add(task)
    task.add_done_callback(_FOLLOWING.discard)
    out.producer = task
    return out


@dataclass(slots=True)
class _Follow:
    """One observer's reading of a run's log."""

    workflow: Workflow
    run_id: str
    out: WorkflowStream
    watched: _Watched
    until_end: bool
    on_stored: Callable[[StoredRun], None] | None

    async def run(
        self, offset: int, prepare: Callable[[], Coroutine[Any, Any, int]] | None
    ) -> None:
        handed_over = self.out.handed_over
        try:
            if prepare is not None:
                offset = await _unstoppable(prepare())
            if handed_over is not None:
                handed_over.set_result(None)
            stored = await self._follow(offset)
        except BaseException as error:
            if handed_over is not None and not handed_over.done():
                handed_over.set_exception(error)
                handed_over.exception()  # retrieved: the stream raises it too
            self.out.fail(error)
            if not isinstance(error, Exception):
                raise
            return
        if self.on_stored is not None:
            self.on_stored(stored)
        self.out.finish(stored_result(self.workflow, stored))

    async def _follow(self, seq: int) -> StoredRun:
        """Push the logged events from `seq` on until the run stops; the run as stored then."""
        storage, run_id, out = self.workflow.storage, self.run_id, self.out
        while True:
            seq = await _replay(storage, run_id, seq, out)
            stored = await storage.get_run(run_id)
            if stored is None:
                raise RunNotFoundError(f"run {run_id!r} not found")
            if stored.workflow_id != self.workflow.id:
                raise RunStateError(
                    f"run {run_id!r} belongs to workflow {stored.workflow_id!r}, "
                    f"not {self.workflow.id!r}"
                )
            self.watched.status = stored.status
            stopped = stored.status in ENDED_STATUSES or (
                stored.status == "suspended" and not self.until_end
            )
            if stopped:
                await _replay(storage, run_id, seq, out)
                return stored
            await storage.wait_for_events(run_id, offset=seq, max_wait=LOOK_AGAIN)


async def _unstoppable(work: Coroutine[Any, Any, int]) -> int:
    """Await `work` in a task of its own that a cancel of the awaiting task (``aclose``)
    does not stop: a submission is never left half done (a run claimed ``queued`` with no
    job for it), it just goes on unobserved."""
    task = asyncio.get_running_loop().create_task(work)
    _FOLLOWING.add(task)
    task.add_done_callback(_FOLLOWING.discard)
    return await asyncio.shield(task)


async def _replay(storage: Storage, run_id: str, seq: int, out: WorkflowStream) -> int:
    """Push the logged events from `seq` on; the number of the next one."""
    for logged in await storage.read_events(run_id, offset=seq):
        out.push(WorkflowEvent.from_dict(logged.event))
        seq = logged.seq + 1
    return seq


def stored_result(workflow: Workflow, stored: StoredRun) -> WorkflowResult:
    """The `WorkflowResult` of a run stored as suspended or ended."""
    snapshot = read_run_snapshot(stored)
    frame = snapshot.frame
    trace = snapshot.trace
    status = stored.status
    if status in ("pending", "queued", *EXECUTING_STATUSES):
        raise RunStateError(f"run {stored.run_id!r} is {status}: it has no result yet")
    steps = load_steps(workflow, frame)
    return WorkflowResult(
        status=cast(WorkflowStatus, status),  # checked above: suspended or ended
        run_id=stored.run_id,
        steps=steps,
        input=stored_value(workflow._input, frame.input),
        result=stored_value(workflow._output, snapshot.result) if status == "success" else None,
        error=StoredError.from_wire(snapshot.error) if status != "tripwire" else None,
        tripwire=_stored_tripwire(snapshot, steps) if status == "tripwire" else None,
        suspended=[list(path) for path in snapshot.suspended],
        suspend_payload=dict(snapshot.suspend_payload),
        state=stored_value(workflow._state, frame.state),
        usage=snapshot.usage,
        step_execution_path=list(frame.path),
        trace_id=trace.trace_id if trace is not None else None,
        span_id=trace.span_id if trace is not None else None,
    )


def _stored_tripwire(snapshot: RunSnapshot, steps: dict[str, StepResult]) -> TripwireInfo:
    """Why the stored run ended ``tripwire``. Snapshots written before the run's tripwire was
    stored have it on the tripped step's result, else only in the error's message."""
    if snapshot.tripwire is not None:
        return snapshot.tripwire
    for result in steps.values():
        if isinstance(result.error, TripwireError):
            return result.error.tripwire
    error = StoredError.from_wire(snapshot.error)
    return TripwireInfo(str(error) if error is not None else "tripwire")
