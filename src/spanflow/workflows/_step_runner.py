"""The step runner: one step's execution, with its attempts, validation and events.

`run_step` validates the input, opens one scope (span) per attempt, runs ``execute`` with the
scope current, turns suspend and bail signals into results (never errors), retries failures as
the step or workflow says, validates the output and the new state, records the `StepResult` and
emits the step's start and end events. Nested workflows are handed to `spanflow.nested`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spanflow._schema import Schema
from spanflow.errors import BailSignal, InvalidInputError, NonRetryableError, SuspendSignal
from spanflow.tracing.instrumentation import Scope
from spanflow.workflows._frame import Frame, Resume, StepRun, new_call_id, now_ms
from spanflow.workflows.events import (
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    WorkflowEvent,
)
from spanflow.workflows.results import StepResult
from spanflow.workflows.step import NO_STATE_CHANGE, Step, StepContext, StepWriter
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
    slot: dict[str, Any] | None = None,
    foreach_index: int | None = None,
    events: bool = True,
) -> StepRun:
    """Run one step (all its attempts) and record its `StepResult` in the frame.

    `events=False` (foreach iterations) leaves the start/result events to the caller, and
    does not record a per-iteration result in ``frame.steps``.
    """
    if isinstance(step, Workflow):
        from spanflow.workflows._nested import run_nested

        return await run_nested(
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
    scope = parent.step(step.id, input=value, attempt=1, foreach_index=foreach_index)
    emitting = events and (frame.observed or scope.recording)
    call_id = new_call_id() if emitting else ""  # only events carry it

    if emitting:
        frame.emit(
            scope,
            WorkflowEvent(
                "workflow-step-start",
                run.run_id,
                StepStartPayload(
                    event_id, step.id, call_id, value, started_at, resume_data, resumed_at
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

    input_schema: Schema | None = step._input
    try:
        input_value = (
            input_schema.validate(value, what=f"input of step '{step.id}'")
            if input_schema is not None
            else value
        )
    except InvalidInputError as exc:
        return finish(_failed(value, started_at, exc), scope)

    while True:
        ctx: StepContext[Any] = StepContext(
            run.run_id,
            frame.workflow.id,
            run.resource_id,
            input_value,
            frame.state,
            attempt,
            run.request_context,
            StepWriter(frame, step.id, scope),
            scope.user_tracing(),
            resume_data,
            suspend_data,
            frame,
            step,
        )
        token = scope.enter()
        try:
            output = await step.call(ctx)
        except SuspendSignal as signal:
            scope.exit(token)
            return finish(_suspended(step, input_value, started_at, signal), scope)
        except BailSignal as signal:
            scope.exit(token)
            result = StepResult(
                "success", input_value, signal.value, started_at=started_at, ended_at=now_ms()
            )
            return finish(result, scope, bailed=True)
        except asyncio.CancelledError:
            scope.exit(token)
            finish(_canceled(input_value, started_at), scope)
            raise
        except Exception as exc:
            scope.exit(token)
            if attempt < attempts and not isinstance(exc, NonRetryableError):
                scope.end("failed", error=exc)
                attempt += 1
                delay = frame.workflow.retry_config.delay
                try:
                    if delay:
                        await asyncio.sleep(delay)
                except asyncio.CancelledError:  # canceled between attempts: record it all
                    scope = parent.step(
                        step.id, input=value, attempt=attempt + 1, foreach_index=foreach_index
                    )
                    finish(_canceled(input_value, started_at), scope)
                    raise
                scope = parent.step(
                    step.id, input=value, attempt=attempt + 1, foreach_index=foreach_index
                )
                continue
            return finish(_failed(input_value, started_at, exc), scope)
        scope.exit(token)
        break

    try:
        if step._output is not None:
            output = step._output.validate(output, what=f"output of step '{step.id}'")
        if ctx._new_state is not NO_STATE_CHANGE:
            state_schema = step._state or frame.workflow._state
            new_state = ctx._new_state
            if state_schema is not None:
                new_state = state_schema.validate(new_state, what=f"state set by step '{step.id}'")
            frame.state = new_state
    except InvalidInputError as exc:
        return finish(_failed(input_value, started_at, exc), scope)
    return finish(
        StepResult("success", input_value, output, started_at=started_at, ended_at=now_ms()),
        scope,
    )


def _canceled(payload: Any, started_at: int) -> StepResult:
    return StepResult("canceled", payload, started_at=started_at, ended_at=now_ms())


def _failed(payload: Any, started_at: int, error: BaseException) -> StepResult:
    return StepResult("failed", payload, error=error, started_at=started_at, ended_at=now_ms())


def _suspended(
    step: Step[Any, Any], payload: Any, started_at: int, signal: SuspendSignal
) -> StepResult:
    suspend_payload = signal.payload
    if step._suspend is not None:
        try:
            suspend_payload = step._suspend.validate(
                suspend_payload, what=f"suspend payload of step '{step.id}'"
            )
        except InvalidInputError as exc:
            return _failed(payload, started_at, exc)
    return StepResult(
        "suspended",
        payload,
        suspend_payload=suspend_payload,
        started_at=started_at,
        suspended_at=now_ms(),
    )


def emit_step_end(
    frame: Frame, scope: Scope, event_id: str, name: str, call_id: str, result: StepResult
) -> None:
    run_id = frame.run.run_id
    if result.status == "suspended":
        assert result.started_at is not None
        assert result.suspended_at is not None
        payload: Any = StepSuspendedPayload(
            event_id,
            name,
            call_id,
            result.payload,
            result.suspend_payload,
            result.started_at,
            result.suspended_at,
        )
        frame.emit(scope, WorkflowEvent("workflow-step-suspended", run_id, payload))
        return
    payload = StepResultPayload(
        event_id,
        name,
        call_id,
        result.status,
        result.payload,
        result.started_at,
        result.ended_at or now_ms(),
        result.output,
        result.error,
        result.resume_payload,
        result.resumed_at,
    )
    frame.emit(scope, WorkflowEvent("workflow-step-result", run_id, payload))
