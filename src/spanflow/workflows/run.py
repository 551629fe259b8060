"""`Run`: one execution of a workflow — start, stream, resume, cancel, restart.

A run executes in its own asyncio task. It writes a snapshot when it is created, after every
top-level entry, on suspend, when a sleep begins and at the end, so another process can resume
it (``create_run(run_id=...)``). Input, state and request-context errors raise from
`start`/`stream` before anything is stored; step errors do not raise, they fail the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from spanflow._sync import run_sync
from spanflow.context import RequestContext
from spanflow.errors import (
    InvalidInputError,
    RunClaimError,
    RunStateError,
    StorageError,
)
from spanflow.storage.base import RunStatus, StoredRun
from spanflow.tracing.instrumentation import NOOP_SCOPE, RunStart
from spanflow.tracing.options import TracingOptions, resolve_tracing_options
from spanflow.workflows._execution import Execution, fail_streams
from spanflow.workflows._frame import Frame, Resume, RunControl, restore_frame
from spanflow.workflows._nested import run_nested
from spanflow.workflows._resume_target import (
    StepRef,
    check_foreach_index,
    find_step,
    pick_suspended,
)
from spanflow.workflows._snapshot import RunSnapshot, dump_run_snapshot, read_run_snapshot
from spanflow.workflows.results import WorkflowResult
from spanflow.workflows.stream import WorkflowStream, chain_sinks

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["Run"]


_RESUMABLE: tuple[RunStatus, ...] = ("suspended",)
_RESTARTABLE: tuple[RunStatus, ...] = ("running", "waiting")


class Run:
    """One execution of a committed workflow. Get one with ``await workflow.create_run()``."""

    def __init__(
        self, workflow: Workflow, run_id: str, resource_id: str | None, stored: StoredRun | None
    ) -> None:
        self.workflow = workflow
        self.run_id = run_id
        self.resource_id = resource_id
        self._stored = stored
        self._control: RunControl | None = None
        self._task: asyncio.Task[WorkflowResult] | None = None
        self._open_streams: list[WorkflowStream] = []
        """Streams opened with ``close_on_suspend=False``, waiting for the run to end."""

    @classmethod
    async def open(cls, workflow: Workflow, *, run_id: str | None, resource_id: str | None) -> Run:
        """A new run, or the stored run with this id (see `Workflow.create_run`)."""
        stored = None
        if run_id is not None:
            if not isinstance(run_id, str) or not run_id:
                raise InvalidInputError(f"run_id must be a non-empty string, got {run_id!r}")
            stored = await workflow.storage.get_run(run_id)
            if stored is not None and stored.workflow_id != workflow.id:
                raise RunStateError(
                    f"run {run_id!r} belongs to workflow {stored.workflow_id!r}, "
                    f"not {workflow.id!r}"
                )
        if stored is not None:
            resource_id = stored.resource_id
        return cls(workflow, run_id or str(uuid.uuid4()), resource_id, stored)

    @property
    def status(self) -> str:
        """``pending`` before start, then the live or stored status."""
        if self._control is not None:
            return self._control.status
        if self._stored is not None:
            return self._stored.status
        return "pending"

    # -- starting ---------------------------------------------------------------------------

    async def start(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """Run the workflow to its end (or suspension) and return the result."""
        task = self._launch(input_data, initial_state, request_context, tracing_options, None)
        return await task

    def stream(
        self,
        input_data: Any = None,
        *,
        initial_state: Any = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        close_on_suspend: bool = True,
    ) -> WorkflowStream:
        """Start the run and return its live event stream (needs a running event loop)."""
        out = WorkflowStream(self)
        self._launch(input_data, initial_state, request_context, tracing_options, out)
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

    def _launch(
        self,
        input_data: Any,
        initial_state: Any,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
        out: WorkflowStream | None,
    ) -> asyncio.Task[WorkflowResult]:
        if self._stored is not None or self._task is not None:
            raise RunStateError(
                f"run {self.run_id!r} was already started; create a new run to start again "
                f"(or resume/restart this one)"
            )
        wf = self.workflow
        input_value = (
            wf._input.validate(input_data, what=f"input of workflow '{wf.id}'")
            if wf._input is not None
            else input_data
        )
        if wf._state is not None:
            state = wf._state.validate(
                {} if initial_state is None else initial_state,
                what=f"initial state of workflow '{wf.id}'",
            )
        else:
            state = {} if initial_state is None else initial_state
        context = RequestContext.coerce(request_context)
        context_wire = context.to_dict()  # raises on values that cannot be stored
        if wf._request_context is not None:
            wf._request_context.validate(
                context_wire, what=f"request context of workflow '{wf.id}'"
            )
        _check_tracing_options(tracing_options)
        control = RunControl(self.run_id, wf.id, self.resource_id, context, run_nested=run_nested)
        control.sink = out.push if out is not None else None
        self._control = control
        frame = Frame(wf, control, NOOP_SCOPE, input_value, state)
        start = RunStart(
            wf.id, self.run_id, self.resource_id, input_value, context, tracing_options
        )
        task = asyncio.get_running_loop().create_task(
            self._execute(frame, None, start, out, new=True), name=f"spanflow-run-{self.run_id}"
        )
        _hand_errors_to_stream(task, out)
        self._task = task
        return task

    # -- resuming ---------------------------------------------------------------------------

    async def resume(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | None = None,
        foreach_index: int | None = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """Continue a suspended run with `resume_data` for the suspended step.

        `step` (a step, an id, or a path ``"outer.inner"``) picks which suspended step; omitted,
        the single suspended step is used. Raises `RunStateError` if the run is not suspended
        and `StepNotFoundError` for a step that is not (or not uniquely) suspended.

        If this run object is still executing (typically: a stream consumer resumes as soon as
        it sees ``workflow-step-suspended``, while the run is still storing its snapshot), the
        execution is awaited first.
        """
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            await asyncio.wait([task])
        was_suspended = self._stored is not None and self._stored.status == "suspended"
        await self._refresh()
        stored = self._stored
        if was_suspended and stored is not None and stored.status != "suspended":
            # Suspended when this object last looked, not any more: another resumer (another
            # Run object, maybe another process) claimed it in between.
            raise RunClaimError(
                f"run {self.run_id!r} was resumed by another caller first "
                f"(it is {stored.status} now)"
            )
        task = self._launch_resume(
            resume_data, step, foreach_index, request_context, tracing_options, None
        )
        return await task

    def resume_stream(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | None = None,
        foreach_index: int | None = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        close_on_suspend: bool = True,
    ) -> WorkflowStream:
        """`resume` with a live event stream (checks against the run as last loaded)."""
        out = WorkflowStream(self)
        self._launch_resume(resume_data, step, foreach_index, request_context, tracing_options, out)
        if not close_on_suspend:
            self._open_streams.append(out)
        return out

    def resume_sync(
        self,
        resume_data: Any = None,
        *,
        step: StepRef | None = None,
        foreach_index: int | None = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> WorkflowResult:
        """`resume` for scripts; refuses to run inside a running event loop."""
        return run_sync(
            self.resume(
                resume_data,
                step=step,
                foreach_index=foreach_index,
                request_context=request_context,
                tracing_options=tracing_options,
            ),
            "resume_sync",
        )

    def _launch_resume(
        self,
        resume_data: Any,
        step: StepRef | None,
        foreach_index: int | None,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
        out: WorkflowStream | None,
    ) -> asyncio.Task[WorkflowResult]:
        if self._task is not None and not self._task.done():
            raise RunStateError(f"run {self.run_id!r} is executing; wait for it before resuming")
        stored = self._stored
        if stored is None:
            raise RunStateError(f"run {self.run_id!r} was never started, so it cannot be resumed")
        if stored.status in ("running", "waiting"):
            raise RunClaimError(
                f"run {self.run_id!r} is {stored.status}: another caller is executing it"
            )
        if stored.status != "suspended":
            raise RunStateError(
                f"run {self.run_id!r} is {stored.status}, not suspended: nothing to resume"
            )
        snapshot = read_run_snapshot(stored)
        path = pick_suspended(self.run_id, snapshot.suspended, step)
        target = find_step(self.workflow, path)
        schema = getattr(target, "_resume", None)
        if schema is not None:
            resume_data = schema.validate(
                resume_data, what=f"resume data of step '{'.'.join(path)}'"
            )
        check_foreach_index(self.workflow, snapshot, path, foreach_index)
        control = self._continued_control(snapshot, request_context, tracing_options)
        context = control.request_context
        control.sink = chain_sinks(
            out.push if out is not None else None,
            *(s.push for s in self._open_streams if s is not out),
        )
        self._control = control
        start = RunStart(
            self.workflow.id,
            self.run_id,
            self.resource_id,
            resume_data,
            context,
            tracing_options,
            resumed=True,
            stored_trace=snapshot.trace,
        )
        resume = Resume(path, resume_data, foreach_index)
        task = asyncio.get_running_loop().create_task(
            self._execute_resume(snapshot, resume, start, out, control),
            name=f"spanflow-resume-{self.run_id}",
        )
        _hand_errors_to_stream(task, out)
        self._task = task
        return task

    async def _execute_resume(
        self,
        snapshot: RunSnapshot,
        resume: Resume,
        start: RunStart,
        out: WorkflowStream | None,
        control: RunControl,
    ) -> WorkflowResult:
        try:
            claimed = await self.workflow.storage.claim_run(
                self.run_id, from_status=_RESUMABLE, to_status="running"
            )
            self._stored = claimed
            snapshot = read_run_snapshot(claimed)
            frame = restore_frame(self.workflow, snapshot.frame, control, NOOP_SCOPE)
        except BaseException as exc:
            control.status = self._stored.status if self._stored else "pending"
            fail_streams(out, self._open_streams, exc)
            raise
        return await self._execute(frame, resume, start, out, new=False)

    # -- cancel / restart -------------------------------------------------------------------

    async def cancel(self) -> None:
        """Cancel the run: stop scheduling entries, interrupt the running step, store ``canceled``.

        A suspended or waiting run that no process is executing is marked canceled in storage.
        """
        task = self._task
        if task is not None and not task.done():
            assert self._control is not None
            self._control.request_cancel()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        await self._refresh()
        stored = self._stored
        if stored is None or stored.status in ("success", "failed", "canceled"):
            return
        # Read before claiming: a snapshot this spanflow cannot read (a newer version, damaged)
        # must leave the run exactly as it was, not a canceled row whose snapshot says otherwise.
        try:
            snapshot = read_run_snapshot(stored)
        except StorageError as error:
            raise StorageError(f"{error} (not canceled: the run is left {stored.status})") from None
        claimed = await self.workflow.storage.claim_run(
            self.run_id, from_status=(stored.status,), to_status="canceled"
        )
        if claimed.snapshot != stored.snapshot:  # saved again between the read and the claim
            snapshot = read_run_snapshot(claimed)
        snapshot.status = "canceled"
        claimed.snapshot = dump_run_snapshot(snapshot)
        await self.workflow.storage.save_run(claimed)
        self._stored = claimed
        self._control = None

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
        start. Call it only for a run no live process is executing (the store cannot tell a
        dead executor from a slow one). Raises `RunStateError` for any other run.
        """
        if self._task is not None and not self._task.done():
            raise RunStateError(f"run {self.run_id!r} is executing here; nothing to restart")
        await self._refresh()
        stored = self._stored
        if stored is None:
            raise RunStateError(f"run {self.run_id!r} was never started, so it cannot be restarted")
        if stored.status not in _RESTARTABLE:
            raise RunStateError(
                f"run {self.run_id!r} is {stored.status}, not running: only a run left running "
                f"by a crashed process can be restarted"
                + (" (resume a suspended run instead)" if stored.status == "suspended" else "")
            )
        snapshot = read_run_snapshot(stored)
        control = self._continued_control(snapshot, request_context, tracing_options)
        context = control.request_context
        claimed = await self.workflow.storage.claim_run(
            self.run_id, from_status=_RESTARTABLE, to_status="running"
        )
        self._stored = claimed
        self._control = control
        snapshot = read_run_snapshot(claimed)
        frame = restore_frame(self.workflow, snapshot.frame, control, NOOP_SCOPE)
        start = RunStart(
            self.workflow.id,
            self.run_id,
            self.resource_id,
            frame.input,
            context,
            tracing_options,
            resumed=True,
            stored_trace=snapshot.trace,
        )
        task = asyncio.get_running_loop().create_task(
            self._execute(frame, None, start, None, new=False),
            name=f"spanflow-restart-{self.run_id}",
        )
        self._task = task
        return await task

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

    def _continued_control(
        self,
        snapshot: RunSnapshot,
        request_context: RequestContext | Mapping[str, Any] | None,
        tracing_options: TracingOptions | None,
    ) -> RunControl:
        """The control of a run that goes on from `snapshot` (a resume or a restart): the
        given request context, else the stored one, and the usage counted so far."""
        context = RequestContext.coerce(
            request_context if request_context is not None else snapshot.request_context
        )
        context.to_dict()  # raises on values that cannot be stored
        _check_tracing_options(tracing_options)
        control = RunControl(
            self.run_id, self.workflow.id, self.resource_id, context, run_nested=run_nested
        )
        control.usage = replace(snapshot.usage)
        return control

    async def _refresh(self) -> None:
        if self._task is not None and not self._task.done():
            return
        stored = await self.workflow.storage.get_run(self.run_id)
        if stored is not None:
            self._stored = stored

    # -- execution --------------------------------------------------------------------------

    async def _execute(
        self,
        frame: Frame,
        resume: Resume | None,
        start: RunStart,
        out: WorkflowStream | None,
        *,
        new: bool,
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
            self._stored.created_at if self._stored is not None else 0.0,
        )
        return await execution.execute(resume, new=new)


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
