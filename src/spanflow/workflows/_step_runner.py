"""The step runner: one step's execution, with its attempts, validation and events.

`run_step` validates the input, opens one scope (span) per attempt, runs ``execute`` with the
scope current, turns suspend and bail signals into results (never errors), retries failures as
the step or workflow says, validates the output and the new state, records the `StepResult` and
emits the step's start and end events. Nested workflows go to the run's `RunControl.run_nested`
(`_nested.run_nested`).

Validation follows the flags of the workflow the step is directly in (``frame.workflow``):
`Workflow.validate_inputs` governs the step's input, `Workflow.validate_outputs` what the step
hands out (its output and its suspend payload). A nested workflow's flags govern its own steps,
whatever the outer workflow says: each workflow is checked as its author declared it, and a
workflow behaves the same used alone or nested. State set with ``ctx.set_state`` is validated
by the state schema either way (it is the run's, not the step's), and is kept when the step
returns or suspends, not when it fails.

Whatever the flags, what a step hands out must be storable (`_schema.check_storable`: strict
JSON, the same on every store): an output, state or suspend payload that is not fails the step
with an error naming the field and the problem, before anything is stored or streamed. An
exception whose message cannot be rendered (its ``__str__`` raises) fails the step as a
`RuntimeError` saying so, with the original as its ``__cause__``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from spanflow._schema import Schema, check_storable
from spanflow.errors import BailSignal, InvalidInputError, NonRetryableError, SuspendSignal
from spanflow.tracing.instrumentation import Scope
from spanflow.workflows._frame import Frame, Resume, StepRun, new_call_id, now_ms
from spanflow.workflows._snapshot import FrameSnapshot
from spanflow.workflows.events import (
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    WorkflowEvent,
)
from spanflow.workflows.results import StepResult, TripwireError
from spanflow.workflows.step import NO_STATE_CHANGE, Step, StepContext, StepWriter

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["emit_step_end", "run_step"]


async def run_step(
    frame: Frame,
    step: Step[Any, Any] | Workflow,
    value: Any,
    parent: Scope,
    *,
    resume: Resume | None = None,
    prior: StepResult | None = None,
    slot: FrameSnapshot | None = None,
    foreach_index: int | None = None,
    events: bool = True,
) -> StepRun:
    """Run one step (all its attempts) and record its `StepResult` in the frame.

    `events=False` (foreach iterations) leaves the start/result events to the caller, and
    does not record a per-iteration result in ``frame.steps``.
    """
    if not isinstance(step, Step):  # a nested workflow: the run hands in how to drive it
        return await frame.run.run_nested(
            frame, step, value, parent, resume=resume, prior=prior, slot=slot,
            foreach_index=foreach_index, events=events,
        )  # fmt: skip
    run = frame.run
    event_id = frame.prefix + step.id
    resuming = resume is not None
    started_at = prior.started_at if resuming and prior and prior.started_at else now_ms()
    resumed_at = now_ms() if resuming else None
    resume_data = resume.data if resume is not None else None
    suspend_data = prior.suspend_payload if resuming and prior is not None else None
    attempts = step.retries if step.retries is not None else frame.workflow.retry_config.attempts
    attempt = 0
    scope = _attempt_scope(parent, step, value, 1, foreach_index)
    emitting = events and (frame.observed or scope.recording)
    call_id = new_call_id() if emitting else ""  # only events carry it

    if emitting:
        frame.emit(
            scope,
            WorkflowEvent(
                "workflow-step-start",
                run.run_id,
                StepStartPayload(
                    id=event_id,
                    step_name=step.id,
                    step_call_id=call_id,
                    payload=value,
                    started_at=started_at,
                    resume_payload=resume_data,
                    resumed_at=resumed_at,
                ),
            ),
        )

    def finish(result: StepResult, end_scope: Scope, bailed: bool = False) -> StepRun:
        result.resume_payload = resume_data
        result.resumed_at = resumed_at
        if events:
            frame.steps[step.id] = result
        if emitting:
            emit_step_end(frame, end_scope, event_id, step.id, call_id, result)
        status = "bailed" if bailed else result.status
        end_scope.end(status, output=result.output, error=result.error)  # type: ignore[arg-type]
        suspended = [[step.id]] if result.status == "suspended" else []
        return StepRun(result, suspended=suspended, bailed=bailed)

    try:
        input_value = _validated_input(frame, step, value)
    except InvalidInputError as exc:
        return finish(_failed(value, started_at, exc), scope)

    while True:
        ctx = _step_context(frame, step, scope, input_value, attempt, resume_data, suspend_data)
        try:
            with scope.current():
                output = await step.call(ctx)
        except SuspendSignal as signal:
            return finish(_suspended(frame, step, ctx, input_value, started_at, signal), scope)
        except BailSignal as signal:
            result = StepResult(
                "success", input_value, signal.value, started_at=started_at, ended_at=now_ms()
            )
            return finish(result, scope, bailed=True)
        except asyncio.CancelledError:
            finish(_canceled(input_value, started_at), scope)
            raise
        except Exception as raised:
            error = _renderable(raised)
            if attempt >= attempts or isinstance(error, NonRetryableError | TripwireError):
                return finish(_failed(input_value, started_at, error), scope)
            scope.end("failed", error=error)
            attempt += 1
            try:
                await _pause(frame.workflow.retry_config.delay)
            except asyncio.CancelledError:  # canceled between attempts: record it all
                scope = _attempt_scope(parent, step, value, attempt + 1, foreach_index)
                finish(_canceled(input_value, started_at), scope)
                raise
            scope = _attempt_scope(parent, step, value, attempt + 1, foreach_index)
            continue
        break

    try:
        output = _accept_output(frame, step, ctx, output)
    except InvalidInputError as exc:
        return finish(_failed(input_value, started_at, exc), scope)
    return finish(
        StepResult("success", input_value, output, started_at=started_at, ended_at=now_ms()),
        scope,
    )


def _validated_input(frame: Frame, step: Step[Any, Any], value: Any) -> Any:
    """The step's input checked against its input schema; `InvalidInputError` if bad.

    With ``validate_inputs=False`` the value is passed (and recorded) as it came.
    """
    schema: Schema | None = step._input
    if schema is None or not frame.workflow.validate_inputs:
        return value
    return schema.validate(value, what=f"input of step '{step.id}'")


def _step_context(
    frame: Frame,
    step: Step[Any, Any],
    scope: Scope,
    input_value: Any,
    attempt: int,
    resume_data: Any,
    suspend_data: Any,
) -> StepContext[Any]:
    """The ``ctx`` one attempt of `step` receives (`attempt` counts retries from 0)."""
    run = frame.run
    return StepContext(
        run_id=run.run_id,
        workflow_id=frame.workflow.id,
        resource_id=run.resource_id,
        input_data=input_value,
        state=frame.state,
        retry_count=attempt,
        request_context=run.request_context,
        writer=StepWriter(frame, step.id, scope),
        tracing=scope.user_tracing(),
        resume_data=resume_data,
        suspend_data=suspend_data,
        _frame=frame,
        _step=step,
    )


def _attempt_scope(
    parent: Scope, step: Step[Any, Any], value: Any, attempt: int, foreach_index: int | None
) -> Scope:
    """The scope (span) of one attempt of `step`, numbered from 1."""
    return parent.step(step.id, input=value, attempt=attempt, foreach_index=foreach_index)


async def _pause(delay: float) -> None:
    """Wait the workflow's retry delay between two attempts (no await when it is 0)."""
    if delay:
        await asyncio.sleep(delay)


