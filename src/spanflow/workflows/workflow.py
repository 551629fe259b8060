"""Workflows: the builder (`create_workflow`), the entries it records, and its run hooks.

Every builder method appends one entry and returns the workflow; `commit()` freezes it. The
entries are plain frozen dataclasses that the executor walks; a committed workflow is itself
usable as a step (a nested workflow). The workflow also keeps its runs' admin: listing,
counting and deleting stored runs, and the hooks (`RunHook`) called as its runs execute.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from spanflow._schema import Schema, schema_of
from spanflow._sync import run_sync
from spanflow.errors import RunStateError, WorkflowDefinitionError
from spanflow.storage.base import EXECUTING_STATUSES, IDLE_STATUSES, RunStatus
from spanflow.storage.memory import MemoryStorage
from spanflow.tracing.instrumentation import Instrumentation, default_instrumentation
from spanflow.usage import Usage
from spanflow.workflows._entries import (
    BranchEntry,
    ConditionContext,
    ConditionFunction,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    RetryConfig,
    SleepEntry,
    StepEntry,
)
from spanflow.workflows._execution import DEFAULT_LEASE_SECONDS, RunTrigger
from spanflow.workflows._observe import observe
from spanflow.workflows.executor import LOCAL_EXECUTOR, Executor
from spanflow.workflows.results import WorkflowResult
from spanflow.workflows.run import Run
from spanflow.workflows.step import Step, StepFunction, create_step
from spanflow.workflows.stream import WorkflowStream

if TYPE_CHECKING:
    from spanflow.storage.base import RunPage, Storage, StoredRun

__all__ = [
    "BranchEntry",
    "ConditionContext",
    "ConditionFunction",
    "Entry",
    "ForeachEntry",
    "LoopEntry",
    "ParallelEntry",
    "RetryConfig",
    "RunHook",
    "RunHookEvent",
    "RunTrigger",
    "SleepEntry",
    "StepEntry",
    "Workflow",
    "check_deletable",
    "create_workflow",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunHookEvent:
    """What a run hook receives (one object, so that fields can be added without breaking
    hooks).

    The result, error and `workflow_result` are the run's own objects, not copies (copying
    every result for every hook would cost each run): read them, do not change them. The
    stored run is written before ``on_finish`` is called, so a change would show in what
    ``start()`` returns but never in the store.
    """

    run_id: str
    workflow_id: str
    resource_id: str | None
    status: str
    """``running`` for ``on_start``; then how the execution ended: ``success``, ``failed``,
    ``suspended``, ``canceled`` (``on_error``: always ``failed``)."""
    trigger: RunTrigger
    """What began the execution: ``start``, ``resume``, ``restart`` or ``time_travel``."""
    result: Any = None
    """The workflow's output, when the run succeeded."""
    error: BaseException | None = None
    """What failed the run (a step's exception, or the engine's or the store's)."""
    usage: Usage
    """Token usage of the run's agent steps so far (a copy)."""
    workflow_result: WorkflowResult | None = None
    """The whole result (steps, state, suspended paths, trace ids) when the execution ended
    with one; ``None`` for ``on_start``, and when the engine or the store failed."""


RunHook: TypeAlias = Callable[[RunHookEvent], Awaitable[None] | None]
"""``on_start``/``on_finish``/``on_error`` of `create_workflow`: a function (sync, or async and
awaited) called with a `RunHookEvent`.

``on_start`` is called when an execution of a run begins (a start, a resume, a restart, a time
travel), ``on_finish`` when it ends in any status (suspended included), then ``on_error`` when
it ended failed. They run in the run's task with the run span current, before
``await run.start()`` (or the stream's result) returns: a slow hook delays the caller, so hand
long work off. A hook that raises is logged (logger ``spanflow.hooks``) and recorded on the run
span as an ``exception`` event with ``spanflow.hook=<name>``; it never changes the run's
outcome. Hooks are the workflow's own: a workflow running nested inside another does not call
them.
"""


