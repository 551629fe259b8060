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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from spanflow.tracing.instrumentation import Scope
from spanflow.workflows._entries import ForeachEntry
from spanflow.workflows._frame import Frame, Outcome, Resume, StepRun, now_ms
from spanflow.workflows._snapshot import ForeachProgress
from spanflow.workflows._step_runner import run_step
from spanflow.workflows.events import (
    StepProgressPayload,
    StepResultPayload,
    StepStartPayload,
    StepSuspendedPayload,
    WorkflowEvent,
)
from spanflow.workflows.results import StepResult

__all__ = ["run_foreach"]


async def run_foreach(
    frame: Frame, entry: ForeachEntry, value: Any, resume: Resume | None
) -> Outcome:
    """Run (or resume) a foreach entry."""
    scope = frame.scope.block(
        "loop",
        "loop foreach",
        {
            "spanflow.loop.type": "foreach",
            "spanflow.loop.concurrency": entry.concurrency,
            "spanflow.entry.id": entry.id,
        },
    )
    progress = frame.entry_progress
    if resume is None or not isinstance(progress, ForeachProgress):
        if not isinstance(value, list | tuple):
            error = TypeError(
                f"foreach over step '{entry.step.id}' needs a list as input, "
                f"got {type(value).__name__}"
            )
            scope.end("failed", error=error)
            return Outcome("failed", error=error)
        progress = _fresh(list(value))
        to_run = list(range(len(progress.items)))
    else:
        to_run = _to_resume(progress, resume)
    iterations = _Iterations(frame, entry, scope, progress, resume)
    iterations.emit_start()
    try:
        await iterations.run(to_run)
    except asyncio.CancelledError:
        # run.cancel(): the iterations in flight recorded themselves; close the foreach too.
        iterations.end_canceled()
        raise
    return iterations.end()


def _fresh(items: list[Any]) -> ForeachProgress:
    return ForeachProgress(
        items=items,
        outputs=[None] * len(items),
        statuses=[None] * len(items),
        started_at=now_ms(),
    )


def _to_resume(progress: ForeachProgress, resume: Resume) -> list[int]:
    """The suspended iterations this resume is for."""
    if resume.foreach_index is not None:
        return [resume.foreach_index]
    paths = progress.paths
    return [i for i in sorted(progress.suspend_payloads) if _resumes(resume, paths.get(i))]