def _accept_output(frame: Frame, step: Step[Any, Any], ctx: StepContext[Any], output: Any) -> Any:
    """Validate the step's output and apply the state it set; `InvalidInputError` if bad."""
    if step._output is not None and frame.workflow.validate_outputs:
        output = step._output.validate(output, what=f"output of step '{step.id}'")
    check_storable(output, what=f"output of step '{step.id}'")
    _apply_state(frame, step, ctx)
    return output


def _apply_state(frame: Frame, step: Step[Any, Any], ctx: StepContext[Any]) -> None:
    """Make the state the step set (if it did) the frame's, validated; `InvalidInputError`
    if bad, leaving the frame's state as it was."""
    if ctx._new_state is NO_STATE_CHANGE:
        return
    state_schema = step._state or frame.workflow._state
    new_state = ctx._new_state
    if state_schema is not None:
        new_state = state_schema.validate(new_state, what=f"state set by step '{step.id}'")
    check_storable(new_state, what=f"state set by step '{step.id}'")
    frame.state = new_state


def _renderable(error: Exception) -> Exception:
    """`error`, or, if its message cannot be rendered, a `RuntimeError` saying so (caused by
    it): spans, events and snapshots all show an error's message."""
    try:
        str(error)
    except Exception as failure:
        replacement = RuntimeError(
            f"the step raised {type(error).__qualname__}, whose message cannot be rendered "
            f"(its __str__ raised {type(failure).__qualname__})"
        )
        replacement.__cause__ = error
        return replacement
    return error


def _canceled(payload: Any, started_at: int) -> StepResult:
    return StepResult("canceled", payload, started_at=started_at, ended_at=now_ms())


def _failed(payload: Any, started_at: int, error: BaseException) -> StepResult:
    return StepResult("failed", payload, error=error, started_at=started_at, ended_at=now_ms())


def _suspended(
    frame: Frame,
    step: Step[Any, Any],
    ctx: StepContext[Any],
    payload: Any,
    started_at: int,
    signal: SuspendSignal,
) -> StepResult:
    """The result of a step that suspended: its suspend payload validated (unless outputs are
    not), and the state it set before suspending applied, so the snapshot written on suspend
    holds it and the steps after the resume see it."""
    suspend_payload = signal.payload
    try:
        if step._suspend is not None and frame.workflow.validate_outputs:
            suspend_payload = step._suspend.validate(
                suspend_payload, what=f"suspend payload of step '{step.id}'"
            )
        check_storable(suspend_payload, what=f"suspend payload of step '{step.id}'")
        _apply_state(frame, step, ctx)
    except InvalidInputError as exc:
        return _failed(payload, started_at, exc)
    return StepResult(
        "suspended",
        payload,
        suspend_payload=suspend_payload,
        started_at=started_at,
        suspended_at=now_ms(),
        resume_label=signal.resume_label,
    )


def emit_step_end(
    frame: Frame, scope: Scope, event_id: str, name: str, call_id: str, result: StepResult
) -> None:
    run_id = frame.run.run_id
    if result.status == "suspended":
        assert result.started_at is not None
        assert result.suspended_at is not None
        payload: Any = StepSuspendedPayload(
            id=event_id,
            step_name=name,
            step_call_id=call_id,
            payload=result.payload,
            suspend_payload=result.suspend_payload,
            started_at=result.started_at,
            suspended_at=result.suspended_at,
        )
        frame.emit(scope, WorkflowEvent("workflow-step-suspended", run_id, payload))
        return
    payload = StepResultPayload(
        id=event_id,
        step_name=name,
        step_call_id=call_id,
        status=result.status,
        payload=result.payload,
        started_at=result.started_at,
        ended_at=result.ended_at or now_ms(),
        output=result.output,
        error=result.error,
        resume_payload=result.resume_payload,
        resumed_at=result.resumed_at,
    )
    frame.emit(scope, WorkflowEvent("workflow-step-result", run_id, payload))
