"""The executor: walks a workflow's entries and runs their steps.

It knows control flow and nothing else: events go to the run's sink and to the current
`Scope` (the tracing seam), snapshots are taken by whoever owns the top-level `Frame` (the run),
and wire JSON is never built here. Outcomes are plain values; control-flow signals raised by
user code (suspend, bail) are caught at the step boundary and never treated as errors.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from spanflow._schema import Schema
from spanflow.context import RequestContext
from spanflow.errors import BailSignal, InvalidInputError, NonRetryableError, SuspendSignal
from spanflow.events import (
    CustomPayload,
    StepOutputPayload,
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    StepWaitingPayload,
    WorkflowEvent,
    WorkflowFinishPayload,
    WorkflowStartPayload,
)
from spanflow.results import StepResult
from spanflow.step import NO_STATE_CHANGE, Step, StepContext, StepWriter
from spanflow.tracing.instrumentation import Scope
from spanflow.usage import Usage
from spanflow.workflow import (
    BranchEntry,
    ConditionContext,
    ConditionFunction,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
    StepEntry,
    Workflow,
)

__all__ = ["Frame", "Outcome", "Resume", "RunControl", "drive", "now_ms"]

logger = logging.getLogger("spanflow.executor")
_UNSET: Any = object()

OutcomeStatus = Literal["success", "failed", "suspended", "canceled", "bailed"]


def now_ms() -> int:
    """Epoch milliseconds, the unit of every timestamp in results and events."""
    return int(time.time() * 1000)


def _new_call_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True, eq=False)
class RunControl:
    """What every frame of one run (including nested workflows) shares."""

    run_id: str
    workflow_id: str
    resource_id: str | None
    request_context: RequestContext
    sink: Callable[[WorkflowEvent], None] | None = None
    """Where stream events go (``None`` when nobody streams: events are then not built)."""
    usage: Usage = field(default_factory=Usage)
    cancel_requested: bool = False
    status: str = "running"
    on_waiting: Callable[[], Any] | None = None
    """Awaited when a sleep begins (the run stores a ``waiting`` snapshot)."""

    def request_cancel(self) -> None:
        """Ask the run to stop scheduling further entries."""
        self.cancel_requested = True


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
class _StepRun:
    result: StepResult
    suspended: list[list[str]] = field(default_factory=list)
    slot: dict[str, Any] | None = None
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
    entry_state: dict[str, Any] | None = None
    """Resumable state of the entry at `position` (foreach progress, nested frames, ...)."""
    checkpoint: Callable[[], Any] | None = None
    """Awaited after every completed entry of the top-level frame (the run saves a snapshot)."""
    wire_cache: dict[str, tuple[StepResult, dict[str, Any]]] = field(default_factory=dict)
    """Wire dicts of finished step results, so snapshots do not re-serialise them each time."""

    def __post_init__(self) -> None:
        if self.carry is _UNSET:
            self.carry = self.input

    @property
    def observed(self) -> bool:
        return self.run.sink is not None

    def emit(self, scope: Scope, event: WorkflowEvent) -> None:
        """Send an event to the stream and record it on `scope`."""
        sink = self.run.sink
        if sink is not None:
            sink(event)
        scope.record(event)

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


# -- driving a frame -----------------------------------------------------------------------


async def drive(frame: Frame, resume: Resume | None = None) -> Outcome:
    """Run the frame's entries from `frame.position` to the end (or a stop)."""
    entries = frame.workflow._entries
    run = frame.run
    while frame.position < len(entries):
        if run.cancel_requested:
            return Outcome("canceled")
        entry = entries[frame.position]
        outcome = await _run_entry(frame, entry, frame.carry, resume)
        resume = None
        if outcome.status != "success":
            return outcome
        frame.carry = outcome.output
        frame.position += 1
        frame.entry_state = None
        if frame.checkpoint is not None:
            await frame.checkpoint()
    if run.cancel_requested:
        return Outcome("canceled")
    output = frame.carry
    schema = frame.workflow._output
    if schema is not None:
        try:
            output = schema.validate(output, what=f"output of workflow '{frame.workflow.id}'")
        except InvalidInputError as exc:
            return Outcome("failed", error=exc)
    return Outcome("success", output=output)


