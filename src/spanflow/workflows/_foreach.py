"""``.foreach(step, concurrency=n)``: one execution of a step per element of a list.

At most `concurrency` iterations run at once (the first `concurrency` start together, then a
free worker takes the next item); outputs keep the input order. The first failure stops
scheduling new iterations (those in flight finish). A suspension holds the items after it: the
iterations already started finish (and may suspend too), and no item of a later group of
`concurrency` items (Mastra's batches) starts while an iteration is suspended; the foreach
then suspends. With ``concurrency=1`` that is one suspended item at a time: a resume without
``foreach_index`` resumes it, then the foreach goes on with the next item (three items that
suspend take three resumes). With more, each suspended iteration can be resumed by index
(`Run.resume(..., foreach_index=i)`), or all of them at once, with the same data, without one;
the held items start once no iteration before their group is left suspended. An iteration that
suspends inside a nested workflow is reported at its inner path (``["each", "approve"]``). One
``workflow-step-start`` and one ``workflow-step-result`` cover the whole foreach, with a
``workflow-step-progress`` event after each iteration (Mastra's shape).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
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
        resumed: list[int] = []
    else:
        resumed = _to_resume(progress, resume)
    iterations = _Iterations(frame, entry, scope, progress, resume, frozenset(resumed))
    iterations.emit_start()
    try:
        await iterations.run(resumed)
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
    resumed: frozenset[int]
    """The suspended iterations this execution resumes."""
    observed: bool = False
    """Whether anyone sees events (the stream or the scope): otherwise none are built."""
    resumed_at: int | None = None
    completed: int = 0
    """Iterations that ended (not suspended), earlier executions' included."""
    failure: BaseException | None = None
    bailed: tuple[Any] | None = None
    """The bailed iteration's output, when one bailed."""
    canceled: bool = False
    suspended_now: set[int] = field(default_factory=set)
    """The iterations that suspended in this execution."""

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

    async def run(self, resumed: list[int]) -> None:
        """Run the `resumed` iterations, then the items not yet started, at most
        ``concurrency`` at once; the first ``concurrency`` of them start together."""
        pending = self._schedule(resumed)
        first = list(itertools.islice(pending, self.entry.concurrency))
        if len(first) == 1:
            await self._worker(first[0], pending, alone=True)
        elif first:
            await asyncio.gather(*(self._worker(index, pending) for index in first))

    def _schedule(self, resumed: list[int]) -> Iterator[int]:
        """The iterations to run, in order, as long as nothing stopped the foreach."""
        for index in resumed:
            if self._stopped():
                return
            yield index
        progress = self.progress
        for index, status in enumerate(progress.statuses):
            if status is not None:
                continue
            if self._stopped() or self._held(index):
                return
            yield index

    def _held(self, index: int) -> bool:
        """Whether a suspension holds item `index` back: an iteration that is suspended (one not
        resumed now, or one that suspended again) in an earlier group of ``concurrency`` items.

        The groups are Mastra's batches: the items of a suspended iteration's own group still
        start (with ``concurrency=1``, no item starts while another is suspended), so a resume
        without index goes on with the next group, as Mastra's does; but iterations are not
        run batch by batch: a free worker takes the next item at once.
        """
        size = self.entry.concurrency
        group = index // size
        waiting = self.suspended_now.union(
            i for i in self.progress.suspend_payloads if i not in self.resumed
        )
        return any(i // size < group for i in waiting)

    def _stopped(self) -> bool:
        return (
            self.failure is not None
            or self.bailed is not None
            or self.canceled
            or self.frame.run.cancel_requested
        )

    async def _worker(self, index: int | None, pending: Iterator[int], alone: bool = False) -> None:
        while index is not None:
            step_run = await self._iteration(index)
            self._record(index, step_run)
            if not alone:
                # Let the other workers' iterations run before taking the next item: a step
                # that never awaits would otherwise take every item before its siblings start
                # theirs (and events would not come in Mastra's order, item by item).
                await asyncio.sleep(0)
            index = next(pending, None)

    async def _iteration(self, index: int) -> StepRun:
        progress = self.progress
        if index not in self.resumed:
            return await run_step(
                self.frame,
                self.entry.step,
                progress.items[index],
                self.scope,
                foreach_index=index,
                events=False,
            )
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
            resume=_iteration_resume(self.resume, progress.paths.get(index)),
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
            progress.labels.pop(index, None)
            progress.paths.pop(index, None)
        elif result.status == "suspended":
            self.suspended_now.add(index)
            progress.suspend_payloads[index] = result.suspend_payload
            if result.resume_label is not None:
                progress.labels[index] = result.resume_label
            else:
                progress.labels.pop(index, None)
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
    iteration's own path (inside a nested workflow) is the one to follow. The foreach index is
    this foreach's: a foreach inside the iteration does not get it."""
    if resume is None:
        return None
    path = resume.path
    if paths is not None and len(paths) == 1 and path not in paths and len(path) <= 1:
        path = paths[0]
    return Resume(path, resume.data)


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
