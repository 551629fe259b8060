"""The execution state of a run: frames, outcomes, resume requests, and the run-level events.

A `Frame` is one workflow's execution (the top-level run, or a nested workflow inside a step);
`RunControl` is what all frames of one run share (the event sink, usage, cancellation). The
executor, the step runner and the control-flow blocks all work on these plain objects.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from spanflow._schema import to_wire
from spanflow.context import RequestContext
from spanflow.errors import InvalidInputError, StorageError
from spanflow.tracing.instrumentation import Scope
from spanflow.usage import Usage
from spanflow.workflows._entries import BranchEntry, ParallelEntry, StepEntry
from spanflow.workflows._snapshot import (
    EntryProgress,
    FrameSnapshot,
    load_entry_output,
    load_foreach_progress,
    load_steps,
    stored_value,
)
from spanflow.workflows.events import (
    CustomPayload,
    StepOutputPayload,
    WorkflowEvent,
    WorkflowFinishPayload,
    WorkflowStartPayload,
)
from spanflow.workflows.results import StepResult, TripwireError, TripwireInfo

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "Frame",
    "Outcome",
    "Resume",
    "RunControl",
    "StepRun",
    "end_status",
    "ends_if_canceled",
    "finish_event",
    "new_call_id",
    "now_ms",
    "outcome_of",
    "restore_frame",
    "run_end_status",
    "start_event",
    "tripwire_of",
]

_UNSET: Any = object()

OutcomeStatus = Literal["success", "failed", "suspended", "canceled", "bailed"]


def now_ms() -> int:
    """Epoch milliseconds, the unit of every timestamp in results and events."""
    return int(time.time() * 1000)


def new_call_id() -> str:
    """A random version-4 UUID string for ``stepCallId`` (Mastra's format).

    Call ids tell two executions of a step apart; they guard nothing, so they come from
    `random` instead of `uuid.uuid4`, whose `os.urandom` is a system call per step.
    """
    h = f"{_random_bits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_random_bits = random.getrandbits
_VARIANT = "89ab"


@dataclass(slots=True, eq=False)
class RunControl:
    """What every frame of one run (including nested workflows) shares."""

    run_id: str
    workflow_id: str
    resource_id: str | None
    request_context: RequestContext
    sinks: tuple[Callable[[WorkflowEvent], None], ...] = ()
    """Where events go: the run's streams and its event log (none when nobody streams and
    the store keeps no log: events are then not built). Each is called in turn, directly: an
    event costs one call per sink, which matters at two events per step."""
    usage: Usage = field(default_factory=Usage)
    cancel_requested: bool = False
    status: str = "running"
    run_nested: NestedRunner = field(kw_only=True)
    """Runs a workflow used as a step (`_nested.run_nested`). The run hands it in: the step
    runner cannot import it, since it drives the nested workflow with the driver, which
    imports the step runner."""
    on_waiting: Callable[[], Any] | None = None
    """Awaited when a sleep begins (the run stores a ``waiting`` snapshot)."""

    def request_cancel(self) -> None:
        """Ask the run to stop scheduling further entries."""
        self.cancel_requested = True


class NestedRunner(Protocol):
    """Runs (or resumes) `workflow` as one step of `frame`; `_nested.run_nested` is one."""

    def __call__(
        self,
        frame: Frame,
        workflow: Workflow,
        value: Any,
        parent: Scope,
        *,
        resume: Resume | None,
        prior: StepResult | None,
        slot: FrameSnapshot | None,
        foreach_index: int | None,
        events: bool,
    ) -> Awaitable[StepRun]: ...


@dataclass(slots=True)
class Resume:
    """A resume request, relative to the frame it is handed to."""

    path: list[str]
    """Step ids from this frame down, e.g. ``["inner", "approve"]``."""
    data: Any
    foreach_index: int | None = None


@dataclass(slots=True)
class Outcome:
    """How an entry (or a whole frame) ended."""

    status: OutcomeStatus
    output: Any = None
    error: BaseException | None = None
    suspended: list[list[str]] = field(default_factory=list)


@dataclass(slots=True)
class StepRun:
    result: StepResult
    suspended: list[list[str]] = field(default_factory=list)
    slot: FrameSnapshot | None = None
    """A nested workflow's frame snapshot when it suspended inside."""
    bailed: bool = False