async def _run_entry(frame: Frame, entry: Entry, value: Any, resume: Resume | None) -> Outcome:
    if isinstance(entry, StepEntry):
        return await _single(frame, entry, value, resume)
    if isinstance(entry, ParallelEntry):
        return await _parallel(frame, entry, value, resume)
    if isinstance(entry, BranchEntry):
        return await _branch(frame, entry, value, resume)
    if isinstance(entry, ForeachEntry):
        return await _foreach(frame, entry, value, resume)
    if isinstance(entry, LoopEntry):
        return await _loop(frame, entry, value, resume)
    return await _sleep(frame, entry, value)


def _outcome_of(run: _StepRun) -> Outcome:
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


async def _single(frame: Frame, entry: StepEntry, value: Any, resume: Resume | None) -> Outcome:
    step = entry.step
    slot = None
    prior = None
    if resume is not None:
        prior = frame.steps.get(step.id)
        slot = (frame.entry_state or {}).get("slot")
        value = prior.payload if prior is not None else value
    else:
        frame.path.append(step.id)
    run = await run_step(frame, step, value, frame.scope, resume=resume, prior=prior, slot=slot)
    if run.slot is not None:
        frame.entry_state = {"slot": run.slot}
    return _outcome_of(run)


async def _run_children(
    frame: Frame,
    steps: list[Step[Any, Any] | Workflow],
    value: Any,
    scope: Scope,
    resume: Resume | None,
) -> Outcome:
    """Run steps concurrently (parallel / branch); combine their results."""
    slots: dict[str, Any] = dict((frame.entry_state or {}).get("slots", {}))
    to_run = steps if resume is None else [s for s in steps if s.id == resume.path[0]]

    async def one(step: Step[Any, Any] | Workflow) -> _StepRun:
        prior = frame.steps.get(step.id) if resume is not None else None
        input_value = prior.payload if prior is not None else value
        return await run_step(
            frame, step, input_value, scope, resume=resume, prior=prior, slot=slots.get(step.id)
        )

    if len(to_run) == 1:
        runs = [await one(to_run[0])]
    else:
        runs = list(await asyncio.gather(*(one(s) for s in to_run)))
    paths_by_step: dict[str, list[list[str]]] = dict(
        (frame.entry_state or {}).get("suspendedPaths", {})
    )
    for step, run in zip(to_run, runs, strict=True):
        if run.slot is not None:
            slots[step.id] = run.slot
        else:
            slots.pop(step.id, None)
        if run.suspended:
            paths_by_step[step.id] = run.suspended
        else:
            paths_by_step.pop(step.id, None)

    outputs: dict[str, Any] = {}
    suspended: list[list[str]] = []
    bailed: _StepRun | None = next((r for r in runs if r.bailed), None)
    for step in steps:  # declaration order decides which failure is reported
        result = frame.steps.get(step.id)
        if result is None:
            continue
        if result.status == "failed":
            return Outcome("failed", error=result.error)
        if result.status == "canceled":
            return Outcome("canceled")
        if result.status == "suspended":
            suspended.extend(paths_by_step.get(step.id, [[step.id]]))
        elif result.status == "success":
            outputs[step.id] = result.output
    if bailed is not None:
        return Outcome("bailed", output=bailed.result.output)
    if suspended:
        state = dict(frame.entry_state or {})
        state["slots"] = slots
        state["suspendedPaths"] = paths_by_step
        frame.entry_state = state
        return Outcome("suspended", suspended=suspended)
    return Outcome("success", output=outputs)


async def _parallel(
    frame: Frame, entry: ParallelEntry, value: Any, resume: Resume | None
) -> Outcome:
    steps = list(entry.steps)
    scope = frame.scope.block(
        "parallel",
        f"parallel {len(steps)} branches",
        {"spanflow.parallel.steps": [s.id for s in steps], "spanflow.entry.id": entry.id},
    )
    with ends_if_canceled(scope):
        outcome = await _run_children(frame, steps, value, scope, resume)
    scope.end(_end_status(outcome), error=outcome.error)
    return outcome


