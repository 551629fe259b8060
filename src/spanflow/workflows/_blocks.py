"""Control-flow blocks: ``parallel``, ``branch``, ``dowhile``/``dountil`` and ``sleep``.

Each block opens its own scope (span) under the frame's, runs its steps through the step
runner, and turns their results into one `Outcome`. Parallel and branch share the way they run
children concurrently and combine results (first failure in declaration order, then any
suspension); a branch condition that raises counts as false and is logged and traced.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spanflow.tracing.instrumentation import Scope
from spanflow.workflows._entries import (
    BranchEntry,
    ConditionContext,
    ConditionFunction,
    LoopEntry,
    ParallelEntry,
    SleepEntry,
)
from spanflow.workflows._frame import (
    Frame,
    Outcome,
    Resume,
    StepRun,
    end_status,
    ends_if_canceled,
    now_ms,
    outcome_of,
)
from spanflow.workflows._snapshot import (
    BranchProgress,
    FrameSnapshot,
    LoopProgress,
    ParallelProgress,
)
from spanflow.workflows._step_runner import run_step
from spanflow.workflows.events import StepResultPayload, StepWaitingPayload, WorkflowEvent
from spanflow.workflows.results import StepResult
from spanflow.workflows.step import Step

if TYPE_CHECKING:
    from spanflow.workflows.workflow import Workflow

__all__ = ["condition_context", "run_branch", "run_loop", "run_parallel", "run_sleep"]

logger = logging.getLogger("spanflow.executor")


async def _run_children(
    frame: Frame,
    steps: list[Step[Any, Any] | Workflow],
    value: Any,
    scope: Scope,
    resume: Resume | None,
    progress: ParallelProgress | BranchProgress,
) -> Outcome:
    """Run steps concurrently (parallel / branch); combine their results.

    `progress` is the block's progress so far; when a step suspends, the frame's
    `entry_progress` becomes a copy of it with the suspended steps' frames and paths.
    """
    to_run = steps if resume is None else [s for s in steps if s.id == resume.path[0]]

    async def one(step: Step[Any, Any] | Workflow) -> StepRun:
        prior = frame.steps.get(step.id) if resume is not None else None
        input_value = prior.payload if prior is not None else value
        # A nested frame goes with its resume only: without one, a slot means a restart going
        # on from the nested workflow's checkpoint, and blocks run again from their start.
        slot = progress.slots.get(step.id) if resume is not None else None
        return await run_step(
            frame, step, input_value, scope, resume=resume, prior=prior, slot=slot
        )

    if len(to_run) == 1:
        runs = [await one(to_run[0])]
    else:
        runs = list(await asyncio.gather(*(one(s) for s in to_run)))
    slots, paths_by_step = _suspensions(progress, to_run, runs)
    outcome = _combined(frame, steps, runs, paths_by_step)
    if outcome.status == "suspended":
        frame.entry_progress = replace(progress, slots=slots, suspended_paths=paths_by_step)
    return outcome


def _suspensions(
    progress: ParallelProgress | BranchProgress,
    steps: list[Step[Any, Any] | Workflow],
    runs: list[StepRun],
) -> tuple[dict[str, FrameSnapshot], dict[str, list[list[str]]]]:
    """The nested frames and suspended paths of the block, updated with these runs."""
    slots = dict(progress.slots)
    paths_by_step = dict(progress.suspended_paths)
    for step, run in zip(steps, runs, strict=True):
        if run.slot is not None:
            slots[step.id] = run.slot
        else:
            slots.pop(step.id, None)
        if run.suspended:
            paths_by_step[step.id] = run.suspended
        else:
            paths_by_step.pop(step.id, None)
    return slots, paths_by_step


def _combined(
    frame: Frame,
    steps: list[Step[Any, Any] | Workflow],
    runs: list[StepRun],
    paths_by_step: dict[str, list[list[str]]],
) -> Outcome:
    """The block's outcome: the first failure in declaration order, then any suspension."""
    outputs: dict[str, Any] = {}
    suspended: list[list[str]] = []
    bailed: StepRun | None = next((r for r in runs if r.bailed), None)
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
        return Outcome("suspended", suspended=suspended)
    return Outcome("success", output=outputs)


async def run_parallel(
    frame: Frame, entry: ParallelEntry, value: Any, resume: Resume | None
) -> Outcome:
    steps = list(entry.steps)
    scope = frame.scope.block(
        "parallel",
        f"parallel {len(steps)} branches",
        {"spanflow.parallel.steps": [s.id for s in steps], "spanflow.entry.id": entry.id},
    )
    progress = frame.entry_progress
    if not isinstance(progress, ParallelProgress):
        progress = ParallelProgress()
    with ends_if_canceled(scope):
        outcome = await _run_children(frame, steps, value, scope, resume, progress)
    scope.end(end_status(outcome), error=outcome.error)
    return outcome


async def run_branch(
    frame: Frame, entry: BranchEntry, value: Any, resume: Resume | None
) -> Outcome:
    n = len(entry.branches)
    scope = frame.scope.block(
        "conditional", f"conditional {n} conditions", {"spanflow.entry.id": entry.id}
    )
    with ends_if_canceled(scope):
        progress = frame.entry_progress
        if resume is not None:
            if not isinstance(progress, BranchProgress):
                progress = BranchProgress()
            selected = [s for _, s in entry.branches if s.id in progress.selected]
        else:
            ctx = condition_context(frame, value)
            verdicts = await asyncio.gather(
                *(
                    _evaluate_condition(cond, ctx, scope, i)
                    for i, (cond, _) in enumerate(entry.branches)
                )
            )
            selected = [s for (_, s), ok in zip(entry.branches, verdicts, strict=True) if ok]
            progress = BranchProgress(selected=[s.id for s in selected])
            frame.entry_progress = progress
        scope.set_attribute("spanflow.branch.selected_steps", [s.id for s in selected])
        outcome = (
            await _run_children(frame, selected, value, scope, resume, progress)
            if selected
            else Outcome("success", output={})
        )
    scope.end(end_status(outcome), error=outcome.error)
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


def condition_context(frame: Frame, value: Any, iteration: int = 0) -> ConditionContext:
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


async def run_loop(frame: Frame, entry: LoopEntry, value: Any, resume: Resume | None) -> Outcome:
    step = entry.step
    run = frame.run
    scope = frame.scope.block(
        "loop",
        f"loop {entry.kind}",
        {"spanflow.loop.type": entry.kind, "spanflow.entry.id": entry.id},
    )
    progress = frame.entry_progress
    if not isinstance(progress, LoopProgress):
        progress = LoopProgress()
    iteration = progress.iteration
    current = value
    prior = None
    slot = progress.slot if resume is not None else None  # the resumed iteration's only
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
                frame, step, current, scope, resume=resume, prior=prior, slot=slot
            )
            resume, prior, slot = None, None, None
            iteration += 1
            if step_run.result.status != "success" or step_run.bailed:
                frame.entry_progress = LoopProgress(iteration=iteration - 1, slot=step_run.slot)
                outcome = outcome_of(step_run)
                break
            current = step_run.result.output
            token = scope.enter()  # spans the condition opens nest under the loop's
            try:
                verdict = entry.condition(condition_context(frame, current, iteration))
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
    scope.end(end_status(outcome), error=outcome.error)
    return outcome


async def run_sleep(frame: Frame, entry: SleepEntry, value: Any) -> Outcome:
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
    ctx = condition_context(frame, value)
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
