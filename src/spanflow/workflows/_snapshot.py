"""The typed run snapshot: what is stored to continue a run in another process, and its codec.

A `RunSnapshot` is a small tree of dataclasses: the run-level facts (status, request context
minus credentials, the run span's trace context, usage, result, error or tripwire, what is
suspended), the top-level `FrameSnapshot` (position in the workflow, step results, state, the
carried value), and the progress of the entry in progress as one small type per block kind,
tagged by ``kind`` (`ForeachProgress`, `ParallelProgress`, `BranchProgress`, `LoopProgress`,
`NestedProgress`), nested workflows' frames included. One `pydantic.TypeAdapter` turns it into
the stored JSON and back; nothing else reads the JSON.

Values inside (inputs, outputs, state, payloads) are kept in their JSON form, and step results
in their Mastra wire form (`StepResult.to_dict`, `load_step_result`). Loading a frame
(``_frame.restore_frame``) gives the values back the types they were handed over with, for the
workflow as it is defined now (`load_steps`, `load_entry_output`, `load_foreach_progress`): a
step sees the same types whether its run is fresh or continued from storage.
``SNAPSHOT_VERSION`` is bumped on incompatible changes and checked on load. Snapshots written
before entries carried a ``kind`` load too: the kind is told from the keys the entry has.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
)

from spanflow._schema import Schema, to_wire
from spanflow.errors import InvalidInputError, StorageError
from spanflow.storage.base import RunStatus, StoredRun
from spanflow.tracing.context import StoredTraceContext
from spanflow.usage import Usage
from spanflow.workflows._entries import (
    BranchEntry,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
)
from spanflow.workflows.results import (
    StepResult,
    StepStatus,
    StoredError,
    StoredTripwireError,
    TripwireInfo,
)
from spanflow.workflows.step import Step

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "SNAPSHOT_VERSION",
    "BranchProgress",
    "EntryProgress",
    "ForeachProgress",
    "FrameSnapshot",
    "LoopProgress",
    "NestedProgress",
    "ParallelProgress",
    "QueuedExecution",
    "RunSnapshot",
    "dump_run_snapshot",
    "load_entry_output",
    "load_foreach_progress",
    "load_step_result",
    "load_steps",
    "read_run_snapshot",
    "stored_value",
]

SNAPSHOT_VERSION = 1

Wire = Annotated[Any, PlainSerializer(to_wire)]
"""A live value (a model instance, say) that is stored in its JSON form."""

StepWire = dict[str, Any]
"""A step result in Mastra's wire form (`StepResult.to_dict`)."""


@dataclass(slots=True, kw_only=True)
class FrameSnapshot:
    """One workflow's execution (the run's, or a nested workflow's) as stored."""

    workflow_id: Annotated[str, Field(alias="workflowId")]
    """The id of the workflow the frame runs; loading checks it."""
    input: Any = None
    """The workflow's input, in JSON form."""
    state: Any = None
    """The workflow's state, in JSON form."""
    steps: dict[str, StepWire] = field(default_factory=dict)
    """The result of each step so far, by step id."""
    position: int = 0
    """The index of the entry being run (or suspended in)."""
    carry: Any = None
    """The input of the entry at `position` (the previous entry's output), in JSON form."""
    path: list[str] = field(default_factory=list)
    """The ids of the steps started so far, in order (``stepExecutionPath``)."""
    entry: EntryField = None
    """The progress of the entry at `position`, when it keeps any."""


@dataclass(slots=True, kw_only=True)
class NestedProgress:
    """A step entry whose step is a nested workflow suspended inside."""

    kind: Literal["nested"] = "nested"
    slot: FrameSnapshot
    """The nested workflow's frame."""


@dataclass(slots=True, kw_only=True)
class ParallelProgress:
    """A parallel block with branches suspended."""

    kind: Literal["parallel"] = "parallel"
    slots: dict[str, FrameSnapshot] = field(default_factory=dict)
    """The frame of each branch that is a nested workflow suspended inside, by step id."""
    suspended_paths: Annotated[dict[str, list[list[str]]], Field(alias="suspendedPaths")] = field(
        default_factory=dict
    )
    """Where each suspended branch is suspended (inside a nested workflow: its inner paths)."""


