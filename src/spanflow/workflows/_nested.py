"""Nested workflows: a committed workflow used as a step of another.

The outer step gets a step span and its own start/result events; the inner workflow runs in a
child `Frame` whose run span sits under that step span, and whose events are re-published into
the outer stream with ids ``<inner_workflow>.<step>``. A suspension inside keeps the inner
frame's snapshot in the outer entry's state, so a resume by path (``"inner.approve"``) goes
straight back to it.

**State is shared.** A run has one state; a nested workflow's steps read it and their
`set_state` changes it:

- The inner steps see the parent's state through the inner workflow's ``state_schema`` when it
  has one (validated from the parent's state, so a narrower inner schema sees only its fields),
  else the parent's state value itself. A parent state the inner schema rejects fails the
  nested step before any inner step runs, with an `InvalidInputError` naming the nested
  workflow and the field (``invalid state of nested workflow 'inner' (shared with workflow
  'outer'): field 'value': Field required``).
- What an inner step sets is validated by that step's or the inner workflow's ``state_schema``,
  as in any workflow, and handed back to the parent after every inner entry and when the
  nested workflow ends, whether it succeeded, suspended or failed. With an inner schema the
  inner state's fields are written over the parent's (fields the inner schema does not know
  are kept); without one the inner state replaces the parent's. The parent's ``state_schema``
  then gives the state its type back; a state it rejects fails the nested step (``invalid
  state left by nested workflow 'inner' for workflow 'outer': ...``).
- On a resume or restart the inner frame's state is derived from the parent's again (the
  stored nested frame's copy is not used), so the two are one value whatever happened between.
- Steps change the state with `set_state`: mutating a narrower inner view in place does not
  reach the parent.

**Checkpoints.** A nested workflow run as a step entry of its parent (``.then(inner)``)
checkpoints through the parent after every inner entry when the run's store is durable: the
stored snapshot then holds the inner frame as the parent's entry in progress, and
`Run.restart` goes on from there, without running the inner steps that had finished. Inside a
``parallel``, ``branch``, loop or ``foreach`` the block runs again from its start on a restart,
as a top-level block does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spanflow._schema import to_wire
from spanflow.errors import InvalidInputError
from spanflow.tracing.instrumentation import Scope
from spanflow.workflows._drive import drive
from spanflow.workflows._entries import StepEntry
from spanflow.workflows._frame import (
    Frame,
    Outcome,
    Resume,
    StepRun,
    end_status,
    finish_event,
    new_call_id,
    now_ms,
    restore_frame,
    start_event,
)
from spanflow.workflows._snapshot import FrameSnapshot, NestedProgress
from spanflow.workflows._step_runner import emit_step_end
from spanflow.workflows.events import StepStartPayload, WorkflowEvent
from spanflow.workflows.results import StepResult

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["run_nested"]


async def run_nested(
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
) -> StepRun:
    """Run `workflow` as one step of `frame`: fresh, resumed (`resume` and its `slot`), or
    continued from its last checkpoint after a crash (a `slot` without `resume`)."""
    run = frame.run
    event_id = frame.prefix + workflow.id
    resuming = resume is not None and slot is not None
    started_at = prior.started_at if resuming and prior and prior.started_at else now_ms()
    resumed_at = now_ms() if resuming else None
    resume_data = resume.data if resume is not None else None
    call_id = new_call_id()
    scope = parent.step(workflow.id, input=value, attempt=1, foreach_index=foreach_index)
    emitting = events and (frame.observed or scope.recording)
    if emitting:
        frame.emit(
            scope,
            WorkflowEvent(
                "workflow-step-start",
                run.run_id,
                StepStartPayload(
                    event_id, workflow.id, call_id, value, started_at, resume_data, resumed_at
                ),
            ),
        )

    def finish(result: StepResult, step_run: StepRun) -> StepRun:
        result.resume_payload = resume_data if resuming else None
        result.resumed_at = resumed_at
        if events:
            frame.steps[workflow.id] = result
        if emitting:
            emit_step_end(frame, scope, event_id, workflow.id, call_id, result)
        scope.end(result.status, output=result.output, error=result.error)  # type: ignore[arg-type]
        return step_run

    inner_scope = scope.nested_run(workflow.id, run.run_id, value)
    try:
        child, child_resume = _child_frame(frame, workflow, value, inner_scope, resume, slot)
    except InvalidInputError as exc:
        inner_scope.end("failed", error=exc)
        failed = StepResult("failed", value, error=exc, started_at=started_at, ended_at=now_ms())
        return finish(failed, StepRun(failed))
    link = _Link(frame, workflow, child, child.state, _keeps_slot(frame, workflow, events))
    child.share_state = link.hand_back
    if link.keeps_slot and frame.checkpoint is not None:
        child.checkpoint = link.checkpoint
    inner_scope.record(start_event(child))
    token = inner_scope.enter()  # user code outside inner steps (conditions, ...) nests here
    try:
        outcome = await drive(child, child_resume)
    except asyncio.CancelledError:  # run.cancel() while a step inside was running
        inner_scope.end("canceled")
        canceled = StepResult("canceled", value, started_at=started_at, ended_at=now_ms())
        finish(canceled, StepRun(canceled))
        raise
    finally:
        inner_scope.exit(token)
    error = link.hand_back()
    if error is not None and outcome.status in ("success", "suspended", "bailed"):
        outcome = Outcome("failed", error=error)
    status = end_status(outcome)
    inner_scope.record(finish_event(child, outcome, status))
    inner_scope.end(status, output=outcome.output, error=outcome.error)
    return finish(*_result(child, workflow, value, outcome, status, started_at))


def _child_frame(
    frame: Frame,
    workflow: Workflow,
    value: Any,
    scope: Scope,
    resume: Resume | None,
    slot: FrameSnapshot | None,
) -> tuple[Frame, Resume | None]:
    """The nested workflow's frame, restored from `slot` or new, and the resume it is given.

    Raises:
        InvalidInputError: the input, or the parent's state, does not fit the inner workflow.
    """
    prefix = frame.prefix + workflow.id + "."
    if slot is not None:
        child = restore_frame(workflow, slot, frame.run, scope, prefix=prefix, handed_input=value)
        child.state = _view_of(frame, workflow)
        if resume is None:
            return child, None
        return child, Resume(resume.path[1:], resume.data, resume.foreach_index)
    inner_input = (
        workflow._input.validate(value, what=f"input of workflow '{workflow.id}'")
        if workflow._input is not None
        else value
    )
    state = _view_of(frame, workflow)
    return Frame(workflow, frame.run, scope, inner_input, state, prefix=prefix), None


def _result(
    child: Frame, workflow: Workflow, value: Any, outcome: Outcome, status: str, started_at: int
) -> tuple[StepResult, StepRun]:
    """The nested step's result for how its workflow ended (and the frame, if suspended)."""
    ended_at = now_ms()
    if status == "success":
        result = StepResult(
            "success", value, outcome.output, started_at=started_at, ended_at=ended_at
        )
        return result, StepRun(result)
    if status == "suspended":
        first = outcome.suspended[0][0] if outcome.suspended else None
        inner = child.steps.get(first) if first is not None else None
        result = StepResult(
            "suspended",
            value,
            suspend_payload=inner.suspend_payload if inner is not None else None,
            started_at=started_at,
            suspended_at=ended_at,
        )
        paths = [[workflow.id, *p] for p in outcome.suspended]
        return result, StepRun(result, suspended=paths, slot=child.to_snapshot())
    if status == "canceled":
        result = StepResult("canceled", value, started_at=started_at, ended_at=ended_at)
        return result, StepRun(result)
    result = StepResult(
        "failed", value, error=outcome.error, started_at=started_at, ended_at=ended_at
    )
    return result, StepRun(result)


