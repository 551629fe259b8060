"""`Run`: one run of a workflow — start, stream, resume, cancel, restart, time travel.

A run exists from ``workflow.create_run()``: it is stored as ``pending`` at once (in every store),
so it can be listed, fetched (``create_run(run_id=...)`` in another process) and started later by
id. Starting it claims it ``pending -> running`` in the store: of two callers starting the same run,
exactly one wins. Each execution (a start, a resume, a restart, a time travel) runs in its own
asyncio task and writes a snapshot when it begins, after every entry (a nested workflow's entries
too; durable stores), on suspend, when a sleep begins and at the end. Input, state and
request-context errors raise from `start`/`stream` before anything changes (the run stays pending);
step errors do not raise, they fail the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from spanflow._schema import check_storable, to_wire
from spanflow._sync import run_sync
from spanflow.context import RequestContext
from spanflow.errors import (
    InvalidInputError,
    RunClaimError,
    RunStateError,
    StorageError,
)
from spanflow.storage.base import ENDED_STATUSES, EXECUTING_STATUSES, RunStatus, StoredRun
from spanflow.tracing.context import StoredTraceContext
from spanflow.tracing.instrumentation import NOOP_SCOPE, RunStart
from spanflow.tracing.options import (
    TracingOptions,
    options_from_dict,
    options_to_dict,
    resolve_tracing_options,
)
from spanflow.usage import Usage
from spanflow.workflows._execution import (
    Execution,
    RunTrigger,
    fail_streams,
    new_owner,
    pending_run,
)
from spanflow.workflows._frame import Frame, Resume, RunControl, restore_frame
from spanflow.workflows._nested import run_nested
from spanflow.workflows._observe import observe
from spanflow.workflows._queued import QUEUED, Submission, queued_stream
from spanflow.workflows._resume_target import (
    StepRef,
    check_foreach_index,
    find_step,
    pick_suspended,
    resolve_label,
)
from spanflow.workflows._snapshot import (
    QueuedExecution,
    RunSnapshot,
    dump_run_snapshot,
    read_run_snapshot,
)
from spanflow.workflows._time_travel import TimeTravel, time_travel_frame
from spanflow.workflows.results import WorkflowResult, error_wire
from spanflow.workflows.stream import WorkflowStream

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["Run"]


_NEVER_STARTED: tuple[RunStatus, ...] = ("pending",)
_RESUMABLE: tuple[RunStatus, ...] = ("suspended",)
_RESTARTABLE = EXECUTING_STATUSES
_CANCEL_ATTEMPTS = 4
_TIME_TRAVELLABLE: tuple[RunStatus, ...] = ("pending", "suspended", *ENDED_STATUSES)
"""A time travel replaces what the run did; only a run nobody is executing can have it."""


class Run:
    """One run of a committed workflow. Get one with ``await workflow.create_run()``."""

    def __init__(self, workflow: Workflow, stored: StoredRun) -> None:
        self.workflow = workflow
        self.run_id = stored.run_id
        self.resource_id = stored.resource_id
        self._stored = stored
        """The run as this object last stored or read it."""
        self._control: RunControl | None = None
        self._task: asyncio.Task[WorkflowResult] | None = None
        self._open_streams: list[WorkflowStream] = []
        """Streams opened with ``close_on_suspend=False``, waiting for the run to end."""

    @classmethod
    async def open(cls, workflow: Workflow, *, run_id: str | None, resource_id: str | None) -> Run:
        """The stored run with this id, or a new run stored as ``pending`` (see
        `Workflow.create_run`)."""
        storage = workflow.storage
        if run_id is not None:
            if not isinstance(run_id, str) or not run_id:
                raise InvalidInputError(f"run_id must be a non-empty string, got {run_id!r}")
            stored = await storage.get_run(run_id)
            if stored is not None:
                return cls(workflow, _owned_by(workflow, stored))
        new = pending_run(workflow, run_id or str(uuid.uuid4()), resource_id)
        try:
            await storage.insert_run(new)
        except RunClaimError:
            # Another caller created a run with this id between our look-up and our insert:
            # that run is the one this id names.
            again = await storage.get_run(new.run_id) if run_id is not None else None
            if again is None:
                raise
            return cls(workflow, _owned_by(workflow, again))
        return cls(workflow, new)

    @property
    def status(self) -> str:
        """``pending`` until started, then the live status while this object executes the run,
        else the status it was last stored with."""
        if self._control is not None:
            return self._control.status
        return self._stored.status

    # -- starting ---------------------------------------------------------------------------

    async def start(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """Run the workflow to its end (or suspension) and return the result.

        Raises:
            InvalidInputError: The input, initial state or request context is invalid (the run
                stays pending and can be started again).
            RunStateError: The run was started already: it is suspended (resume it) or has
                ended (create a new run, or `time_travel` it).
            RunClaimError: Another caller is executing the run, or started it first.
        """
        begun = self._begin(input_data, initial_state, request_context, tracing_options)
        if not self._in_process:
            return await self._queue_start(begun, until_end=False).result
        return await self._launch(begun, None)

    def stream(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        close_on_suspend: bool = True,
    ) -> WorkflowStream:
        """Start the run and return its live event stream (needs a running event loop).

        Raises as `start` does; losing the claim to another caller ends the stream with the
        `RunClaimError` instead.
        """
        begun = self._begin(input_data, initial_state, request_context, tracing_options)
        if not self._in_process:
            return self._queue_start(begun, until_end=not close_on_suspend)
        out = WorkflowStream(self)
        self._launch(begun, out)
        if not close_on_suspend:
            self._open_streams.append(out)
        return out

    def start_sync(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """`start` for scripts; refuses to run inside a running event loop."""
        return run_sync(
            self.start(
                input_data,
                initial_state=initial_state,
                request_context=request_context,
                tracing_options=tracing_options,
            ),
            "start_sync",
        )

    @property
    def _in_process(self) -> bool:
        """Whether executions run here (`LocalExecutor`) or are queued for workers."""
        return self.workflow.executor.in_process

    def _begin(
        self,
        input_data: Any,
        initial_state: Any,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
    ) -> _Begin:
        """A start's input, state and request context, checked (raises before anything
        changes: the run stays pending)."""
        self._check_startable()
        wf = self.workflow
        input_value, state = self._start_values(input_data, initial_state)
        check_storable(input_value, what=f"input of workflow '{wf.id}'")
        check_storable(state, what=f"initial state of workflow '{wf.id}'")
        context = RequestContext.coerce(request_context)
        context_wire = context.to_dict()  # raises on values that cannot be stored
        if wf._request_context is not None:
            wf._request_context.validate(
                context_wire, what=f"request context of workflow '{wf.id}'"
            )
        _check_tracing_options(tracing_options)
        return _Begin(input_value, state, context, tracing_options)

    def _start_values(self, input_data: Any, initial_state: Any) -> tuple[Any, Any]:
        """A start's input and initial state (``{}`` when none), validated by the workflow's
        schemas: given by the caller, or as stored with a queued start."""
        wf = self.workflow
        input_value = input_data
        if wf._input is not None:
            input_value = wf._input.validate(input_data, what=f"input of workflow '{wf.id}'")
        state = {} if initial_state is None else initial_state
        if wf._state is not None:
            state = wf._state.validate(state, what=f"initial state of workflow '{wf.id}'")
        return input_value, state

    def _launch(
        self, begun: _Begin, out: WorkflowStream | None, from_status: tuple[RunStatus, ...] = ()
    ) -> asyncio.Task[WorkflowResult]:
        wf = self.workflow
        context = begun.request_context
        control = RunControl(self.run_id, wf.id, self.resource_id, context, run_nested=run_nested)
        control.sinks = (out.sink,) if out is not None else ()
        self._control = control
        frame = Frame(wf, control, NOOP_SCOPE, begun.input, begun.state)
        start = RunStart(
            wf.id,
            self.run_id,
            self.resource_id,
            begun.input,
            context,
            begun.options,
            workflow_metadata=wf.metadata,
        )
        coro = self._execute_claimed(frame, start, out, from_status or _NEVER_STARTED, "start")
        return self._spawn(coro, out, "run")

    def _queue_start(self, begun: _Begin, *, until_end: bool) -> WorkflowStream:
        queued = QueuedExecution(
            op="start",
            input=to_wire(begun.input),
            state=to_wire(begun.state),
            tracing=_options_wire(begun.options, parent=False),
            previous_status="pending",
        )
        return self._queue(queued, _NEVER_STARTED, begun.request_context, begun.options, until_end)

    def _queue(
        self,
        queued: QueuedExecution,
        from_status: tuple[RunStatus, ...],
        request_context: RequestContext | None,
        tracing_options: TracingOptions | None,
        until_end: bool,
    ) -> WorkflowStream:
        """Hand the execution to the workflow's queued executor; the stream follows the run's
        log as a worker executes it."""
        submission = self._submission(queued, from_status, request_context, tracing_options)
        return queued_stream(submission, until_end=until_end, on_stored=self._keep)

    def _submission(
        self,
        queued: QueuedExecution,
        from_status: tuple[RunStatus, ...],
        request_context: RequestContext | None,
        tracing_options: TracingOptions | None,
    ) -> Submission:
        return Submission(
            self.workflow,
            self.run_id,
            queued,
            from_status,
            request_context,
            tracing_options,
            self._keep,
        )

    def _check_startable(self) -> None:
        """Refuse to start a run that was started already, saying what to do instead.

        Mastra starts a suspended run again under the same id, from the beginning; a run
        here is started once: a suspended run is resumed, an ended one stays as it ended.
        """
        task = self._task
        if task is not None and not task.done():
            raise RunStateError(
                f"run {self.run_id!r} was already started and is executing here; wait for it"
            )
        status = self.status
        if status == "pending":
            return
        prefix = f"run {self.run_id!r} was already started"
        if status == "suspended":
            raise RunStateError(
                f"{prefix} and is suspended: resume it with run.resume(...) (start would run "
                f"it again from the beginning)"
            )
        if status in (*_RESTARTABLE, "queued"):
            doing = (
                "a worker will execute it"
                if status == "queued"
                else "another caller is executing it"
            )
            raise RunClaimError(
                f"{prefix} and is {status}: {doing}; observe it with "
                f"workflow.observe(...), or create a new run"
            )
        raise RunStateError(
            f"{prefix} and has ended ({status}): create a new run to run the workflow again, "
            f"or re-execute this one from a step with run.time_travel(...)"
        )

    # -- resuming ---------------------------------------------------------------------------

    async def resume(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | None = None,
        label: str | None = None,
        foreach_index: int | None = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """Continue a suspended run with `resume_data` for the suspended step.

        `step` (a step, an id, or a path ``"outer.inner"``) or `label` (the `resume_label` the
        step suspended with) picks which suspended step; omitted, the single suspended step is
        used. `label` and `step` together must name the same step. Raises `RunStateError` if
        the run is not suspended, `StepNotFoundError` for a step or label that is not (or not
        uniquely) suspended.

        If this run object is still executing (typically: a stream consumer resumes as soon as
        it sees ``workflow-step-suspended``, while the run is still storing its snapshot), the
        execution is awaited first.
        """
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            await asyncio.wait([task])
        was_suspended = self._stored.status == "suspended"
        await self._refresh()
        stored = self._stored
        if was_suspended and stored.status != "suspended":
            # Suspended when this object last looked, not any more: another resumer (another
            # Run object, maybe another process) claimed it in between.
            raise RunClaimError(
                f"run {self.run_id!r} was resumed by another caller first "
                f"(it is {stored.status} now)"
            )
        plan = self._plan_resume(resume_data, _Target(step, label, foreach_index))
        if not self._in_process:
            out = self._queue_resume(plan, request_context, tracing_options, until_end=False)
            return await out.result
        return await self._launch_resume(plan, request_context, tracing_options, None)

    def resume_stream(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | None = None,
        label: str | None = None,
        foreach_index: int | None = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        close_on_suspend: bool = True,
    ) -> WorkflowStream:
        """`resume` with a live event stream (checks against the run as last loaded)."""
        plan = self._plan_resume(resume_data, _Target(step, label, foreach_index))
        if not self._in_process:
            until_end = not close_on_suspend
            return self._queue_resume(plan, request_context, tracing_options, until_end=until_end)
        out = WorkflowStream(self)
        self._launch_resume(plan, request_context, tracing_options, out)
        if not close_on_suspend:
            self._open_streams.append(out)
        return out

    def resume_sync(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | None = None,
        label: str | None = None,
        foreach_index: int | None = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """`resume` for scripts; refuses to run inside a running event loop."""
        return run_sync(
            self.resume(
                resume_data,
                step=step,
                label=label,
                foreach_index=foreach_index,
                request_context=request_context,
                tracing_options=tracing_options,
            ),
            "resume_sync",
        )

    def _plan_resume(self, resume_data: Any, target: _Target) -> _ResumePlan:
        """Which suspended step a resume continues, and its resume data, checked against the
        run as last loaded (raises before anything changes)."""
        if self._task is not None and not self._task.done():
            raise RunStateError(f"run {self.run_id!r} is executing; wait for it before resuming")
        stored = self._stored
        if stored.status == "pending":
            raise RunStateError(f"run {self.run_id!r} was never started, so it cannot be resumed")
        if stored.status in (*_RESTARTABLE, "queued"):
            raise RunClaimError(
                f"run {self.run_id!r} is {stored.status}: another caller is executing it"
            )
        if stored.status != "suspended":
            raise RunStateError(
                f"run {self.run_id!r} is {stored.status}, not suspended: nothing to resume"
            )
        snapshot = read_run_snapshot(stored)
        step, foreach_index = target.step, target.foreach_index
        if target.label is not None:
            step, foreach_index = resolve_label(
                self.run_id, snapshot, target.label, step, foreach_index
            )
        path = pick_suspended(self.run_id, snapshot.suspended, step)
        resume_data = self._resume_value(path, resume_data)
        check_foreach_index(self.workflow, snapshot, path, foreach_index)
        return _ResumePlan(snapshot, Resume(path, resume_data, foreach_index))

    def _resume_value(self, path: list[str], resume_data: Any) -> Any:
        """`resume_data` validated by the step's resume schema, and storable."""
        schema = getattr(find_step(self.workflow, path), "_resume", None)
        if schema is not None:
            resume_data = schema.validate(
                resume_data, what=f"resume data of step '{'.'.join(path)}'"
            )
        check_storable(resume_data, what=f"resume data of step '{'.'.join(path)}'")
        return resume_data

    def _launch_resume(
        self,
        plan: _ResumePlan,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
        out: WorkflowStream | None,
        from_status: tuple[RunStatus, ...] = _RESUMABLE,
    ) -> asyncio.Task[WorkflowResult]:
        control = self._continued_control(plan.snapshot, request_context, tracing_options, out)
        self._control = control
        resume = plan.resume
        start = RunStart(
            self.workflow.id,
            self.run_id,
            self.resource_id,
            resume.data,
            control.request_context,
            tracing_options,
            resumed=True,
            stored_trace=plan.snapshot.trace,
            workflow_metadata=self.workflow.metadata,
        )
        coro = self._execute_resume(resume, start, out, control, from_status)
        return self._spawn(coro, out, "resume")

    def _queue_resume(
        self,
        plan: _ResumePlan,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
        *,
        until_end: bool,
    ) -> WorkflowStream:
        context = None
        if request_context is not None:
            context = RequestContext.coerce(request_context)
            context.to_dict()  # raises on values that cannot be stored
        _check_tracing_options(tracing_options)
        resume = plan.resume
        queued = QueuedExecution(
            op="resume",
            resume_path=list(resume.path),
            resume_data=to_wire(resume.data),
            foreach_index=resume.foreach_index,
            tracing=_options_wire(tracing_options, parent=True),
            previous_status="suspended",
        )
        return self._queue(queued, _RESUMABLE, context, tracing_options, until_end)

    async def _execute_resume(
        self,
        resume: Resume,
        start: RunStart,
        out: WorkflowStream | None,
        control: RunControl,
        from_status: tuple[RunStatus, ...],
    ) -> WorkflowResult:
        try:
            claimed = await self._claim(from_status)
            self._stored = claimed
            frame = await self._restored_frame(claimed, control)
        except BaseException as exc:
            self._control = None
            fail_streams(out, self._open_streams, exc)
            raise
        return await self._execute(frame, resume, start, out, fresh=False, trigger="resume")

    async def _restored_frame(self, claimed: StoredRun, control: RunControl) -> Frame:
        """The frame of the run as claimed. If it cannot be restored (its snapshot no longer
        fits the workflow as defined now), the run is stored ``failed`` saying why, rather
        than left running for a restart that would fail the same way."""
        try:
            snapshot = read_run_snapshot(claimed)
            return restore_frame(self.workflow, snapshot.frame, control, NOOP_SCOPE)
        except Exception as error:
            await self._fail_claimed(claimed, error)
            raise

    async def _fail_claimed(self, claimed: StoredRun, error: Exception) -> None:
        try:
            snapshot = read_run_snapshot(claimed)
        except StorageError:
            data = {**claimed.snapshot, "status": "failed", "error": error_wire(error)}
        else:
            snapshot.status, snapshot.error, snapshot.queued = "failed", error_wire(error), None
            data = dump_run_snapshot(snapshot)
        failed = replace(claimed, status="failed", snapshot=data, owner=None, lease_until=0.0)
        with contextlib.suppress(Exception):  # the error that got here is the one to report
            await self.workflow.storage.save_run(failed, if_owner=claimed.owner)
            self._stored = failed

    # -- time travel ------------------------------------------------------------------------

    async def time_travel(
        self,
        step: StepRef,
        input_data: Any = None,
        context: Mapping[str, Any] | None = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """Re-execute the run from `step`, a top-level step (or its id), and what follows it.

        The run keeps its id: this is how a failed (or any ended, or suspended, or not yet
        started) run is replayed from the step that failed. The step gets `input_data`, or
        else the output of the entry before it; the steps before it keep their stored results,
        or those given in `context` (``{step_id: output}``; a `StepResult` is taken as the
        step's result, so an earlier result's ``steps`` can be passed). The target and every
        step after it run again; the stored snapshot is replaced by this execution's. State
        is the one last stored unless `initial_state` is given; the request context is the
        stored one unless `request_context` is given. Events, spans and hooks are those of a
        new execution: its run span, named as the run's, continues the run's trace and carries
        ``spanflow.run.time_travel=<step>``.

        Raises:
            RunStateError: The run is running or waiting (here or in another process).
            RunClaimError: Another caller started executing the run first.
            StepNotFoundError: `step` is not a top-level step of the workflow.
            InvalidInputError: `input_data`, `context` or `initial_state` does not fit its
                schema, `step` is inside a nested workflow, or a step before it has no
                successful result (stored or in `context`).
        """
        if self._task is not None and not self._task.done():
            raise RunStateError(f"run {self.run_id!r} is executing here; wait for it first")
        await self._refresh()
        travel = TimeTravel(step, input_data, context, initial_state)
        task = self._launch_time_travel(travel, request_context, tracing_options, None)
        return await task

    def time_travel_stream(
        self,
        step: StepRef,
        input_data: Any = None,
        context: Mapping[str, Any] | None = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        close_on_suspend: bool = True,
    ) -> WorkflowStream:
        """`time_travel` with a live event stream (checks against the run as last loaded)."""
        out = WorkflowStream(self)
        travel = TimeTravel(step, input_data, context, initial_state)
        self._launch_time_travel(travel, request_context, tracing_options, out)
        if not close_on_suspend:
            self._open_streams.append(out)
        return out

    def time_travel_sync(
        self,
        step: StepRef,
        input_data: Any = None,
        context: Mapping[str, Any] | None = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """`time_travel` for scripts; refuses to run inside a running event loop."""
        return run_sync(
            self.time_travel(
                step,
                input_data,
                context,
                initial_state=initial_state,
                request_context=request_context,
                tracing_options=tracing_options,
            ),
            "time_travel_sync",
        )

    def _launch_time_travel(
        self,
        travel: TimeTravel,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
        out: WorkflowStream | None,
    ) -> asyncio.Task[WorkflowResult]:
        if self._task is not None and not self._task.done():
            raise RunStateError(f"run {self.run_id!r} is executing here; wait for it first")
        stored = self._stored
        if stored.status not in _TIME_TRAVELLABLE:
            raise RunStateError(
                f"run {self.run_id!r} is {stored.status}: a run that is executing cannot time "
                f"travel; wait for it to end (or cancel it) first"
            )
        snapshot = read_run_snapshot(stored)
        control = self._continued_control(snapshot, request_context, tracing_options, out)
        control.usage = Usage()  # the usage of this execution: what it replaces is gone
        frame, target = time_travel_frame(self.workflow, self.run_id, snapshot, travel, control)
        self._control = control
        start = RunStart(
            self.workflow.id,
            self.run_id,
            self.resource_id,
            frame.input,
            control.request_context,
            tracing_options,
            stored_trace=snapshot.trace,
            time_travel=target,
            workflow_metadata=self.workflow.metadata,
        )

        async def claimed_frame(claimed: StoredRun) -> Frame:
            if claimed.snapshot == stored.snapshot:
                return frame
            # Saved again between our read and our claim (another time travel that ended
            # the same way): travel from what is stored now, or put the run back as it was.
            try:
                again = read_run_snapshot(claimed)
                return time_travel_frame(self.workflow, self.run_id, again, travel, control)[0]
            except BaseException:
                await self.workflow.storage.save_run(replace(claimed, status=stored.status))
                raise

        coro = self._execute_claimed(
            frame, start, out, (stored.status,), "time_travel", claimed_frame
        )
        return self._spawn(coro, out, "time-travel")

    # -- cancel / restart -------------------------------------------------------------------

    def observe(self, offset: int = 0) -> WorkflowStream:
        """Follow this run from its stored event log (`Workflow.observe`): its events from
        number `offset`, then live ones, until it is suspended or ended."""
        return observe(self.workflow, self.run_id, offset)

    async def discard(self) -> bool:
        """Delete this run if it was never started (still ``pending``); ``True`` if it was.

        For callers that create a run only to start it at once (the CLI, a workflow used as a
        tool): when the start is refused (invalid input), the pending run would stay behind
        with nobody to start it. A run that has started, here or in another process, is kept.
        """
        if self._task is not None:
            return False
        return await self.workflow.storage.delete_run(self.run_id, if_status=_NEVER_STARTED)

    async def cancel(self) -> None:
        """Cancel the run: stop scheduling entries, interrupt the running step, store ``canceled``.

        A pending, queued, suspended or waiting run that no process is executing is marked
        canceled in storage (a queued run's job then finds it canceled and does nothing). A run
        another process executes (a worker, under its live lease) is marked for cancelling
        (`Storage.request_cancel`), and this waits until that process stopped it: its executor
        sees the mark at its next entry boundary (the checkpoint it writes) or lease renewal,
        whichever comes first, interrupts the running step as a local cancel does, and stores
        ``canceled``. Should the run suspend before its executor saw the mark, it is canceled
        here once suspended.
        """
        task = self._task
        if task is not None and not task.done():
            assert self._control is not None
            self._control.request_cancel()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        for _ in range(_CANCEL_ATTEMPTS):  # the run may move on between a read and a claim
            await self._refresh()
            if self._stored.status in ENDED_STATUSES or await self._cancel_stored():
                return
        raise RunClaimError(
            f"run {self.run_id!r} could not be canceled: it kept changing status "
            f"(last {self._stored.status})"
        )

    async def _cancel_stored(self) -> bool:
        """Cancel the run as last read; ``False`` if it changed meanwhile (read it again)."""
        stored = self._stored
        # Read before claiming: a snapshot this spanflow cannot read (a newer version, damaged)
        # must leave the run exactly as it was, not a canceled row whose snapshot says otherwise.
        try:
            snapshot = read_run_snapshot(stored)
        except StorageError as error:
            raise StorageError(f"{error} (not canceled: the run is left {stored.status})") from None
        storage = self.workflow.storage
        try:
            claimed = await storage.claim_run(
                self.run_id, from_status=(stored.status,), to_status="canceled"
            )
        except RunClaimError:
            # Executed by another process under a live lease: ask it to stop, and wait.
            if await storage.request_cancel(self.run_id) is not None:
                await self._await_remote_stop()
            return False
        if claimed.snapshot != stored.snapshot:  # saved again between the read and the claim
            snapshot = read_run_snapshot(claimed)
        snapshot.status = "canceled"
        snapshot.queued = None
        claimed.snapshot = dump_run_snapshot(snapshot)
        await storage.save_run(claimed)
        self._stored = claimed
        self._control = None
        return True

    async def _await_remote_stop(self) -> None:
        """Wait until no process executes the run any more (its executor stopped it, or died
        and let its lease run out: a restart then finds the mark and cancels it)."""
        pause = 0.02
        while True:
            stored = await self.workflow.storage.get_run(self.run_id)
            if stored is None or stored.status not in EXECUTING_STATUSES:
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    def cancel_sync(self) -> None:
        """`cancel` for scripts; refuses to run inside a running event loop."""
        run_sync(self.cancel(), "cancel_sync")

    async def restart(
        self,
        *,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """Re-drive a run that a crashed process left ``running`` (or ``waiting``).

        Execution continues from the last snapshot: entries whose results were stored are not
        run again; the entry that was in progress when the process died runs again from its
        start, except a nested workflow run as a step, which goes on from its last completed
        inner entry. A run still executed by a live process is refused with `RunClaimError`:
        its executor renews a lease on it (``workflow.lease_seconds``), and only a run whose
        lease ran out (its process died) or was let go (its process shut down) can be claimed.
        Of concurrent restarts exactly one wins. Raises `RunStateError` for a run that is not
        running or waiting.
        """
        task = await self.begin_restart(
            request_context=request_context, tracing_options=tracing_options
        )
        return await task

    async def begin_restart(
        self,
        *,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> asyncio.Task[WorkflowResult]:
        """`restart` up to the claim: the run is claimed (or this raises, as `restart` does)
        when it returns the task that executes it, which the caller may await or leave (the
        HTTP server's fire-and-forget ``restart`` answers only once the claim is won)."""
        if self._task is not None and not self._task.done():
            raise RunStateError(f"run {self.run_id!r} is executing here; nothing to restart")
        await self._refresh()
        stored = self._stored
        if stored.status == "pending":
            raise RunStateError(
                f"run {self.run_id!r} was never started, so it cannot be restarted (start it)"
            )
        if stored.status not in _RESTARTABLE:
            raise RunStateError(
                f"run {self.run_id!r} is {stored.status}, not running: only a run left running "
                f"by a crashed process can be restarted"
                + (" (resume a suspended run instead)" if stored.status == "suspended" else "")
            )
        snapshot = read_run_snapshot(stored)
        control = self._continued_control(snapshot, request_context, tracing_options, None)
        if not self._in_process:
            context = None if request_context is None else control.request_context
            offset = await self._queue_restart(context, tracing_options)
            out = observe(self.workflow, self.run_id, offset, on_stored=self._keep)
            return asyncio.get_running_loop().create_task(
                _outcome(out), name=f"spanflow-restart-{self.run_id}"
            )
        if snapshot.queued is not None and snapshot.queued.op != "restart":
            # A queued start or resume whose worker died before its first checkpoint: do it
            # again, rather than continue from a snapshot that does not know of it.
            return await self._launch_queued(snapshot, _RESTARTABLE)
        return await self._restart_claimed(control, tracing_options, _RESTARTABLE)

    async def _queue_restart(
        self,
        request_context: RequestContext | None = None,
        tracing_options: TracingOptions | None = None,
        *,
        parent: StoredTraceContext | None = None,
    ) -> int:
        """Queue a restart of this run (left running or waiting under a lapsed lease) for the
        workflow's queued executor; the number of the run's next logged event. A worker's
        lease recovery calls it with `parent`, the run's own span, to publish under.

        Raises:
            RunClaimError: The run's lease is live, or another caller queued it first.
        """
        queued = QueuedExecution(
            op="restart",
            tracing=_options_wire(tracing_options, parent=True),
            previous_status=self._stored.status,
        )
        submission = self._submission(queued, _RESTARTABLE, request_context, tracing_options)
        submission.parent = parent
        return await submission.submit()

    def _keep(self, stored: StoredRun) -> None:
        """Keep the run as a queued execution or its observer last stored or read it."""
        self._stored = stored

    async def _restart_claimed(
        self,
        control: RunControl,
        tracing_options: TracingOptions | None,
        from_status: tuple[RunStatus, ...],
    ) -> asyncio.Task[WorkflowResult]:
        """Claim the run (``from_status -> running``) and execute it from its snapshot."""
        claimed = await self._claim(from_status)
        self._stored = claimed
        self._control = control
        snapshot = read_run_snapshot(claimed)
        frame = await self._restored_frame(claimed, control)
        start = RunStart(
            self.workflow.id,
            self.run_id,
            self.resource_id,
            frame.input,
            control.request_context,
            tracing_options,
            resumed=True,
            stored_trace=snapshot.trace,
            workflow_metadata=self.workflow.metadata,
        )
        coro = self._execute(frame, None, start, None, fresh=False, trigger="restart")
        return self._spawn(coro, None, "restart")

    def restart_sync(
        self,
        *,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """`restart` for scripts; refuses to run inside a running event loop."""
        return run_sync(
            self.restart(request_context=request_context, tracing_options=tracing_options),
            "restart_sync",
        )

    # -- a worker's half of a queued execution -----------------------------------------------

    async def _launch_queued(
        self, snapshot: RunSnapshot, from_status: tuple[RunStatus, ...] = QUEUED
    ) -> asyncio.Task[WorkflowResult]:
        """Execute the queued execution stored with this run (`jobs.execute_job`, on a worker):
        claim the run (``queued -> running``) and go on as its caller asked. Input, state and
        resume data are validated again from their stored JSON, so a step sees the types it
        would see in the caller's process."""
        queued = snapshot.queued
        if queued is None:
            raise RunStateError(f"run {self.run_id!r} is queued without an execution to run")
        options = None if queued.tracing is None else options_from_dict(queued.tracing)
        _check_tracing_options(options)
        if queued.op == "start":
            input_value, state = self._start_values(queued.input, queued.state)
            context = RequestContext.coerce(snapshot.request_context)
            begun = _Begin(input_value, state, context, options)
            return self._launch(begun, None, from_status)
        if queued.op == "resume":
            path = list(queued.resume_path)
            data = self._resume_value(path, queued.resume_data)
            plan = _ResumePlan(snapshot, Resume(path, data, queued.foreach_index))
            return self._launch_resume(plan, None, options, None, from_status)
        control = self._continued_control(snapshot, None, options, None)
        return await self._restart_claimed(control, options, from_status)

    # -- internals --------------------------------------------------------------------------

    def _continued_control(
        self,
        snapshot: RunSnapshot,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
        out: WorkflowStream | None,
    ) -> RunControl:
        """The control of an execution that goes on from `snapshot` (a resume, a restart, a
        time travel): the given request context, else the stored one, the usage counted so
        far, and events for `out` and every stream kept open."""
        context = RequestContext.coerce(
            request_context if request_context is not None else snapshot.request_context
        )
        context.to_dict()  # raises on values that cannot be stored
        _check_tracing_options(tracing_options)
        control = RunControl(
            self.run_id, self.workflow.id, self.resource_id, context, run_nested=run_nested
        )
        control.usage = replace(snapshot.usage)
        streams = [out] if out is not None else []
        streams += [s for s in self._open_streams if s is not out]
        control.sinks = tuple(s.sink for s in streams)
        return control

    async def _claim(self, from_status: Collection[RunStatus]) -> StoredRun:
        """Claim the stored run (``from_status -> running``) for an execution of this process,
        under a new owner and a lease of ``workflow.lease_seconds``."""
        return await self.workflow.storage.claim_run(
            self.run_id,
            from_status=from_status,
            to_status="running",
            owner=new_owner(),
            lease=self.workflow.lease_seconds,
        )

    async def _refresh(self) -> None:
        if self._task is not None and not self._task.done():
            return
        stored = await self.workflow.storage.get_run(self.run_id)
        if stored is not None:
            self._stored = stored

    def _spawn(
        self, coro: Coroutine[Any, Any, WorkflowResult], out: WorkflowStream | None, kind: str
    ) -> asyncio.Task[WorkflowResult]:
        """Run one execution in its own task."""
        task: asyncio.Task[WorkflowResult] = asyncio.get_running_loop().create_task(
            coro, name=f"spanflow-{kind}-{self.run_id}"
        )
        _hand_errors_to_stream(task, out)
        self._task = task
        return task

    async def _execute_claimed(
        self,
        frame: Frame,
        start: RunStart,
        out: WorkflowStream | None,
        from_status: tuple[RunStatus, ...],
        trigger: RunTrigger,
        claimed_frame: Callable[[StoredRun], Awaitable[Frame]] | None = None,
    ) -> WorkflowResult:
        """Claim the stored run (``from_status -> running``), then execute `frame` from where
        it stands: a start, or a time travel (`claimed_frame` gives the frame to execute for
        the run as claimed)."""
        try:
            claimed = await self._claim(from_status)
            self._stored = claimed
            if claimed_frame is not None:
                frame = await claimed_frame(claimed)
        except BaseException as exc:
            self._control = None
            fail_streams(out, self._open_streams, exc)
            raise
        return await self._execute(frame, None, start, out, fresh=True, trigger=trigger)

    async def _execute(
        self,
        frame: Frame,
        resume: Resume | None,
        start: RunStart,
        out: WorkflowStream | None,
        *,
        fresh: bool,
        trigger: RunTrigger,
    ) -> WorkflowResult:
        def stored(run: StoredRun) -> None:
            self._stored = run

        execution = Execution(
            self.workflow,
            self.run_id,
            self.resource_id,
            frame,
            start,
            out,
            self._open_streams,
            stored,
            self._stored.created_at,
            trigger,
            owner=self._stored.owner,
            lease_until=self._stored.lease_until,
            cancel_requested=self._stored.cancel_requested,
        )
        return await execution.execute(resume, fresh=fresh)


@dataclass(frozen=True, slots=True)
class _Begin:
    """A start's checked input, initial state, request context and tracing options."""

    input: Any
    state: Any
    request_context: RequestContext
    options: TracingOptions | None


@dataclass(frozen=True, slots=True)
class _ResumePlan:
    """A checked resume: the run's snapshot as loaded, and which step gets which data."""

    snapshot: RunSnapshot
    resume: Resume


def _options_wire(options: TracingOptions | None, *, parent: bool) -> dict[str, Any] | None:
    return None if options is None else options_to_dict(options, parent=parent)


async def _outcome(out: WorkflowStream) -> WorkflowResult:
    return await out.result


@dataclass(frozen=True, slots=True)
class _Target:
    """What a resume names: a step, a label, a foreach iteration (any of them may be absent)."""

    step: StepRef | None
    label: str | None
    foreach_index: int | None


def _owned_by(workflow: Workflow, stored: StoredRun) -> StoredRun:
    if stored.workflow_id != workflow.id:
        raise RunStateError(
            f"run {stored.run_id!r} belongs to workflow {stored.workflow_id!r}, not {workflow.id!r}"
        )
    return stored


def _hand_errors_to_stream(task: asyncio.Task[Any], out: WorkflowStream | None) -> None:
    """A streamed run reports a crash through its stream (iteration and ``await result``
    raise it), so nobody awaits the task itself: mark its exception as retrieved, or asyncio
    logs "Task exception was never retrieved" when the task is collected."""
    if out is not None:
        task.add_done_callback(lambda t: None if t.cancelled() else t.exception())


def _check_tracing_options(options: Any) -> None:
    if options is None:
        return
    if not isinstance(options, TracingOptions):
        raise InvalidInputError(
            f"tracing_options must be a TracingOptions, got {type(options).__name__}"
        )
    if options.strict:  # strict mode raises here, before the run starts; lenient mode logs
        resolve_tracing_options(options)