@dataclass(slots=True, kw_only=True)
class BranchProgress:
    """A branch block: the branches its conditions selected, and those suspended."""

    kind: Literal["branch"] = "branch"
    selected: list[str] = field(default_factory=list)
    """The ids of the selected steps (a resume does not evaluate the conditions again)."""
    slots: dict[str, FrameSnapshot] = field(default_factory=dict)
    """As `ParallelProgress.slots`."""
    suspended_paths: Annotated[dict[str, list[list[str]]], Field(alias="suspendedPaths")] = field(
        default_factory=dict
    )
    """As `ParallelProgress.suspended_paths`."""


@dataclass(slots=True, kw_only=True)
class LoopProgress:
    """A ``dowhile``/``dountil`` loop stopped in an iteration that did not succeed."""

    kind: Literal["loop"] = "loop"
    iteration: int = 0
    """The iterations completed before the one it stopped in."""
    slot: FrameSnapshot | None = None
    """The frame of the loop's nested workflow, when it suspended inside."""


def _is_empty(value: dict[int, str]) -> bool:
    return not value


@dataclass(slots=True, kw_only=True)
class ForeachProgress:
    """A foreach: every iteration's status and output so far."""

    kind: Literal["foreach"] = "foreach"
    items: list[Wire]
    """The list the foreach runs over."""
    outputs: list[Wire]
    """Each iteration's output (``None`` until it succeeded)."""
    statuses: list[StepStatus | None]
    """Each iteration's status (``None`` until it ran)."""
    suspend_payloads: Annotated[dict[int, Wire], Field(alias="suspend")] = field(
        default_factory=dict
    )
    """The suspend payload of each suspended iteration, by index."""
    slots: dict[int, FrameSnapshot] = field(default_factory=dict)
    """The frame of each iteration suspended inside a nested workflow, by index."""
    paths: dict[int, list[list[str]]] = field(default_factory=dict)
    """Where each suspended iteration is suspended, by index."""
    labels: Annotated[dict[int, str], Field(exclude_if=_is_empty)] = field(default_factory=dict)
    """The resume label of each suspended iteration that gave one, by index (stored only when
    there is one, so snapshots of runs without labels are as older versions wrote them)."""
    started_at: Annotated[int, Field(alias="startedAt")]
    """When the foreach started (epoch milliseconds)."""


EntryProgress = NestedProgress | ParallelProgress | BranchProgress | LoopProgress | ForeachProgress
"""The resumable state of an entry in progress: one type per kind of block that keeps any."""


def _tag_untagged(data: Any) -> Any:
    """Give an entry written before entries carried a ``kind`` the kind its keys tell."""
    if not isinstance(data, dict) or "kind" in data:
        return data
    if not data:
        return None
    for key, kind in _KIND_BY_KEY:
        if key in data:
            return {**data, "kind": kind}
    return data  # no known key: validation reports it


# The first key each kind writes that no earlier kind in this list has.
_KIND_BY_KEY = (
    ("items", "foreach"),
    ("selected", "branch"),
    ("iteration", "loop"),
    ("suspendedPaths", "parallel"),
    ("slots", "parallel"),
    ("slot", "nested"),
)

EntryField = Annotated[
    Annotated[EntryProgress, Field(discriminator="kind")] | None, BeforeValidator(_tag_untagged)
]


def _trace_from(data: Any) -> StoredTraceContext | None:
    if isinstance(data, StoredTraceContext):
        return data
    return StoredTraceContext.from_dict(data)


def _trace_to(trace: StoredTraceContext | None) -> dict[str, Any] | None:
    return trace.to_dict() if trace is not None else None


def _usage_from(data: Any) -> Usage:
    if isinstance(data, Usage):
        return data
    return Usage.from_dict(data) if isinstance(data, dict) else Usage()


def _tripwire_from(data: Any) -> TripwireInfo | None:
    if isinstance(data, TripwireInfo):
        return data
    return TripwireInfo.from_wire(data)