async def _branch(frame: Frame, entry: BranchEntry, value: Any, resume: Resume | None) -> Outcome:
    n = len(entry.branches)
    scope = frame.scope.block(
        "conditional", f"conditional {n} conditions", {"spanflow.entry.id": entry.id}
    )
    with ends_if_canceled(scope):
        if resume is not None:
            selected_ids = set((frame.entry_state or {}).get("selected", []))
            selected = [s for _, s in entry.branches if s.id in selected_ids]
        else:
            ctx = _condition_context(frame, value)
            verdicts = await asyncio.gather(
                *(
                    _evaluate_condition(cond, ctx, scope, i)
                    for i, (cond, _) in enumerate(entry.branches)
                )
            )
            selected = [s for (_, s), ok in zip(entry.branches, verdicts, strict=True) if ok]
            frame.entry_state = {"selected": [s.id for s in selected]}
        scope.set_attribute("spanflow.branch.selected_steps", [s.id for s in selected])
        outcome = (
            await _run_children(frame, selected, value, scope, resume)
            if selected
            else Outcome("success", output={})
        )
    scope.end(_end_status(outcome), error=outcome.error)
    return outcome


async def _evaluate_condition(
    cond: ConditionFunction, ctx: ConditionContext, parent: Scope, index: int
) -> bool:
    scope = parent.block("condition", f"condition {index}", {"spanflow.condition.index": index})
    try:
        with ends_if_canceled(scope):
            token = scope.enter()  # spans the condition opens nest under its own
            try:
                verdict = cond(ctx)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
            finally:
                scope.exit(token)
            result = bool(verdict)
    except Exception as exc:
        logger.warning("branch condition %d raised %r; counted as false", index, exc)
        scope.set_attribute("spanflow.condition.result", False)
        scope.end("failed", error=exc)
        return False
    scope.set_attribute("spanflow.condition.result", result)
    scope.end("success")
    return result


def _condition_context(frame: Frame, value: Any, iteration: int = 0) -> ConditionContext:
    run = frame.run
    return ConditionContext(
        input_data=value,
        state=frame.state,
        request_context=run.request_context,
        run_id=run.run_id,
        iteration_count=iteration,
        _steps=frame.steps,
        _init=frame.input,
    )


async def _loop(frame: Frame, entry: LoopEntry, value: Any, resume: Resume | None) -> Outcome:
    step = entry.step
    run = frame.run
    scope = frame.scope.block(
        "loop",
        f"loop {entry.kind}",
        {"spanflow.loop.type": entry.kind, "spanflow.entry.id": entry.id},
    )
    state = frame.entry_state or {}
    iteration = int(state.get("iteration", 0))
    current = value
    prior = None
    if resume is not None:
        prior = frame.steps.get(step.id)
        current = prior.payload if prior is not None else value
    else:
        frame.path.append(step.id)
    outcome: Outcome
    with ends_if_canceled(scope):
        while True:
            if run.cancel_requested:
                outcome = Outcome("canceled")
                break
            step_run = await run_step(
                frame, step, current, scope, resume=resume, prior=prior, slot=state.get("slot")
            )
            resume, prior = None, None
            iteration += 1
            if step_run.result.status != "success" or step_run.bailed:
                frame.entry_state = {"iteration": iteration - 1, "slot": step_run.slot}
                outcome = _outcome_of(step_run)
                break
            current = step_run.result.output
            token = scope.enter()  # spans the condition opens nest under the loop's
            try:
                verdict = entry.condition(_condition_context(frame, current, iteration))
                if inspect.isawaitable(verdict):
                    verdict = await verdict
            except Exception as exc:
                outcome = Outcome("failed", error=exc)
                break
            finally:
                scope.exit(token)
            if bool(verdict) != (entry.kind == "dowhile"):
                outcome = Outcome("success", output=current)
                break
    scope.set_attribute("spanflow.loop.iterations", iteration)
    scope.end(_end_status(outcome), error=outcome.error)
    return outcome


