"""``.foreach(step, concurrency=n)``: one execution of a step per element of a list.

At most `concurrency` iterations run at once; outputs keep the input order. The first failure
stops scheduling new iterations (those in flight finish). Suspended iterations do not stop the
others; the foreach then suspends and each suspended iteration can be resumed by index
(`Run.resume(..., foreach_index=i)`; without an index every suspended iteration is resumed with
the same data). An iteration that suspends inside a nested workflow is reported at its inner
path (``["each", "approve"]``). One ``workflow-step-start`` and one ``workflow-step-result``
cover the whole foreach, with a ``workflow-step-progress`` event after each iteration (Mastra's
shape).
"""

from __future__ import annotations

import asyncio
from typing import Any

from spanflow.workflows._frame import Frame, Outcome, Resume, now_ms
from spanflow.workflows._step_runner import run_step
from spanflow.workflows.events import (
    StepProgressPayload,
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    WorkflowEvent,
)
from spanflow.workflows.results import StepResult
from spanflow.workflows.workflow import ForeachEntry

__all__ = ["run_foreach"]


async def run_foreach(
    frame: Frame, entry: ForeachEntry, value: Any, resume: Resume | None
) -> Outcome:
    """Run (or resume) a foreach entry."""
    step = entry.step
    run = frame.run
    event_id = frame.prefix + entry.id
    scope = frame.scope.block(
        "loop",
        "loop foreach",
        {
            "spanflow.loop.type": "foreach",
            "spanflow.loop.concurrency": entry.concurrency,
            "spanflow.entry.id": entry.id,
        },
    )
    state = frame.entry_state
    if resume is None or state is None:
        if not isinstance(value, list | tuple):
            error = TypeError(
                f"foreach over step '{step.id}' needs a list as input, got {type(value).__name__}"
            )
            scope.end("failed", error=error)
            return Outcome("failed", error=error)
        items = list(value)
        outputs: list[Any] = [None] * len(items)
        statuses: list[str | None] = [None] * len(items)
        suspend_payloads: dict[int, Any] = {}
        slots: dict[int, Any] = {}
        paths: dict[int, list[list[str]]] = {}
        started_at = now_ms()
        to_run = list(range(len(items)))
    else:
        items = state["items"]
        outputs = state["outputs"]
        statuses = state["statuses"]
        suspend_payloads = state["suspend"]
        slots = state["slots"]
        paths = state.get("paths") or {}
        started_at = state["startedAt"]
        to_run = (
            [resume.foreach_index]
            if resume.foreach_index is not None
            else [i for i in sorted(suspend_payloads) if _resumes(resume, paths.get(i))]
        )
    total = len(items)
    observed = frame.observed or scope.recording
    resumed_at = now_ms() if resume is not None else None
    if observed:
        frame.emit(
            scope,
            WorkflowEvent(
                "workflow-step-start",
                run.run_id,
                StepStartPayload(
                    event_id,
                    step.id,
                    None,
                    items,
                    started_at,
                    resume.data if resume is not None else None,
                    resumed_at,
                ),
            ),
        )

    completed = sum(1 for s in statuses if s is not None and s != "suspended")
    failure: BaseException | None = None
    bailed: tuple[Any] | None = None
    canceled = False
    pending = iter(to_run)

    async def worker() -> None:
        nonlocal completed, failure, bailed, canceled
        for index in pending:
            if failure is not None or bailed is not None or canceled or run.cancel_requested:
                return
            prior = None
            iteration_resume = _iteration_resume(resume, paths.get(index))
            if resume is not None:
                prior = StepResult(
                    "suspended",
                    items[index],
                    suspend_payload=suspend_payloads.get(index),
                    started_at=started_at,
                )
            step_run = await run_step(
                frame,
                step,
                items[index],
                scope,
                resume=iteration_resume,
                prior=prior,
                slot=slots.get(index),
                foreach_index=index,
                events=False,
            )
            result = step_run.result
            statuses[index] = result.status
            if step_run.slot is not None:
                slots[index] = step_run.slot
            else:
                slots.pop(index, None)
            if step_run.bailed:
                bailed = (result.output,)
            elif result.status == "success":
                outputs[index] = result.output
                suspend_payloads.pop(index, None)
                paths.pop(index, None)
            elif result.status == "suspended":
                suspend_payloads[index] = result.suspend_payload
                paths[index] = step_run.suspended or [[step.id]]
            elif result.status == "canceled":
                canceled = True
            elif failure is None:
                failure = result.error
            if result.status != "suspended":
                completed += 1
            if observed and result.status in ("success", "failed", "suspended"):
                frame.emit(
                    scope,
                    WorkflowEvent(
                        "workflow-step-progress",
                        run.run_id,
                        StepProgressPayload(
                            event_id,
                            step.id,
                            completed,
                            total,
                            index,
                            result.status,
                            result.output if result.status == "success" else None,
                        ),
                    ),
                )

    def keep_progress() -> None:
        frame.entry_state = {
            "items": items,
            "outputs": outputs,
            "statuses": statuses,
            "suspend": suspend_payloads,
            "slots": slots,
            "paths": paths,
            "startedAt": started_at,
        }

    workers = min(entry.concurrency, len(to_run))
    try:
        if workers == 1:
            await worker()
        elif workers > 1:
            await asyncio.gather(*(worker() for _ in range(workers)))
    except asyncio.CancelledError:
        # run.cancel(): the iterations in flight recorded themselves; close the foreach too.
        keep_progress()
        result = StepResult("canceled", items, started_at=started_at, ended_at=now_ms())
        frame.steps[step.id] = result
        if observed:
            _emit_end(frame, scope, event_id, step.id, result)
        scope.end("canceled")
        raise

    scope.set_attribute("spanflow.loop.iterations", completed)
    keep_progress()
    if bailed is not None:
        scope.end("success")
        return Outcome("bailed", output=bailed[0])
    if canceled:
        scope.end("canceled")
        return Outcome("canceled")
    ended_at = now_ms()
    if failure is not None:
        result = StepResult(
            "failed", items, error=failure, started_at=started_at, ended_at=ended_at
        )
    elif suspend_payloads:
        first = min(suspend_payloads)
        result = StepResult(
            "suspended",
            items,
            suspend_payload=suspend_payloads[first],
            started_at=started_at,
            suspended_at=ended_at,
        )
    else:
        result = StepResult(
            "success", items, list(outputs), started_at=started_at, ended_at=ended_at
        )
    if resume is not None:
        result.resume_payload = resume.data
        result.resumed_at = resumed_at
    frame.steps[step.id] = result
    if observed:
        _emit_end(frame, scope, event_id, step.id, result)
    scope.end(result.status, error=result.error)  # type: ignore[arg-type]
    if result.status == "failed":
        return Outcome("failed", error=failure)
    if result.status == "suspended":
        # A nested workflow suspends at a path inside it ("inner.approve"): report each
        # distinct one, so a resume can name it.
        suspended: list[list[str]] = []
        for index in sorted(suspend_payloads):
            for path in paths.get(index) or [[step.id]]:
                if path not in suspended:
                    suspended.append(path)
        return Outcome("suspended", suspended=suspended)
    return Outcome("success", output=result.output)