def _tripwire_to(tripwire: TripwireInfo | None) -> dict[str, Any] | None:
    return tripwire.to_dict() if tripwire is not None else None


TraceField = Annotated[
    StoredTraceContext | None, PlainValidator(_trace_from), PlainSerializer(_trace_to)
]
UsageField = Annotated[Usage, PlainValidator(_usage_from), PlainSerializer(Usage.to_dict)]
TripwireField = Annotated[
    TripwireInfo | None, PlainValidator(_tripwire_from), PlainSerializer(_tripwire_to)
]


@dataclass(slots=True, kw_only=True)
class QueuedExecution:
    """What a queued run's next execution needs (status ``queued``; ``executor.py``): the job
    carries ids only, so a worker finds its input here. Values are in their JSON form."""

    op: Literal["start", "resume", "restart"]
    input: Any = None
    """A start's input."""
    state: Any = None
    """A start's initial state."""
    resume_path: Annotated[list[str], Field(alias="resumePath")] = field(default_factory=list)
    """A resume's suspended step (its path)."""
    resume_data: Annotated[Any, Field(alias="resumeData")] = None
    """A resume's data for that step."""
    foreach_index: Annotated[int | None, Field(alias="foreachIndex")] = None
    """A resume's foreach iteration, if one was named."""
    tracing: dict[str, Any] | None = None
    """The execution's tracing options (`TracingOptions` fields), if any were given."""
    previous_status: Annotated[RunStatus, Field(alias="previousStatus")] = "pending"
    """The status the run had before it was queued (put back if the queue refuses the job)."""
    carrier: dict[str, str] = field(default_factory=dict)
    """The W3C context of the job's publish span: a job handed over again (lost, or its
    worker died before the first checkpoint) publishes under it, in the same trace."""


@dataclass(slots=True, kw_only=True)
class RunSnapshot:
    """Everything needed to continue (or show) a stored run."""

    version: int = SNAPSHOT_VERSION
    """The snapshot format; a spanflow refuses to load a newer one than it knows."""
    status: RunStatus
    """The run's status when the snapshot was written."""
    frame: FrameSnapshot
    """The top-level workflow's execution."""
    request_context: Annotated[dict[str, Any], Field(alias="requestContext")] = field(
        default_factory=dict
    )
    """The request context, minus keys that hold credentials."""
    trace: TraceField = None
    """The run span's context, so a resume continues the trace; ``None`` when untraced."""
    usage: UsageField = field(default_factory=Usage)
    """Token usage of the agent steps so far."""
    result: Any = None
    """The workflow's output, in JSON form (status ``success``)."""
    error: dict[str, Any] | None = None
    """The error that failed the run, ``{name, message, stack}`` (status ``failed``; for
    ``tripwire``, the error the trip raised, which names the reason)."""
    tripwire: TripwireField = None
    """Why an agent step's processor stopped the run, in its wire form (status ``tripwire``;
    absent in snapshots written before it was stored, and for the other statuses)."""
    suspended: list[list[str]] = field(default_factory=list)
    """The paths of the suspended steps (status ``suspended``)."""
    suspend_payload: Annotated[dict[str, Any], Field(alias="suspendPayload")] = field(
        default_factory=dict
    )
    """Each suspended top-level step's suspend payload, in JSON form, by step id."""
    queued: QueuedExecution | None = None
    """The next execution, while the run waits for a worker (status ``queued``)."""


_ADAPTER: TypeAdapter[RunSnapshot] = TypeAdapter(RunSnapshot)


def dump_run_snapshot(snapshot: RunSnapshot) -> dict[str, Any]:
    """The snapshot's stored JSON form."""
    data: dict[str, Any] = _ADAPTER.dump_python(snapshot, mode="json", by_alias=True)
    for key in ("queued", "tripwire"):  # only a queued / tripped run has one: the others'
        if data.get(key) is None:  # JSON stays as it was
            data.pop(key, None)
    return data