async def _sleep(frame: Frame, entry: SleepEntry, value: Any) -> Outcome:
    run = frame.run
    try:
        seconds = await _sleep_seconds(frame, entry, value)
    except Exception as exc:
        return Outcome("failed", error=exc)
    scope = frame.scope.block("sleep", f"sleep {seconds:g}s", {"spanflow.sleep.seconds": seconds})
    event_id = frame.prefix + entry.id
    started_at = now_ms()
    # Status and snapshot first: whoever sees the waiting event finds the run waiting.
    frame.steps[entry.id] = StepResult("waiting", payload=value, started_at=started_at)
    run.status = "waiting"
    if run.on_waiting is not None:
        await run.on_waiting()
    if frame.observed or scope.recording:
        frame.emit(
            scope,
            WorkflowEvent(
                "workflow-step-waiting",
                run.run_id,
                StepWaitingPayload(event_id, entry.id, value, started_at),
            ),
        )
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        frame.steps[entry.id] = StepResult(
            "canceled", payload=value, started_at=started_at, ended_at=now_ms()
        )
        scope.end("canceled")
        raise
    finally:
        run.status = "running"
    ended_at = now_ms()
    frame.steps[entry.id] = StepResult(
        "success", payload=value, output=value, started_at=started_at, ended_at=ended_at
    )
    if frame.observed or scope.recording:
        frame.emit(
            scope,
            WorkflowEvent(
                "workflow-step-result",
                run.run_id,
                StepResultPayload(
                    event_id, entry.id, None, "success", value, started_at, ended_at, value
                ),
            ),
        )
    scope.end("success")
    return Outcome("success", output=value)


async def _sleep_seconds(frame: Frame, entry: SleepEntry, value: Any) -> float:
    ctx = _condition_context(frame, value)
    if entry.until is not None:
        when = entry.until(ctx) if callable(entry.until) else entry.until
        if inspect.isawaitable(when):
            when = await when
        if not isinstance(when, datetime):
            raise TypeError(f"sleep_until {entry.id!r}: expected a datetime, got {when!r}")
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    seconds: Any = entry.seconds(ctx) if callable(entry.seconds) else entry.seconds
    if inspect.isawaitable(seconds):
        seconds = await seconds
    if not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"sleep {entry.id!r}: expected seconds >= 0, got {seconds!r}")
    return float(seconds)


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


def _end_status(outcome: Outcome) -> Literal["success", "failed", "suspended", "canceled"]:
    if outcome.status == "bailed":
        return "success"
    return outcome.status


# -- foreach -------------------------------------------------------------------------------


async def _foreach(frame: Frame, entry: ForeachEntry, value: Any, resume: Resume | None) -> Outcome:
    from spanflow.foreach import run_foreach

    return await run_foreach(frame, entry, value, resume)


# -- one step ------------------------------------------------------------------------------


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
) -> _StepRun:
    """Run one step (all its attempts) and record its `StepResult` in the frame.

    `events=False` (foreach iterations) leaves the start/result events to the caller, and
    does not record a per-iteration result in ``frame.steps``.
    """
    if isinstance(step, Workflow):
        from spanflow.nested import run_nested

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
    call_id = _new_call_id()
    attempts = step.retries if step.retries is not None else frame.workflow.retry_config.attempts
    attempt = 0
    scope = parent.step(step.id, input=value, attempt=1, foreach_index=foreach_index)
    emitting = events and (frame.observed or scope.recording)

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

    def finish(result: StepResult, end_scope: Scope, bailed: bool = False) -> _StepRun:
        result.resume_payload = resume_data
        result.resumed_at = resumed_at
        if events:
            frame.steps[step.id] = result
        if emitting:
            _emit_step_end(frame, end_scope, event_id, step.id, call_id, result)
        status = "bailed" if bailed else result.status
        end_scope.end(status, output=result.output, error=result.error)  # type: ignore[arg-type]
        suspended = [[step.id]] if result.status == "suspended" else []
        return _StepRun(result, suspended=suspended, bailed=bailed)

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


def _emit_step_end(
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
            Usage(**_usage_fields(frame.run.usage)),
            final_workflow_result=outcome.output if status == "success" else None,
            error=outcome.error if status == "failed" else None,
        ),
    )


def _usage_fields(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
    }