def _keeps_slot(frame: Frame, workflow: Workflow, events: bool) -> bool:
    """Whether `workflow` is the parent's step entry in progress, whose progress can hold the
    nested frame (blocks that run several steps run again from their start on a restart)."""
    entries = frame.workflow._entries
    if not events or frame.position >= len(entries):
        return False
    entry = entries[frame.position]
    return isinstance(entry, StepEntry) and entry.step is workflow


def _view_of(frame: Frame, workflow: Workflow) -> Any:
    """The parent's state as the nested workflow's steps see it.

    Raises:
        InvalidInputError: the inner workflow's state schema rejects the parent's state.
    """
    schema = workflow._state
    if schema is None:
        return frame.state
    what = f"state of nested workflow '{workflow.id}' (shared with workflow '{frame.workflow.id}')"
    return schema.validate(frame.state, what=what)


def _handed_back(frame: Frame, workflow: Workflow, state: Any) -> Any:
    """The parent's state once the nested workflow's steps have left `state`.

    Raises:
        InvalidInputError: the parent workflow's state schema rejects the result.
    """
    if workflow._state is not None:  # a view: its fields are written over the parent's
        base, fields = to_wire(frame.state), to_wire(state)
        if isinstance(base, dict) and isinstance(fields, dict):
            state = {**base, **fields}
    schema = frame.workflow._state
    if schema is None:
        return state
    what = f"state left by nested workflow '{workflow.id}' for workflow '{frame.workflow.id}'"
    return schema.validate(state, what=what)


@dataclass(slots=True, eq=False)
class _Link:
    """What ties a nested workflow's frame to its parent's: the shared state, the checkpoints."""

    parent: Frame
    workflow: Workflow
    child: Frame
    synced: Any
    """The child's state as last handed to (or taken from) the parent: nothing to hand back
    while the child's state is still this object."""
    keeps_slot: bool
    """Whether the parent's entry progress holds the child's frame (`_keeps_slot`)."""

    def hand_back(self) -> InvalidInputError | None:
        """Give the parent the state the child's steps left (`Frame.share_state`)."""
        state = self.child.state
        if state is self.synced:
            return None
        try:
            self.parent.state = _handed_back(self.parent, self.workflow, state)
        except InvalidInputError as exc:
            return exc
        self.synced = state
        return None

    async def checkpoint(self) -> None:
        """Checkpoint the run with the child's frame as the parent's entry in progress.

        The parent hands its own state up first when it is nested too, so the stored state is
        the run's state now; if that is rejected, the parent's own entry fails when it ends.
        """
        parent = self.parent
        parent.entry_progress = NestedProgress(slot=self.child.to_snapshot())
        if parent.share_state is not None:
            parent.share_state()
        if parent.checkpoint is not None:
            await parent.checkpoint()