def read_run_snapshot(stored: StoredRun) -> RunSnapshot:
    """A stored run's snapshot, checked to be one this spanflow can continue."""
    data = stored.snapshot
    version = data.get("version")
    if not isinstance(version, int) or "frame" not in data:
        raise StorageError(f"run {stored.run_id!r}: stored snapshot is not a spanflow snapshot")
    if version > SNAPSHOT_VERSION:
        raise StorageError(
            f"run {stored.run_id!r} was stored by a newer spanflow (snapshot version {version}, "
            f"this one reads up to {SNAPSHOT_VERSION}): upgrade spanflow to resume it"
        )
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        raise StorageError(
            f"run {stored.run_id!r}: stored snapshot is damaged "
            f"({error.error_count()} errors; first: {_first_error(error)})"
        ) from None


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "snapshot"
    return f"{where}: {first['msg']}"


def load_step_result(data: StepWire) -> StepResult:
    """A `StepResult` from its wire form, its values as stored (JSON); `load_steps` gives the
    results of a frame their types back."""
    return StepResult(
        status=data["status"],
        payload=data.get("payload"),
        output=data.get("output"),
        error=_step_error(data),
        suspend_payload=data.get("suspendPayload"),
        resume_payload=data.get("resumePayload"),
        started_at=data.get("startedAt"),
        ended_at=data.get("endedAt"),
        suspended_at=data.get("suspendedAt"),
        resumed_at=data.get("resumedAt"),
        resume_label=data.get("resumeLabel"),
    )


def _step_error(data: StepWire) -> StoredError | None:
    """A stored step's error; a tripped step's stays a `TripwireError` with its tripwire
    (its wire form has the ``tripwire`` key `StepResult.to_dict` writes)."""
    error = StoredError.from_wire(data.get("error"))
    tripwire = TripwireInfo.from_wire(data.get("tripwire"))
    if error is None or tripwire is None:
        return error
    return StoredTripwireError(error.name, str(error), error.stack, tripwire)


# -- stored values back as they were handed over -----------------------------------------------
#
# The rule (README, "Hand-overs between steps"): a step receives the previous entry's output as
# that entry produced it, validated by the producing step's output schema. A snapshot holds
# JSON, so loading validates each stored value again with the schema of the step that produced
# it (for the workflow as defined now): a model comes back as the same model, a parallel's
# ``{step_id: output}`` as a dict of each branch's own type, a foreach's list element by
# element. A value with no producing schema (a step without an output schema, or a workflow
# with ``validate_outputs=False``) stays JSON; one its schema no longer accepts too, rather than
# make the run unreadable.


def stored_value(schema: Schema | None, value: Any) -> Any:
    """`value` validated by `schema`, or `value` as it is if there is none or it does not fit."""
    if schema is not None:
        with contextlib.suppress(InvalidInputError):
            return schema.validate(value, what="stored value")
    return value


def _load_output(owner: Workflow, step: Step[Any, Any] | Workflow, value: Any) -> Any:
    """A step's stored output as it was handed over (`owner` is the workflow it is in)."""
    if isinstance(step, Step):
        return stored_value(step._output, value) if owner.validate_outputs else value
    if step._output is not None:  # a nested workflow: its output schema, else its last entry's
        return stored_value(step._output, value)
    return load_entry_output(step, len(step._entries) - 1, value)


def load_entry_output(workflow: Workflow, index: int, value: Any) -> Any:
    """The stored output of entry `index` of `workflow` (so the input of the entry after it)
    as it was handed over; index -1 stands for the workflow's input."""
    if index < 0:
        return stored_value(workflow._input, value)
    entry = workflow._entries[index]
    if isinstance(entry, SleepEntry):  # a sleep hands its input on
        return load_entry_output(workflow, index - 1, value)
    if isinstance(entry, ForeachEntry):
        if not isinstance(value, list):
            return value
        return [_load_output(workflow, entry.step, item) for item in value]
    if isinstance(entry, ParallelEntry | BranchEntry):
        if not isinstance(value, dict):
            return value
        by_id = {s.id: s for s in _entry_steps(entry)}
        return {
            key: _load_output(workflow, by_id[key], out) if key in by_id else out
            for key, out in value.items()
        }
    return _load_output(workflow, entry.step, value)