@dataclass(slots=True, eq=False)
class Frame:
    """One workflow's execution: the top-level run, or a nested workflow inside a step."""

    workflow: Workflow
    run: RunControl
    scope: Scope
    input: Any
    state: Any
    steps: dict[str, StepResult] = field(default_factory=dict)
    prefix: str = ""
    """``"inner."`` for a nested workflow: its events' ids become ``inner.step``."""
    position: int = 0
    """Index of the entry being run (or suspended in)."""
    carry: Any = _UNSET
    """The input of the entry at `position` (the previous entry's output)."""
    path: list[str] = field(default_factory=list)
    entry_progress: EntryProgress | None = None
    """Resumable state of the entry at `position` (foreach progress, nested frames, ...)."""
    checkpoint: Callable[[], Awaitable[None]] | None = None
    """Awaited after every completed entry: the run saves its snapshot. The top-level frame's
    is set by the run (durable stores only); a nested workflow's frame checkpoints through its
    parent's, with its own snapshot as the parent's entry in progress (`_nested`)."""
    share_state: Callable[[], InvalidInputError | None] | None = None
    """A nested workflow's frame only: called after every completed entry to hand the state its
    steps left to the parent frame (the run's state is one value); returns the error when the
    parent's state schema rejects it, which fails the nested workflow there."""
    wire_cache: dict[str, tuple[StepResult, dict[str, Any]]] = field(default_factory=dict)
    """Wire dicts of finished step results, so snapshots do not re-serialise them each time."""

    def __post_init__(self) -> None:
        if self.carry is _UNSET:
            self.carry = self.input

    @property
    def observed(self) -> bool:
        """Whether anything takes the run's events (see `RunControl.sinks`)."""
        return bool(self.run.sinks)

    def emit(self, scope: Scope, event: WorkflowEvent) -> None:
        """Send an event to every sink (streams, the event log) and record it on `scope`."""
        for sink in self.run.sinks:
            sink(event)
        scope.record(event)

    def to_snapshot(self) -> FrameSnapshot:
        """The frame as stored. Finished step results are serialised once and cached."""
        cache = self.wire_cache
        steps: dict[str, dict[str, Any]] = {}
        for step_id, result in self.steps.items():
            cached = cache.get(step_id)
            if cached is None or cached[0] is not result:
                cached = (result, result.to_dict())
                if result.status in ("success", "failed", "canceled"):
                    cache[step_id] = cached
            steps[step_id] = cached[1]
        return FrameSnapshot(
            workflow_id=self.workflow.id,
            input=to_wire(self.input),
            state=to_wire(self.state),
            steps=steps,
            position=self.position,
            carry=to_wire(self.carry),
            path=list(self.path),
            entry=self.entry_progress,
        )

    def publish_output(self, step_name: str, value: Any, scope: Scope) -> None:
        """``ctx.writer.write``: a ``workflow-step-output`` event from ``USER``."""
        run = self.run
        event = WorkflowEvent(
            "workflow-step-output",
            run.run_id,
            StepOutputPayload(step_name, value, run.run_id),
            "USER",
        )
        self.emit(scope, event)

    def publish_custom(self, chunk: dict[str, Any], scope: Scope) -> None:
        """``ctx.writer.custom``: a user's ``data-*`` chunk."""
        self.emit(
            scope, WorkflowEvent(chunk["type"], self.run.run_id, CustomPayload(chunk), "USER")
        )


def outcome_of(run: StepRun) -> Outcome:
    result = run.result
    if run.bailed:
        return Outcome("bailed", output=result.output)
    if result.status == "success":
        return Outcome("success", output=result.output)
    if result.status == "suspended":
        return Outcome("suspended", suspended=run.suspended)
    if result.status == "canceled":
        return Outcome("canceled")
    return Outcome("failed", error=result.error)


@contextmanager
def ends_if_canceled(scope: Scope) -> Iterator[None]:
    """End a block's scope as ``canceled`` when the run is canceled inside it.

    `run.cancel()` cancels the run's task, so a `CancelledError` unwinds through every open
    block; each must end its scope on the way out (and let the error go on) or its span stays
    open forever.
    """
    try:
        yield
    except asyncio.CancelledError:
        scope.end("canceled")
        raise


def end_status(outcome: Outcome) -> Literal["success", "failed", "suspended", "canceled"]:
    if outcome.status == "bailed":
        return "success"
    return outcome.status