def _resumes(resume: Resume, paths: list[list[str]] | None) -> bool:
    """Whether a resume without an index is meant for an iteration suspended at `paths`."""
    return paths is None or len(resume.path) <= 1 or resume.path in paths


def _iteration_resume(resume: Resume | None, paths: list[list[str]] | None) -> Resume | None:
    """The resume to hand one iteration: when the caller named only the foreach step, the
    iteration's own path (inside a nested workflow) is the one to follow."""
    if resume is None or paths is None or len(paths) != 1 or resume.path in paths:
        return resume
    if len(resume.path) <= 1:
        return Resume(paths[0], resume.data, resume.foreach_index)
    return resume


def _emit_end(frame: Frame, scope: Any, event_id: str, name: str, result: StepResult) -> None:
    run_id = frame.run.run_id
    if result.status == "suspended":
        assert result.started_at is not None
        assert result.suspended_at is not None
        frame.emit(
            scope,
            WorkflowEvent(
                "workflow-step-suspended",
                run_id,
                StepSuspendedPayload(
                    event_id,
                    name,
                    None,
                    result.payload,
                    result.suspend_payload,
                    result.started_at,
                    result.suspended_at,
                ),
            ),
        )
        return
    # Mastra's foreach result carries no payload, start time or call id.
    assert result.ended_at is not None
    frame.emit(
        scope,
        WorkflowEvent(
            "workflow-step-result",
            run_id,
            StepResultPayload(
                event_id, name, None, result.status, None, None, result.ended_at,
                result.output, result.error,
            ),
        ),
    )  # fmt: skip