def _entry_steps(entry: Entry) -> tuple[Step[Any, Any] | Workflow, ...]:
    if isinstance(entry, ParallelEntry):
        return entry.steps
    if isinstance(entry, BranchEntry):
        return tuple(step for _, step in entry.branches)
    if isinstance(entry, SleepEntry):
        return ()
    return (entry.step,)


def load_steps(workflow: Workflow, snapshot: FrameSnapshot) -> dict[str, StepResult]:
    """The frame's step results, their payloads and outputs as they were handed over.

    A result whose step the workflow no longer has is kept as stored.
    """
    homes: dict[str, tuple[int, Entry]] = {}
    for index, entry in enumerate(workflow._entries):
        if isinstance(entry, SleepEntry):
            homes[entry.id] = (index, entry)
        for step in _entry_steps(entry):
            homes[step.id] = (index, entry)
    loop = snapshot.entry if isinstance(snapshot.entry, LoopProgress) else None
    steps: dict[str, StepResult] = {}
    for step_id, raw in snapshot.steps.items():
        result = load_step_result(raw)
        home = homes.get(step_id)
        if home is not None:
            index, entry = home
            iteration = loop.iteration if loop is not None and index == snapshot.position else None
            _load_result(workflow, index, entry, step_id, result, iteration)
        steps[step_id] = result
    return steps


def _load_result(
    workflow: Workflow,
    index: int,
    entry: Entry,
    step_id: str,
    result: StepResult,
    loop_iteration: int | None,
) -> None:
    """Give one loaded result (of entry `index`) the payload and output types of a fresh run."""
    success = result.status == "success"
    if isinstance(entry, SleepEntry):
        result.payload = load_entry_output(workflow, index - 1, result.payload)
        if success:
            result.output = load_entry_output(workflow, index - 1, result.output)
        return
    if isinstance(entry, ForeachEntry):  # payload: the list; output: each iteration's output
        result.payload = load_entry_output(workflow, index - 1, result.payload)
        if success:
            result.output = load_entry_output(workflow, index, result.output)
        return
    step = next(s for s in _entry_steps(entry) if s.id == step_id)
    result.payload = _load_input(workflow, index, entry, step, result.payload, loop_iteration)
    if success:
        result.output = _load_output(workflow, step, result.output)
    if isinstance(step, Step) and result.resume_payload is not None:
        result.resume_payload = stored_value(step._resume, result.resume_payload)


def _load_input(
    workflow: Workflow,
    index: int,
    entry: Entry,
    step: Step[Any, Any] | Workflow,
    value: Any,
    loop_iteration: int | None,
) -> Any:
    """A step's stored input (its result's payload) as the step received it.

    That is the step's validated input when it has an input schema, else what the entry
    before handed over, or, in a loop's later iterations, the step's own previous output.
    `loop_iteration` is the loop's completed iterations when the loop is the entry in progress;
    for a finished loop it is unknown (``None``), and the step's output schema decides.
    """
    if isinstance(step, Step) and step._input is not None and workflow.validate_inputs:
        return stored_value(step._input, value)
    if isinstance(entry, LoopEntry) and loop_iteration != 0:
        own = _load_output(workflow, step, value)
        if loop_iteration is not None or own is not value:
            return own
    return load_entry_output(workflow, index - 1, value)


def load_foreach_progress(workflow: Workflow, snapshot: FrameSnapshot) -> None:
    """Give a loaded foreach in progress its items and outputs as they were handed over."""
    progress = snapshot.entry
    entries = workflow._entries
    position = snapshot.position
    if not isinstance(progress, ForeachProgress) or position >= len(entries):
        return
    entry = entries[position]
    if not isinstance(entry, ForeachEntry):
        return
    progress.items = load_entry_output(workflow, position - 1, progress.items)
    outputs = progress.outputs
    for i, status in enumerate(progress.statuses[: len(outputs)]):
        if status == "success":
            outputs[i] = _load_output(workflow, entry.step, outputs[i])
