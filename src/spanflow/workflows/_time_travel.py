"""Time travel: the frame that re-executes a stored run from one of its top-level steps.

`time_travel_frame` restores the run's stored frame (`_frame.restore_frame`) and positions it at
the target entry: the results of the steps before it are kept (or replaced by the caller's
``context``), those of the target and every later step are dropped (they run again), and the
target's input is the caller's ``input_data`` or the output of the entry before it. Every check
runs here, before the run is claimed, so a refused time travel leaves the stored run untouched.

A target inside a nested workflow (``"outer.inner"``) is refused: a nested frame can only be
re-entered by a resume. Time travelling to ``"outer"`` re-runs that nested workflow from its
start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spanflow.errors import InvalidInputError, StepNotFoundError
from spanflow.tracing.instrumentation import NOOP_SCOPE
from spanflow.workflows._entries import (
    BranchEntry,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    StepEntry,
)
from spanflow.workflows._frame import Frame, RunControl, restore_frame
from spanflow.workflows._resume_target import StepRef, step_path
from spanflow.workflows._snapshot import RunSnapshot
from spanflow.workflows.results import StepResult

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["TimeTravel", "time_travel_frame"]


@dataclass(frozen=True, slots=True)
class TimeTravel:
    """What the caller asked for: where to go back to, and what to change on the way."""

    step: StepRef
    """The target: a top-level step, its id, or the id of its entry (``"parallel_1"``)."""
    input_data: Any = None
    """The target's input; ``None``: the output of the entry before it (stored or in
    `context`), or the workflow's input for the first entry."""
    context: Mapping[str, Any] | None = None
    """Results of steps before the target, by step id: an output, or a `StepResult`."""
    initial_state: Any = None
    """The run's state from the target on; ``None``: the state as last stored."""


def time_travel_frame(
    workflow: Workflow, run_id: str, snapshot: RunSnapshot, travel: TimeTravel, control: RunControl
) -> tuple[Frame, str]:
    """The stored run's frame positioned at the target entry, and the target's id.

    Raises:
        StepNotFoundError: The target is not a top-level step (or entry) of the workflow.
        InvalidInputError: A value does not fit its schema, `context` names a step that is
            not before the target, or a step before the target has no successful result.
        StorageError: The stored frame no longer fits the workflow (``restore_frame``).
    """
    index, target = _target(workflow, travel.step)
    entries = workflow._entries
    frame = restore_frame(workflow, snapshot.frame, control, NOOP_SCOPE)
    before = {step_id: i for i, entry in enumerate(entries[:index]) for step_id in _step_ids(entry)}
    steps = {step_id: result for step_id, result in frame.steps.items() if step_id in before}
    steps.update(_context_results(workflow, target, before, travel.context))
    _check_earlier_results(run_id, target, entries[:index], steps)
    frame.steps = steps
    frame.path = [step_id for step_id in frame.path if step_id in steps]
    frame.path += [step_id for step_id in before if step_id in steps and step_id not in frame.path]
    frame.position = index
    frame.entry_progress = None
    if travel.input_data is not None:
        frame.carry = _validated_input(workflow, entries[index], travel.input_data)
        if index == 0:  # the first step's input is the workflow's input
            frame.input = _workflow_input(workflow, frame.carry)
    else:
        frame.carry = _output_before(entries[:index], steps, frame.input)
    if travel.initial_state is not None or snapshot.status == "pending":
        frame.state = _state(workflow, travel.initial_state)
    return frame, target


def _target(workflow: Workflow, step: StepRef) -> tuple[int, str]:
    """The index of the entry the target names, and the target's id."""
    path = step_path(step)
    name = path[0] if path else ""
    entries = workflow._entries
    for index, entry in enumerate(entries):
        if name == entry.id or name in _step_ids(entry):
            if len(path) > 1:
                raise InvalidInputError(
                    f"time travel into a nested workflow ('{'.'.join(path)}') is not supported: "
                    f"time travel to '{name}' re-runs it from its start"
                )
            return index, name
    known = ", ".join(f"'{i}'" for entry in entries for i in _step_ids(entry))
    raise StepNotFoundError(
        f"workflow {workflow.id!r} has no top-level step {'.'.join(path)!r} to time travel to; "
        f"its steps: {known}"
    )


