"""One execution of a run (a start, a resume, a restart, a time travel): drive, checkpoint, log the
events, call the run hooks, finish.

An `Execution` drives the run's top-level frame under the run span, writes the run's snapshot when
it begins from a frame of its own (a start, a time travel), after every entry (a nested workflow's
entries too, through the top-level frame; to durable stores), when a sleep begins and at the end,
calls the workflow's run hooks, and ends the streams that watch it. `Run` decides whether an
execution may begin, claims the stored run and prepares its frame; this module is what happens once
it has. `pending_run` is the run as ``create_run`` stores it, before any execution.

Every event goes to the run's event log too (`_event_log.EventLog`, when the store keeps logs):
each snapshot write carries the events emitted before it, and the last one ``workflow-finish``.

The run is claimed with an owner (`new_owner`: host, pid and a random part) and a lease of
``workflow.lease_seconds``; while it executes, the execution renews the lease every third of
that, and every snapshot it writes keeps owner and lease. A run whose lease is live cannot be
claimed again (two concurrent restarts: one wins); one whose owner died can be, once the lease
ran out. If a renewal finds the run owned by another (its lease ran out while this process
stalled), the execution logs it and stops renewing.

Hooks (``create_workflow(on_start=, on_finish=, on_error=)``) are called in the run's task with the
run span current (spans they open nest under it): ``on_start`` once the execution has begun (after
``workflow-start``), ``on_finish`` and then ``on_error`` (failed runs only) once its end is stored
and before any stream learns it (so ``await run.start()`` returns after them). A hook that raises is
logged (logger ``spanflow.hooks``) and recorded on the run span as an ``exception`` event with
``spanflow.hook=<name>``; the run's outcome never changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from spanflow._schema import to_wire
from spanflow.context import RequestContext
from spanflow.errors import RunClaimError
from spanflow.storage.base import EXECUTING_STATUSES, RunStatus, StoredRun
from spanflow.tracing.context import StoredTraceContext
from spanflow.tracing.instrumentation import RunStart
from spanflow.tracing.redaction import strip_credentials
from spanflow.workflows._drive import drive
from spanflow.workflows._event_log import EventLog
from spanflow.workflows._frame import (
    Frame,
    Outcome,
    Resume,
    finish_event,
    run_end_status,
    start_event,
    tripwire_of,
)
from spanflow.workflows._snapshot import FrameSnapshot, RunSnapshot, dump_run_snapshot
from spanflow.workflows.events import WorkflowCanceledPayload, WorkflowEvent
from spanflow.workflows.results import TripwireInfo, WorkflowResult, error_wire

if TYPE_CHECKING:
    from spanflow.workflows.stream import WorkflowStream
    from spanflow.workflows.workflow import RunHook, RunHookEvent, Workflow

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "Execution",
    "RunTrigger",
    "fail_streams",
    "new_owner",
    "pending_run",
]

logger = logging.getLogger("spanflow.hooks")
lease_logger = logging.getLogger("spanflow.lease")

DEFAULT_LEASE_SECONDS = 30.0
"""How long a claim on an executing run holds without renewal, unless the workflow says."""

_HOST = socket.gethostname()


def new_owner() -> str:
    """An owner id for one execution: ``host:pid:random`` (the random part from `random`, not
    `os.urandom`: it tells executions apart, it guards nothing)."""
    return f"{_HOST}:{os.getpid()}:{random.getrandbits(32):08x}"


RunTrigger = Literal["start", "resume", "restart", "time_travel"]
"""What began an execution of a run (`RunHookEvent.trigger`)."""


def pending_run(workflow: Workflow, run_id: str, resource_id: str | None) -> StoredRun:
    """A new run as ``create_run`` stores it: ``pending``, at the start of the workflow."""
    snapshot = RunSnapshot(status="pending", frame=FrameSnapshot(workflow_id=workflow.id))
    return StoredRun(run_id, workflow.id, "pending", dump_run_snapshot(snapshot), resource_id)


@dataclass(slots=True, eq=False)
class Execution:
    """One execution of a run, in the run's task."""

    workflow: Workflow
    run_id: str
    resource_id: str | None
    frame: Frame
    """The top-level frame: new, or restored from the stored snapshot."""
    start: RunStart
    out: WorkflowStream | None
    """The stream this execution was started for, if any."""
    open_streams: list[WorkflowStream]
    """The run's streams kept open through suspensions; updated in place."""
    on_stored: Callable[[StoredRun], None]
    """Told the run as stored at the end, before any stream learns the run ended."""
    created_at: float = 0.0
    """When the stored run was created."""
    trigger: RunTrigger = "start"
    trace: StoredTraceContext | None = field(default=None, init=False)
    """The run span's context. It never changes during an execution: computed once."""
    ended_hooks_called: bool = field(default=False, init=False)
    log: EventLog | None = field(default=None, init=False)
    """Writes the events to the run's event log (``None``: the store keeps none)."""
    owner: str | None = None
    """Who claimed the run for this execution (`new_owner`)."""
    lease_until: float = 0.0
    """Until when the claim holds (as the store set it); renewed while the run executes."""
    heartbeat: asyncio.TimerHandle | asyncio.Task[None] | None = field(default=None, init=False)
    """The first beat's timer, then the task renewing the lease."""
    lost: bool = field(default=False, init=False)
    """The run was claimed by another process (this one's lease ran out): write no more."""
    cancel_requested: bool = False
    """Another process asked for the run to be canceled (`Storage.request_cancel`): seen on
    the claim, on a checkpoint (the store says so on every write) or on a lease renewal."""
    task: asyncio.Task[Any] | None = field(default=None, init=False)
    """The run's task, which a cancel asked for elsewhere interrupts."""
    driving: bool = field(default=False, init=False)
    """Whether the frame is being driven (a cancel may interrupt it)."""

    async def execute(self, resume: Resume | None, *, fresh: bool) -> WorkflowResult:
        """Drive the frame to its end (or a suspension) and store how it ended.

        The run is claimed (``running``) before this is called. `fresh`: the frame was built
        for this execution (a start, a time travel), not loaded as stored: store it first, so
        that the stored run says what is running (its input, its trace).
        """
        frame, start, out = self.frame, self.start, self.out
        control = frame.run
        scope = self.workflow.instrumentation.start_run(start)
        frame.scope = scope
        if out is not None:
            out.trace_id, out.span_id = scope.trace_id, scope.span_id
        storage = self.workflow.storage
        self.trace = scope.persisted_context() or start.stored_trace
        if storage.event_log:
            self.log = EventLog(storage, self.run_id)
            control.sinks = (*control.sinks, self.log.append)

        async def checkpoint() -> None:
            await self._save(self._stored_run("running"))

        async def on_waiting() -> None:
            await self._save(self._stored_run("waiting"))

        # Per-entry checkpoints exist so a crash loses at most the running step: a store that
        # dies with the process gains nothing from them, and they are most of a long run's cost.
        frame.checkpoint = checkpoint if storage.durable else None
        control.on_waiting = on_waiting
        control.status = "running"
        self.task = asyncio.current_task()
        self._start_heartbeat()
        try:
            if fresh:
                await self._save(self._stored_run("running"))
            frame.emit(scope, start_event(frame))
            if self.cancel_requested:
                self._cancel_from_store()
            if self.workflow.on_start is not None:
                await self._call_hook(
                    "on_start", self.workflow.on_start, self._hook_event("running")
                )
            outcome = await self._drive(resume)
            return await self._finish(outcome)
        except BaseException as exc:
            control.status = "failed"
            if isinstance(exc, Exception):
                # The engine or the store failed, not a step. Record the run as failed if the
                # store still takes writes, rather than leave it "running" forever.
                await self._store_failure(exc)
                await self._call_ended_hooks("failed", None, exc)
            else:
                # A bare CancelledError is a dying loop or process: the run stays "running"
                # for a later restart, which its released lease allows at once.
                await self._release_lease()
            scope.end("failed", error=exc)
            fail_streams(out, self.open_streams, exc)
            raise
        finally:
            self._stop_heartbeat()
            if self.log is not None:
                await self.log.close()

    def _start_heartbeat(self) -> None:
        # A timer, not a task: most runs end before the first beat, and then cost one handle.
        if self.owner is not None:
            beat = self.workflow.lease_seconds / 3
            self.heartbeat = asyncio.get_running_loop().call_later(beat, self._beat)

    def _stop_heartbeat(self) -> None:
        heartbeat, self.heartbeat = self.heartbeat, None
        if heartbeat is not None:  # the timer, or the task
            heartbeat.cancel()

    def _beat(self) -> None:
        if self.owner is not None and self.heartbeat is not None:
            self.heartbeat = asyncio.get_running_loop().create_task(
                self._renew_lease(self.owner), name=f"spanflow-lease-{self.run_id}"
            )

    async def _release_lease(self) -> None:
        """Let the lease run out now (best effort), so another process may take the run over
        without waiting for it."""
        if self.owner is not None:
            with contextlib.suppress(BaseException):
                await self.workflow.storage.renew_lease(self.run_id, owner=self.owner, lease=0)

    async def _renew_lease(self, owner: str) -> None:
        """Renew the lease now and then every third of its length until the execution ends;
        a renewal that finds a cancel asked for cancels the run."""
        lease = self.workflow.lease_seconds
        storage = self.workflow.storage
        while True:
            try:
                renewed = await storage.renew_lease(self.run_id, owner=owner, lease=lease)
            except Exception as error:  # the store is away: try again at the next beat
                lease_logger.warning(
                    "spanflow: could not renew the lease of run %s: %s", self.run_id, error
                )
            else:
                if renewed is None:
                    lease_logger.warning(
                        "spanflow: run %s is no longer executed by %s (its lease ran out and "
                        "another process claimed it, or it was canceled); not renewing",
                        self.run_id,
                        owner,
                    )
                    return
                self.lease_until = renewed.until
                if renewed.cancel_requested:
                    self._cancel_from_store(interrupt=True)
            await asyncio.sleep(lease / 3)

    def _cancel_from_store(self, *, interrupt: bool = False) -> None:
        """A cancel asked for in another process: no more entries (``drive`` checks before
        each one), so the run ends ``canceled`` at its next entry boundary. `interrupt` (a
        lease renewal's finding, which may come in the middle of a long step or sleep) also
        interrupts the running step, as a local ``run.cancel()`` does, while the frame is
        still being driven (not once the end is being stored)."""
        control = self.frame.run
        if control.cancel_requested:
            return
        control.request_cancel()
        if interrupt and self.driving and self.task is not None and not self.task.done():
            self.task.cancel()

    async def _store_failure(self, error: Exception) -> None:
        """Store the run as failed with `error` (and a failed ``workflow-finish`` in its log);
        if even that cannot be written (the frame itself cannot be stored), keep the last
        snapshot stored and mark the run failed. Nothing is written if the run is no longer
        this execution's (`error` said so): it belongs to another process now."""
        if self.lost:
            return
        if self.log is not None:
            self.log.append(finish_event(self.frame, Outcome("failed", error=error), "failed"))
        try:
            await self._save(self._stored_run("failed", error=error_wire(error)))
        except RunClaimError:
            return  # another process owns the run now
        except Exception:
            with contextlib.suppress(Exception):
                await self.workflow.storage.claim_run(
                    self.run_id,
                    from_status=EXECUTING_STATUSES,
                    to_status="failed",
                    owner=self.owner,
                )

    async def _save(self, stored: StoredRun) -> None:
        """Write the run, with the events emitted since the last write, if it is still this
        execution's (`lost` once another process claimed it)."""
        storage = self.workflow.storage
        try:
            if self.log is not None:
                await self.log.save(stored, if_owner=self.owner)
            else:
                await storage.save_run(stored, if_owner=self.owner)
        except RunClaimError:
            self.lost = True
            raise
        if stored.cancel_requested and stored.status in EXECUTING_STATUSES:
            self._cancel_from_store()

    async def _drive(self, resume: Resume | None) -> Outcome:
        frame = self.frame
        scope = frame.scope
        token = scope.enter()  # user code outside steps (conditions, sleeps) nests here
        self.driving = True
        try:
            return await drive(frame, resume)
        except asyncio.CancelledError:
            if not frame.run.cancel_requested:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return Outcome("canceled")
        finally:
            self.driving = False
            scope.exit(token)

    def _stored_run(
        self,
        status: RunStatus,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        tripwire: TripwireInfo | None = None,
        suspended: list[list[str]] | None = None,
        suspend_payload: dict[str, Any] | None = None,
    ) -> StoredRun:
        """The run as stored now, with `status` and how it ended (if it did)."""
        control = self.frame.run
        snapshot = RunSnapshot(
            status=status,
            frame=self.frame.to_snapshot(),
            request_context=_storable_context(control.request_context),
            trace=self.trace,
            usage=control.usage,
            result=result,
            error=error,
            tripwire=tripwire,
            suspended=suspended or [],
            suspend_payload=suspend_payload or {},
        )
        executing = status in EXECUTING_STATUSES
        return StoredRun(
            self.run_id,
            self.workflow.id,
            status,
            dump_run_snapshot(snapshot),
            self.resource_id,
            self.created_at,
            owner=self.owner if executing else None,
            lease_until=self.lease_until if executing else 0.0,
        )

    async def _finish(self, outcome: Outcome) -> WorkflowResult:
        frame = self.frame
        control = frame.run
        scope = frame.scope
        status: Any = run_end_status(outcome)
        if status == "canceled":
            frame.emit(
                scope, WorkflowEvent("workflow-canceled", control.run_id, WorkflowCanceledPayload())
            )
        result = self._result(outcome, status)
        finish = finish_event(frame, outcome, status)
        if self.log is not None:
            self.log.append(finish)  # stored with the end, below; streams get it after hooks
        if status == "success":
            stored = self._stored_run(status, result=to_wire(result.result))
        elif status == "failed" and result.error is not None:
            stored = self._stored_run(status, error=error_wire(result.error))
        elif status == "tripwire" and outcome.error is not None:
            # The tripwire, for the result read back (``stored_result``) to be the live one; the
            # error too, for what shows a stored run's error (``runs show``, older spanflows).
            error = error_wire(outcome.error)
            stored = self._stored_run(status, error=error, tripwire=result.tripwire)
        elif status == "suspended":
            payload = to_wire(result.suspend_payload)
            stored = self._stored_run(status, suspended=result.suspended, suspend_payload=payload)
        else:
            stored = self._stored_run(status)
        try:
            await self._save(stored)
        except BaseException:
            if self.log is not None:
                self.log.discard(finish)  # the run did not end so: a failed finish replaces it
            raise
        self._stop_heartbeat()
        if self.log is not None:
            await self.log.close()  # before anyone learns the run ended (it may resume at once)
        self.on_stored(stored)
        control.status = status
        await self._call_ended_hooks(status, result, result.error)
        self._end_streams(result, status, finish)
        return result

    # -- hooks ------------------------------------------------------------------------------

    def _hook_event(
        self, status: str, result: WorkflowResult | None = None, error: BaseException | None = None
    ) -> RunHookEvent:
        # Imported here: the workflow module imports the run module, which imports this one.
        from spanflow.workflows.workflow import RunHookEvent

        return RunHookEvent(
            run_id=self.run_id,
            workflow_id=self.workflow.id,
            resource_id=self.resource_id,
            status=status,
            trigger=self.trigger,
            result=result.result if result is not None and status == "success" else None,
            error=error,
            usage=replace(self.frame.run.usage),
            workflow_result=result,
        )

    async def _call_ended_hooks(
        self, status: str, result: WorkflowResult | None, error: BaseException | None
    ) -> None:
        """``on_finish``, then ``on_error`` if the run failed; once per execution."""
        workflow = self.workflow
        if self.ended_hooks_called or (workflow.on_finish is None and workflow.on_error is None):
            return
        self.ended_hooks_called = True
        event = self._hook_event(status, result, error if status == "failed" else None)
        await self._call_hook("on_finish", workflow.on_finish, event)
        if status == "failed":
            await self._call_hook("on_error", workflow.on_error, event)

    async def _call_hook(self, name: str, hook: RunHook | None, event: RunHookEvent) -> None:
        """Call one hook (sync or async) with the run span current; what it raises is logged
        and recorded on the run span, never passed on."""
        if hook is None:
            return
        scope = self.frame.scope
        try:
            with scope.current():
                returned = hook(event)
                if inspect.isawaitable(returned):
                    await returned
        except Exception as error:
            logger.error(
                "spanflow: the %s hook of workflow %r raised for run %s; the run goes on as if "
                "it had not",
                name,
                self.workflow.id,
                self.run_id,
                exc_info=error,
            )
            scope.record_exception(error, {"spanflow.hook": name})

    def _result(self, outcome: Outcome, status: Any) -> WorkflowResult:
        frame = self.frame
        scope = frame.scope
        suspend_payload = {
            path[0]: frame.steps[path[0]].suspend_payload
            for path in outcome.suspended
            if path and path[0] in frame.steps
        }
        return WorkflowResult(
            status=status,
            run_id=self.run_id,
            steps=dict(frame.steps),
            input=frame.input,
            result=outcome.output if status == "success" else None,
            error=outcome.error if status == "failed" else None,
            tripwire=tripwire_of(outcome) if status == "tripwire" else None,
            suspended=[list(p) for p in outcome.suspended] if status == "suspended" else [],
            suspend_payload=suspend_payload if status == "suspended" else {},
            state=frame.state,
            usage=frame.run.usage,
            step_execution_path=list(frame.path),
            trace_id=scope.trace_id,
            span_id=scope.span_id,
        )

    def _end_streams(self, result: WorkflowResult, status: Any, finish: WorkflowEvent) -> None:
        # Streams opened with close_on_suspend=False stay open through a suspension (they get
        # no workflow-finish until the run really ends); every other stream closes now.
        scope = self.frame.scope
        streams = _streams(self.out, self.open_streams)
        kept = list(self.open_streams) if status == "suspended" else []
        closing = [s for s in streams if s not in kept]
        if closing or not kept:
            scope.record(finish)
            for stream in closing:
                stream.push(finish)
        scope.set_attribute("spanflow.run.status", status)
        scope.end(status, output=result.result, error=result.error)
        for stream in closing:
            stream.finish(result)
        self.open_streams[:] = kept


def fail_streams(
    out: WorkflowStream | None, open_streams: list[WorkflowStream], error: BaseException
) -> None:
    """End this execution's stream and every open one with `error` (`open_streams` empties)."""
    for stream in _streams(out, open_streams):
        stream.fail(error)
    open_streams.clear()


def _streams(
    out: WorkflowStream | None, open_streams: list[WorkflowStream]
) -> list[WorkflowStream]:
    """This execution's stream and every stream kept open through a suspension, once each."""
    return list(dict.fromkeys([*([out] if out is not None else []), *open_streams]))


def _storable_context(context: RequestContext) -> dict[str, Any]:
    return strip_credentials(context.to_dict())