def run_end_status(
    outcome: Outcome,
) -> Literal["success", "failed", "suspended", "canceled", "tripwire"]:
    """How a run ends: its frame's `end_status`, except that a failure by an agent step's
    tripwire (`TripwireError`) ends it ``tripwire`` (blocks and spans still see ``failed``)."""
    status = end_status(outcome)
    if status == "failed" and tripwire_of(outcome) is not None:
        return "tripwire"
    return status


def tripwire_of(outcome: Outcome) -> TripwireInfo | None:
    """The tripwire behind a failed outcome, if an agent step tripped (even when a nested
    workflow or a foreach wrapped its error)."""
    error: BaseException | None = outcome.error
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, TripwireError):
            return error.tripwire
        error = error.__cause__
        seen += 1
    return None


def start_event(frame: Frame) -> WorkflowEvent:
    """``workflow-start`` for this frame's workflow."""
    return WorkflowEvent(
        "workflow-start", frame.run.run_id, WorkflowStartPayload(frame.workflow.id)
    )


def finish_event(frame: Frame, outcome: Outcome, status: str) -> WorkflowEvent:
    """``workflow-finish`` for this frame (the result on success, the error on failure)."""
    return WorkflowEvent(
        "workflow-finish",
        frame.run.run_id,
        WorkflowFinishPayload(
            status,
            replace(frame.run.usage),  # a copy: the run's usage may still grow
            final_workflow_result=outcome.output if status == "success" else None,
            error=outcome.error if status == "failed" else None,
            tripwire=tripwire_of(outcome) if status == "tripwire" else None,
        ),
    )


def restore_frame(
    workflow: Workflow,
    snapshot: FrameSnapshot,
    run: RunControl,
    scope: Scope,
    prefix: str = "",
    *,
    handed_input: Any = _UNSET,
) -> Frame:
    """Rebuild a `Frame` from its snapshot, for `workflow` as it is defined now.

    Every stored value gets back the type it was handed over with (``_snapshot.load_steps``):
    the input and state by the workflow's schemas, step inputs by their input schemas, outputs
    (and so the value carried to the next entry) by the schema of the step that produced them.
    A value its schema no longer accepts stays JSON rather than make the run unreadable.
    `handed_input` (a nested workflow's frame: the outer value, as the outer frame restored
    it) is the input of a workflow without an input schema, which has no schema to restore by.
    """
    if snapshot.workflow_id != workflow.id:
        raise StorageError(
            f"snapshot belongs to workflow {snapshot.workflow_id!r}, not {workflow.id!r}"
        )
    entries = workflow._entries
    position = snapshot.position
    if position > len(entries):
        raise StorageError(
            f"snapshot of workflow {workflow.id!r} is at entry {position}, but the workflow now "
            f"has {len(entries)} entries: it changed since the run was stored"
        )
    load_foreach_progress(workflow, snapshot)
    frame = Frame(
        workflow=workflow,
        run=run,
        scope=scope,
        input=stored_value(workflow._input, snapshot.input),
        state=stored_value(workflow._state, snapshot.state),
        steps=load_steps(workflow, snapshot),
        prefix=prefix,
        position=position,
        carry=load_entry_output(workflow, position - 1, snapshot.carry),
        path=list(snapshot.path),
        entry_progress=snapshot.entry,
    )
    if handed_input is not _UNSET and workflow._input is None:
        _hand_in(frame, workflow, handed_input)
    return frame


def _hand_in(child: Frame, workflow: Workflow, value: Any) -> None:
    """Make `value` the input of a restored frame whose workflow has no input schema.

    Its stored input is plain JSON; the handed value (restored by the schema of the step that
    produced it) is what a fresh run received. So is the input of the first entry's steps when
    that entry is still in progress (their stored payloads are the same JSON).
    """
    child.input = value
    if child.position != 0 or not workflow._entries:
        return
    child.carry = value
    first = workflow._entries[0]
    if isinstance(first, StepEntry):
        steps = [first.step]
    elif isinstance(first, ParallelEntry):
        steps = list(first.steps)
    elif isinstance(first, BranchEntry):
        steps = [step for _, step in first.branches]
    else:  # foreach items and loop payloads are not the input itself
        return
    for step in steps:
        result = child.steps.get(step.id)
        if result is not None and result.status == "suspended":
            result.payload = value
