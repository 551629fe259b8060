"""Nested workflows: a committed workflow used as a step of another.

The outer step gets a step span and its own start/result events; the inner workflow runs in a
child `Frame` whose run span sits under that step span, and whose events are re-published into
the outer stream with ids ``<inner_workflow>.<step>``. A suspension inside keeps the inner
frame's snapshot in the outer entry's state, so a resume by path (``"inner.approve"``) goes
straight back to it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from spanflow.errors import InvalidInputError
from spanflow.tracing.instrumentation import Scope
from spanflow.workflows._drive import drive
from spanflow.workflows._frame import (
    Frame,
    Resume,
    StepRun,
    end_status,
    finish_event,
    new_call_id,
    now_ms,
    restore_frame,
    start_event,
)
from spanflow.workflows._snapshot import FrameSnapshot
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
    """Run (or resume) `workflow` as one step of `frame`."""
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
    child_resume: Resume | None = None
    if resuming and resume is not None and slot is not None:
        child = restore_frame(workflow, slot, run, inner_scope, prefix=event_id + ".")
        child_resume = Resume(resume.path[1:], resume.data, resume.foreach_index)
    else:
        try:
            inner_input = (
                workflow._input.validate(value, what=f"input of workflow '{workflow.id}'")
                if workflow._input is not None
                else value
            )
            inner_state = (
                workflow._state.validate({}, what=f"state of workflow '{workflow.id}'")
                if workflow._state is not None
                else {}
            )
        except InvalidInputError as exc:
            inner_scope.end("failed", error=exc)
            failed = StepResult(
                "failed", value, error=exc, started_at=started_at, ended_at=now_ms()
            )
            return finish(failed, StepRun(failed))
        child = Frame(workflow, run, inner_scope, inner_input, inner_state, prefix=event_id + ".")
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
    status = end_status(outcome)
    inner_scope.record(finish_event(child, outcome, status))
    inner_scope.end(status, output=outcome.output, error=outcome.error)

    ended_at = now_ms()
    if status == "success":
        result = StepResult(
            "success", value, outcome.output, started_at=started_at, ended_at=ended_at
        )
        return finish(result, StepRun(result))
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
        return finish(result, StepRun(result, suspended=paths, slot=child.to_snapshot()))
    if status == "canceled":
        result = StepResult("canceled", value, started_at=started_at, ended_at=ended_at)
        return finish(result, StepRun(result))
    result = StepResult(
        "failed", value, error=outcome.error, started_at=started_at, ended_at=ended_at
    )
    return finish(result, StepRun(result))
