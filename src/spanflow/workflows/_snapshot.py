"""The typed run snapshot: what is stored to continue a run in another process, and its codec.

A `RunSnapshot` is a small tree of dataclasses: the run-level facts (status, request context
minus credentials, the run span's trace context, usage, result or error, what is suspended),
the top-level `FrameSnapshot` (position in the workflow, step results, state, the carried
value), and the progress of the entry in progress as one small type per block kind, tagged by
``kind`` (`ForeachProgress`, `ParallelProgress`, `BranchProgress`, `LoopProgress`,
`NestedProgress`), nested workflows' frames included. One `pydantic.TypeAdapter` turns it into
the stored JSON and back; nothing else reads the JSON.

Values inside (inputs, outputs, state, payloads) are kept in their JSON form, and step results
in their Mastra wire form (`StepResult.to_dict`, `load_step_result`); loading a frame
re-validates outputs with the steps' schemas (``_frame.restore_frame``).
``SNAPSHOT_VERSION`` is bumped on incompatible changes and checked on load. Snapshots written
before entries carried a ``kind`` load too: the kind is told from the keys the entry has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
)

from spanflow._schema import to_wire
from spanflow.errors import InvalidInputError, StorageError
from spanflow.storage.base import RunStatus, StoredRun
from spanflow.tracing.context import StoredTraceContext
from spanflow.usage import Usage
from spanflow.workflows.results import StepResult, StepStatus, StoredError

__all__ = [
    "SNAPSHOT_VERSION",
    "BranchProgress",
    "EntryProgress",
    "ForeachProgress",
    "FrameSnapshot",
    "LoopProgress",
    "NestedProgress",
    "ParallelProgress",
    "RunSnapshot",
    "dump_run_snapshot",
    "load_step_result",
    "read_run_snapshot",
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


TraceField = Annotated[
    StoredTraceContext | None, PlainValidator(_trace_from), PlainSerializer(_trace_to)
]
UsageField = Annotated[Usage, PlainValidator(_usage_from), PlainSerializer(Usage.to_dict)]


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
    """The error that failed the run, ``{name, message, stack}`` (status ``failed``)."""
    suspended: list[list[str]] = field(default_factory=list)
    """The paths of the suspended steps (status ``suspended``)."""
    suspend_payload: Annotated[dict[str, Any], Field(alias="suspendPayload")] = field(
        default_factory=dict
    )
    """Each suspended top-level step's suspend payload, in JSON form, by step id."""


_ADAPTER: TypeAdapter[RunSnapshot] = TypeAdapter(RunSnapshot)


def dump_run_snapshot(snapshot: RunSnapshot) -> dict[str, Any]:
    """The snapshot's stored JSON form."""
    data: dict[str, Any] = _ADAPTER.dump_python(snapshot, mode="json", by_alias=True)
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


def load_step_result(data: StepWire, output_schema: Any = None, many: bool = False) -> StepResult:
    """A `StepResult` from its wire form; outputs re-validated with `output_schema`."""
    error = data.get("error")
    output = data.get("output")
    if output is not None and output_schema is not None and data.get("status") == "success":
        try:
            if many and isinstance(output, list):
                output = [output_schema.validate(o, what="stored output") for o in output]
            else:
                output = output_schema.validate(output, what="stored output")
        except InvalidInputError:
            pass  # keep the stored JSON: a schema change must not make a run unreadable
    return StepResult(
        status=data["status"],
        payload=data.get("payload"),
        output=output,
        error=(
            StoredError(error.get("name", "Error"), error.get("message", ""), error.get("stack"))
            if isinstance(error, dict)
            else None
        ),
        suspend_payload=data.get("suspendPayload"),
        resume_payload=data.get("resumePayload"),
        started_at=data.get("startedAt"),
        ended_at=data.get("endedAt"),
        suspended_at=data.get("suspendedAt"),
        resumed_at=data.get("resumedAt"),
    )