class Workflow:
    """A workflow under construction, then (after `commit`) a frozen, runnable definition."""

    def __init__(
        self,
        *,
        id: str,
        input_schema: Any = None,
        output_schema: Any = None,
        state_schema: Any = None,
        request_context_schema: Any = None,
        retry_config: RetryConfig | None = None,
        description: str | None = None,
        storage: Storage | None = None,
        validate_inputs: bool = True,
        validate_outputs: bool = True,
        metadata: Mapping[str, Any] | None = None,
        on_start: RunHook | None = None,
        on_finish: RunHook | None = None,
        on_error: RunHook | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        if not isinstance(id, str) or not id or "." in id:
            raise WorkflowDefinitionError(
                f"a workflow needs a non-empty string id without '.', got {id!r}"
            )
        self.id = id
        self.description = description
        self.input_schema = input_schema
        self.output_schema = output_schema
        self.state_schema = state_schema
        self.request_context_schema = request_context_schema
        self.retry_config = retry_config or RetryConfig()
        self.retries: int | None = None  # as a step: nested workflows are not retried
        self.validate_inputs = validate_inputs
        """Validate step inputs against their schemas (Mastra's ``options.validateInputs``);
        off, inputs are passed as they come and recorded raw."""
        self.validate_outputs = validate_outputs
        """Validate step outputs against their schemas (on by default, unlike Mastra)."""
        self.metadata: dict[str, Any] = dict(metadata or {})
        """Free-form metadata about the workflow (owner, team, version), recorded on its run
        spans as ``spanflow.workflow.metadata.<key>`` (flattened, redacted, searchable)."""
        self.on_start: RunHook | None = on_start
        """Called when an execution of a run begins (see `RunHook`)."""
        self.on_finish: RunHook | None = on_finish
        """Called when an execution ends, in any status (see `RunHook`)."""
        self.on_error: RunHook | None = on_error
        """Called when an execution ends failed, after `on_finish` (see `RunHook`)."""
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, int | float):
            raise WorkflowDefinitionError(f"workflow {id!r}: lease_seconds must be a number")
        if not 1 <= lease_seconds <= 86_400:
            raise WorkflowDefinitionError(
                f"workflow {id!r}: lease_seconds must be between 1 and 86400, got {lease_seconds}"
            )
        self.lease_seconds = float(lease_seconds)
        """How long a process's claim on a run it executes holds without renewal. The process
        renews it every third of that while the run executes; a run whose executor died can
        be restarted once its lease ran out (`Run.restart`)."""
        for name, hook in (
            ("on_start", on_start),
            ("on_finish", on_finish),
            ("on_error", on_error),
        ):
            if hook is not None and not callable(hook):
                raise WorkflowDefinitionError(
                    f"workflow {id!r}: {name} must be a function, got {hook!r}"
                )
        self._input: Schema | None = schema_of(input_schema)
        self._output: Schema | None = schema_of(output_schema)
        self._state: Schema | None = schema_of(state_schema)
        self._request_context: Schema | None = schema_of(request_context_schema)
        self._entries: list[Entry] = []
        self._steps: dict[str, Step[Any, Any] | Workflow] = {}
        self._counter = itertools.count(1)
        self._committed = False
        # Which store runs use, in order: the one the user set (the workflow's own), the one a
        # registry shares with it, a private in-memory one made when first needed. Only the
        # first counts as the workflow's own, so running the workflow (or reading `storage`)
        # before registering it does not tie it to that private store.
        self._own_storage = storage
        self._shared_storage: Storage | None = None
        self._private_storage: Storage | None = None
        self._instrumentation: Instrumentation | None = None
        self.executor: Executor = LOCAL_EXECUTOR
        """Where this workflow's runs execute (`spanflow.workflows.executor`): in the calling
        process unless a registry with a queued executor registered it."""

    # -- building -------------------------------------------------------------------------

    def then(
        self,
        step: Step[Any, Any] | Workflow,
        *,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Run `step` next, with the previous entry's output as its input."""
        self._register(step)
        return self._add(StepEntry(id or step.id, description, dict(metadata or {}), step))

    def parallel(
        self,
        steps: Sequence[Step[Any, Any] | Workflow],
        *,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Run all `steps` concurrently; the output is ``{step_id: output}``."""
        if not steps:
            raise WorkflowDefinitionError(f"workflow {self.id!r}: parallel() needs steps")
        for s in steps:
            self._register(s)
        entry_id = id or f"parallel_{next(self._counter)}"
        return self._add(ParallelEntry(entry_id, description, dict(metadata or {}), tuple(steps)))

    def branch(
        self,
        branches: Sequence[tuple[ConditionFunction, Step[Any, Any] | Workflow]],
        *,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Evaluate every condition; run every step whose condition is true (concurrently)."""
        if not branches:
            raise WorkflowDefinitionError(f"workflow {self.id!r}: branch() needs branches")
        for pair in branches:
            if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])):
                raise WorkflowDefinitionError(
                    f"workflow {self.id!r}: branch() takes (condition, step) pairs, got {pair!r}"
                )
            self._register(pair[1])
        entry_id = id or f"branch_{next(self._counter)}"
        return self._add(BranchEntry(entry_id, description, dict(metadata or {}), tuple(branches)))

    def foreach(
        self,
        step: Step[Any, Any] | Workflow,
        *,
        concurrency: int = 1,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Run `step` once per element of the previous output (a list), in input order."""
        if not isinstance(concurrency, int) or concurrency < 1:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r}: foreach concurrency must be an int >= 1, "
                f"got {concurrency!r}"
            )
        self._register(step)
        return self._add(
            ForeachEntry(id or step.id, description, dict(metadata or {}), step, concurrency)
        )

    def dowhile(
        self,
        step: Step[Any, Any] | Workflow,
        condition: ConditionFunction,
        *,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Run `step`, then again while `condition` (on its output) is true."""
        return self._loop(step, condition, "dowhile", id, description, metadata)

    def dountil(
        self,
        step: Step[Any, Any] | Workflow,
        condition: ConditionFunction,
        *,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Run `step`, then again until `condition` (on its output) is true."""
        return self._loop(step, condition, "dountil", id, description, metadata)

    def map(
        self,
        fn: StepFunction,
        *,
        id: str | None = None,
        output_schema: Any = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """A mapping step: ``fn(ctx) -> value`` reshapes data between steps."""
        step_id = id or f"mapping_{self.id}_{next(self._counter)}"
        mapping = create_step(
            id=step_id, execute=fn, output_schema=output_schema, description=description
        )
        return self.then(mapping, description=description, metadata=metadata)

    def sleep(
        self,
        seconds: float | Callable[[ConditionContext], float],
        *,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Pause for `seconds` (or a callable computing them); the input passes through."""
        if not callable(seconds) and (not isinstance(seconds, int | float) or seconds < 0):
            raise WorkflowDefinitionError(
                f"workflow {self.id!r}: sleep() needs seconds >= 0 or a callable, got {seconds!r}"
            )
        entry_id = id or f"sleep_{next(self._counter)}"
        return self._add(SleepEntry(entry_id, description, dict(metadata or {}), seconds=seconds))

    def sleep_until(
        self,
        when: datetime | Callable[[ConditionContext], datetime],
        *,
        id: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Workflow:
        """Pause until `when` (an aware datetime; naive means UTC); the input passes through."""
        if not callable(when) and not isinstance(when, datetime):
            raise WorkflowDefinitionError(
                f"workflow {self.id!r}: sleep_until() needs a datetime or a callable, got {when!r}"
            )
        entry_id = id or f"sleep_until_{next(self._counter)}"
        return self._add(SleepEntry(entry_id, description, dict(metadata or {}), until=when))

    def commit(self) -> Workflow:
        """Freeze the workflow. Builder methods raise afterwards."""
        if not self._entries:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r} has no steps: add some with .then(...) before commit()"
            )
        self._committed = True
        return self

    # -- running ----------------------------------------------------------------------------

    async def create_run(self, run_id: str | None = None, resource_id: str | None = None) -> Run:
        """A new run, stored as ``pending`` at once, or, given the id of a stored run, that run.

        A pending run can be listed and fetched, and started later by id (in another process
        too, through a shared store); a stored one can be resumed, restarted, time travelled
        or inspected. An id no run has yet makes a new pending run with that id.
        """
        self._require_committed()
        return await Run.open(self, run_id=run_id, resource_id=resource_id)

    def create_run_sync(self, run_id: str | None = None, resource_id: str | None = None) -> Run:
        """`create_run` for scripts; refuses to run inside a running event loop."""
        return run_sync(self.create_run(run_id, resource_id), "create_run_sync")

    @property
    def committed(self) -> bool:
        """Whether `commit()` was called."""
        return self._committed

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The recorded entries, in order."""
        return tuple(self._entries)

    @property
    def storage(self) -> Storage:
        """Where runs are stored: the workflow's own store, else the one a registry shares with
        it, else a private in-memory one.

        Assigning it sets the workflow's own store (as ``create_workflow(storage=...)`` does).
        """
        if self._own_storage is not None:
            return self._own_storage
        if self._shared_storage is not None:
            return self._shared_storage
        if self._private_storage is None:
            self._private_storage = MemoryStorage()
        return self._private_storage

    @storage.setter
    def storage(self, storage: Storage) -> None:
        self._own_storage = storage

    @property
    def own_storage(self) -> Storage | None:
        """The store the user set (at creation or by assigning `storage`), or ``None``."""
        return self._own_storage

    def use_shared_storage(self, storage: Storage) -> None:
        """Keep runs in `storage`, a store shared by several workflows (a registry's), unless
        the workflow has its own.

        Unlike assigning `storage`, this does not make it the workflow's own: registering the
        workflow in another registry gives it that registry's store instead.
        """
        self._shared_storage = storage

    @property
    def instrumentation(self) -> Instrumentation:
        """The tracing seam runs of this workflow use (global tracer provider by default)."""
        if self._instrumentation is None:
            self._instrumentation = default_instrumentation()
        return self._instrumentation

    @instrumentation.setter
    def instrumentation(self, instrumentation: Instrumentation) -> None:
        self._instrumentation = instrumentation

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        resource_id: str | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> RunPage:
        """Stored runs of this workflow, newest first, filtered and paged (with the total).

        `from_date`/`to_date` bound when the runs were created (both inclusive; naive means
        UTC). Pending runs (created, not started) are listed too.
        """
        return await self.storage.list_runs(
            workflow_id=self.id,
            status=status,
            resource_id=resource_id,
            from_date=from_date,
            to_date=to_date,
            limit=limit,
            offset=offset,
        )

    async def get_run(self, run_id: str) -> StoredRun | None:
        """The stored run of this workflow with this id (status and snapshot), or ``None``."""
        stored = await self.storage.get_run(run_id)
        return stored if stored is not None and stored.workflow_id == self.id else None

    async def count_runs(self) -> dict[RunStatus, int]:
        """How many stored runs this workflow has in each status (statuses with none are left
        out)."""
        counts = await self.storage.count_runs(workflow_id=self.id)
        return dict(counts.get(self.id, {}))

    def observe(self, run_id: str, offset: int = 0) -> WorkflowStream:
        """Follow a stored run from its event log, in this process or any other sharing the
        store: its events from number `offset` (0: the first), then live ones, until the run
        is suspended or ended. ``await out.result`` is the run as then stored.

        Call it inside a running event loop. An unknown run (or one of another workflow)
        ends the stream with `RunNotFoundError` (or `RunStateError`). Values in the events
        are in their JSON form (`WorkflowEvent.from_dict`).

        Raises:
            TypeError, ValueError: `offset` is not an int of 0 or more.
            StorageError: The store keeps no event log (``event_log=False``).
        """
        self._require_committed()
        return observe(self, run_id, offset)

    async def delete_run(self, run_id: str) -> bool:
        """Delete a stored run of this workflow; ``False`` if there is none with this id.

        Raises:
            RunStateError: The run is stored as ``running`` or ``waiting`` (a process, this one
                or another, is executing it) or ``queued`` (a worker is about to): cancel it,
                or wait for it to end, first (`check_deletable`).
        """
        stored = await self.get_run(run_id)
        if stored is None:
            return False
        check_deletable(stored)
        # Checked again in the store, atomically: a process may claim the run in between (a
        # run starting here is stored running from its claim on, so the store decides).
        return await self.storage.delete_run(run_id, if_status=IDLE_STATUSES)

    def find_step(self, step_id: str) -> Step[Any, Any] | Workflow | None:
        """The step (or nested workflow) with this id directly in this workflow."""
        return self._steps.get(step_id)

    def iter_steps(self) -> Iterator[Step[Any, Any] | Workflow]:
        """Every step directly in this workflow (not inside nested workflows)."""
        return iter(self._steps.values())

    def __repr__(self) -> str:
        state = "committed" if self._committed else "building"
        return f"<Workflow {self.id!r} {state}, {len(self._entries)} entries>"

    # -- internals --------------------------------------------------------------------------

    def _loop(
        self,
        step: Step[Any, Any] | Workflow,
        condition: ConditionFunction,
        kind: Literal["dowhile", "dountil"],
        id: str | None,
        description: str | None,
        metadata: dict[str, Any] | None,
    ) -> Workflow:
        if not callable(condition):
            raise WorkflowDefinitionError(f"workflow {self.id!r}: {kind}() needs a condition")
        self._register(step)
        return self._add(
            LoopEntry(id or step.id, description, dict(metadata or {}), step, condition, kind)
        )

    def _add(self, entry: Entry) -> Workflow:
        if self._committed:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r} is committed; build a new workflow to change it"
            )
        self._entries.append(entry)
        return self

    def _register(self, step: Step[Any, Any] | Workflow) -> None:
        if self._committed:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r} is committed; build a new workflow to change it"
            )
        if isinstance(step, Workflow):
            if not step.committed:
                raise WorkflowDefinitionError(
                    f"nested workflow {step.id!r} must be committed before use in {self.id!r}"
                )
            if step is self:
                raise WorkflowDefinitionError(f"workflow {self.id!r} cannot contain itself")
        elif not isinstance(step, Step):
            raise WorkflowDefinitionError(
                f"workflow {self.id!r}: expected a Step or a committed Workflow, got {step!r}"
            )
        if step.id in self._steps:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r} already has a step with id {step.id!r}; "
                f"step ids must be unique within a workflow"
            )
        self._steps[step.id] = step

    def _require_committed(self) -> None:
        if not self._committed:
            raise WorkflowDefinitionError(
                f"workflow {self.id!r} is not committed: call .commit() before create_run()"
            )


def check_deletable(stored: StoredRun, *, forceable: bool = False) -> None:
    """Refuse (`RunStateError`) to delete a run that is being executed or waits for a worker.

    A ``running`` or ``waiting`` run is being executed by some process (a waiting run sleeps
    inside its execution) and a ``queued`` one is about to be: deleting it would pull its
    store from under that execution. The one rule `Workflow.delete_run` and the registry's
    `delete_run` apply; `forceable` adds the registry's way out (``force=True``) to the message.
    """
    if stored.status not in (*EXECUTING_STATUSES, "queued"):
        return
    doing = (
        "it waits in the queue for a worker"
        if stored.status == "queued"
        else "a process (this one or another) is executing it"
    )
    way_out = ", or pass force=True if that process is gone" if forceable else ""
    raise RunStateError(
        f"cannot delete run {stored.run_id!r} of workflow {stored.workflow_id!r}: its status "
        f"is {stored.status!r}, so {doing}; cancel it first{way_out}"
    )


def create_workflow(
    *,
    id: str,
    input_schema: Any = None,
    output_schema: Any = None,
    state_schema: Any = None,
    request_context_schema: Any = None,
    retry_config: RetryConfig | None = None,
    description: str | None = None,
    storage: Storage | None = None,
    validate_inputs: bool = True,
    validate_outputs: bool = True,
    metadata: Mapping[str, Any] | None = None,
    on_start: RunHook | None = None,
    on_finish: RunHook | None = None,
    on_error: RunHook | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> Workflow:
    """Start building a workflow (Mastra's ``createWorkflow``)."""
    return Workflow(
        id=id,
        input_schema=input_schema,
        output_schema=output_schema,
        state_schema=state_schema,
        request_context_schema=request_context_schema,
        retry_config=retry_config,
        description=description,
        storage=storage,
        validate_inputs=validate_inputs,
        validate_outputs=validate_outputs,
        metadata=metadata,
        on_start=on_start,
        on_finish=on_finish,
        on_error=on_error,
        lease_seconds=lease_seconds,
    )