def _step_ids(entry: Entry) -> list[str]:
    """The ids an entry records results under: its steps', or a sleep's own."""
    if isinstance(entry, StepEntry | ForeachEntry | LoopEntry):
        return [entry.step.id]
    if isinstance(entry, ParallelEntry):
        return [s.id for s in entry.steps]
    if isinstance(entry, BranchEntry):
        return [s.id for _, s in entry.branches]
    return [entry.id]


def _context_results(
    workflow: Workflow, target: str, before: Mapping[str, int], context: Mapping[str, Any] | None
) -> dict[str, StepResult]:
    """The caller's `context` as step results, outputs checked against the steps' schemas."""
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise InvalidInputError(
            f"context must be a mapping of step id to output, got {type(context).__name__}"
        )
    results: dict[str, StepResult] = {}
    for step_id, value in context.items():
        if step_id not in before:
            where = (
                "runs at or after the target"
                if workflow.find_step(str(step_id)) is not None
                else "is not a top-level step of the workflow"
            )
            raise InvalidInputError(
                f"context names step {step_id!r}, which {where}: context holds the results of "
                f"the steps before '{target}'"
            )
        if isinstance(value, StepResult):
            results[step_id] = value
            continue
        results[step_id] = StepResult("success", output=_validated_output(workflow, step_id, value))
    return results


def _validated_output(workflow: Workflow, step_id: str, value: Any) -> Any:
    step = workflow.find_step(step_id)
    schema = getattr(step, "_output", None)
    if schema is None:
        return value
    what = f"context['{step_id}'] (output of step '{step_id}')"
    if any(isinstance(e, ForeachEntry) and e.step.id == step_id for e in workflow._entries):
        if not isinstance(value, list | tuple):
            raise InvalidInputError(f"{what} must be a list: the step runs in a foreach")
        return [schema.validate(item, what=what) for item in value]
    return schema.validate(value, what=what)


def _check_earlier_results(
    run_id: str, target: str, earlier: Sequence[Entry], steps: Mapping[str, StepResult]
) -> None:
    """Every step before the target must have succeeded (in the stored run or in context):
    the steps from the target on read their outputs."""
    for entry in earlier:
        if isinstance(entry, BranchEntry | SleepEntry):  # a branch's unselected steps leave no
            continue  # result, and a sleep none that a later step reads
        for step_id in _step_ids(entry):
            result = steps.get(step_id)
            if result is None or result.status != "success":
                found = "no result" if result is None else f"a {result.status} result"
                raise InvalidInputError(
                    f"time travel to '{target}' needs the result of step '{step_id}', which "
                    f"runs before it, but run {run_id!r} has {found} for it: give its output in "
                    f"context={{'{step_id}': ...}}"
                )


def _output_before(
    earlier: Sequence[Entry], steps: Mapping[str, StepResult], workflow_input: Any
) -> Any:
    """The output of the last entry before the target, which is the target's input (a sleep
    passes its input through; before the first entry, the input is the workflow's)."""
    for entry in reversed(earlier):
        if isinstance(entry, SleepEntry):
            continue
        if isinstance(entry, ParallelEntry):
            return {s.id: steps[s.id].output for s in entry.steps}
        if isinstance(entry, BranchEntry):
            ran = [s.id for _, s in entry.branches]
            return {i: steps[i].output for i in ran if i in steps and steps[i].status == "success"}
        return steps[entry.step.id].output  # checked: every step before the target succeeded
    return workflow_input


def _validated_input(workflow: Workflow, entry: Entry, value: Any) -> Any:
    """`input_data` checked against the target's input schema (a foreach's: each item)."""
    what = f"input_data for step '{'.'.join(_step_ids(entry))}'"
    if isinstance(entry, ForeachEntry) and not isinstance(value, list | tuple):
        raise InvalidInputError(f"{what} must be a list: the step runs in a foreach")
    if not workflow.validate_inputs or not isinstance(entry, StepEntry | LoopEntry | ForeachEntry):
        return value  # a parallel's or branch's steps check their own inputs when they run
    schema = entry.step._input
    if schema is None:
        return value
    if isinstance(entry, ForeachEntry):
        return [schema.validate(item, what=what) for item in value]
    return schema.validate(value, what=what)


def _workflow_input(workflow: Workflow, value: Any) -> Any:
    schema = workflow._input
    what = f"input of workflow '{workflow.id}'"
    return value if schema is None else schema.validate(value, what=what)


def _state(workflow: Workflow, initial_state: Any) -> Any:
    schema = workflow._state
    value = {} if initial_state is None else initial_state
    what = f"initial state of workflow '{workflow.id}'"
    return value if schema is None else schema.validate(value, what=what)