@dataclass(slots=True, eq=False)
class _Iterations:
    """A foreach's iterations in one execution: their progress, and how they went."""

    frame: Frame
    entry: ForeachEntry
    scope: Scope
    progress: ForeachProgress
    """The foreach's progress, updated in place as iterations end."""
    resume: Resume | None
    observed: bool = False
    """Whether anyone sees events (the stream or the scope): otherwise none are built."""
    resumed_at: int | None = None
    completed: int = 0
    """Iterations that ended (not suspended), earlier executions' included."""
    failure: BaseException | None = None
    bailed: tuple[Any] | None = None
    """The bailed iteration's output, when one bailed."""
    canceled: bool = False

    def __post_init__(self) -> None:
        self.observed = self.frame.observed or self.scope.recording
        self.resumed_at = now_ms() if self.resume is not None else None
        self.completed = sum(
            1 for s in self.progress.statuses if s is not None and s != "suspended"
        )

    @property
    def event_id(self) -> str:
        return self.frame.prefix + self.entry.id

    def emit_start(self) -> None:
        if not self.observed:
            return
        resume, progress = self.resume, self.progress
        payload = StepStartPayload(
            self.event_id,
            self.entry.step.id,
            None,
            progress.items,
            progress.started_at,
            resume.data if resume is not None else None,
            self.resumed_at,
        )
        self.frame.emit(
            self.scope, WorkflowEvent("workflow-step-start", self.frame.run.run_id, payload)
        )

    async def run(self, to_run: list[int]) -> None:
        """Run the iterations in `to_run`, at most ``concurrency`` at once."""
        pending = iter(to_run)
        workers = min(self.entry.concurrency, len(to_run))
        if workers == 1:
            await self._worker(pending)
        elif workers > 1:
            await asyncio.gather(*(self._worker(pending) for _ in range(workers)))

    def _stopped(self) -> bool:
        return (
            self.failure is not None
            or self.bailed is not None
            or self.canceled
            or self.frame.run.cancel_requested
        )

    async def _worker(self, pending: Iterator[int]) -> None:
        for index in pending:
            if self._stopped():
                return
            step_run = await self._iteration(index)
            self._record(index, step_run)

    async def _iteration(self, index: int) -> StepRun:
        progress, resume = self.progress, self.resume
        prior = None
        if resume is not None:
            prior = StepResult(
                "suspended",
                progress.items[index],
                suspend_payload=progress.suspend_payloads.get(index),
                started_at=progress.started_at,
            )
        return await run_step(
            self.frame,
            self.entry.step,
            progress.items[index],
            self.scope,
            resume=_iteration_resume(resume, progress.paths.get(index)),
            prior=prior,
            slot=progress.slots.get(index),
            foreach_index=index,
            events=False,
        )

    def _record(self, index: int, step_run: StepRun) -> None:
        progress = self.progress
        result = step_run.result
        progress.statuses[index] = result.status
        if step_run.slot is not None:
            progress.slots[index] = step_run.slot
        else:
            progress.slots.pop(index, None)
        if step_run.bailed:
            self.bailed = (result.output,)
        elif result.status == "success":
            progress.outputs[index] = result.output
            progress.suspend_payloads.pop(index, None)
            progress.paths.pop(index, None)
        elif result.status == "suspended":
            progress.suspend_payloads[index] = result.suspend_payload
            progress.paths[index] = step_run.suspended or [[self.entry.step.id]]
        elif result.status == "canceled":
            self.canceled = True
        elif self.failure is None:
            self.failure = result.error
        if result.status != "suspended":
            self.completed += 1
        status = result.status
        if self.observed and status in ("success", "failed", "suspended"):
            self._emit_progress(index, status, result.output if status == "success" else None)

    def _emit_progress(
        self, index: int, status: Literal["success", "failed", "suspended"], output: Any
    ) -> None:
        payload = StepProgressPayload(
            self.event_id,
            self.entry.step.id,
            self.completed,
            len(self.progress.items),
            index,
            status,
            output,
        )
        self.frame.emit(
            self.scope, WorkflowEvent("workflow-step-progress", self.frame.run.run_id, payload)
        )

    def end_canceled(self) -> None:
        """Close the foreach as canceled (the run was canceled while iterations ran)."""
        frame, progress = self.frame, self.progress
        frame.entry_progress = progress
        result = StepResult(
            "canceled", progress.items, started_at=progress.started_at, ended_at=now_ms()
        )
        frame.steps[self.entry.step.id] = result
        if self.observed:
            _emit_end(frame, self.scope, self.event_id, self.entry.step.id, result)
        self.scope.end("canceled")

    def end(self) -> Outcome:
        """Record the foreach's result, end its scope, and say how it ended."""
        scope = self.scope
        scope.set_attribute("spanflow.loop.iterations", self.completed)
        self.frame.entry_progress = self.progress
        if self.bailed is not None:
            scope.end("success")
            return Outcome("bailed", output=self.bailed[0])
        if self.canceled:
            scope.end("canceled")
            return Outcome("canceled")
        result = self._result()
        step_id = self.entry.step.id
        self.frame.steps[step_id] = result
        if self.observed:
            _emit_end(self.frame, scope, self.event_id, step_id, result)
        scope.end(result.status, error=result.error)  # type: ignore[arg-type]
        if result.status == "failed":
            return Outcome("failed", error=self.failure)
        if result.status == "suspended":
            return Outcome("suspended", suspended=self._suspended_paths())
        return Outcome("success", output=result.output)

    def _result(self) -> StepResult:
        progress = self.progress
        items, started_at, ended_at = progress.items, progress.started_at, now_ms()
        payloads = progress.suspend_payloads
        if self.failure is not None:
            result = StepResult(
                "failed", items, error=self.failure, started_at=started_at, ended_at=ended_at
            )
        elif payloads:
            result = StepResult(
                "suspended",
                items,
                suspend_payload=payloads[min(payloads)],
                started_at=started_at,
                suspended_at=ended_at,
            )
        else:
            result = StepResult(
                "success", items, list(progress.outputs), started_at=started_at, ended_at=ended_at
            )
        if self.resume is not None:
            result.resume_payload = self.resume.data
            result.resumed_at = self.resumed_at
        return result

    def _suspended_paths(self) -> list[list[str]]:
        # A nested workflow suspends at a path inside it ("inner.approve"): report each
        # distinct one, so a resume can name it.
        suspended: list[list[str]] = []
        for index in sorted(self.progress.suspend_payloads):
            for path in self.progress.paths.get(index) or [[self.entry.step.id]]:
                if path not in suspended:
                    suspended.append(path)
        return suspended


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
