"""The executor: walks a workflow's entries, one after another, from a frame's position.

It knows control flow and nothing else: events go to the run's sink and to the current `Scope`
(the tracing seam), snapshots are taken by whoever owns the top-level `Frame` (the run), and wire
JSON is never built here. Each kind of entry has its own module: one step (`step_runner`),
parallel/branch/loops/sleep (`blocks`), foreach (`foreach`) and nested workflows (`nested`).

After every completed entry a nested workflow's frame hands its state to its parent
(`Frame.share_state`) and checkpoints (`Frame.checkpoint`), so a crash inside a nested
workflow loses at most the inner step that was running.
"""

from __future__ import annotations

from typing import Any

from spanflow.errors import InvalidInputError
from spanflow.workflows._blocks import run_branch, run_loop, run_parallel, run_sleep
from spanflow.workflows._entries import (
    BranchEntry,
    Entry,
    ForeachEntry,
    LoopEntry,
    ParallelEntry,
    StepEntry,
)
from spanflow.workflows._foreach import run_foreach
from spanflow.workflows._frame import Frame, Outcome, Resume, outcome_of
from spanflow.workflows._snapshot import NestedProgress
from spanflow.workflows._step_runner import run_step

__all__ = ["drive"]


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
        frame.entry_progress = None
        if frame.share_state is not None:
            error = frame.share_state()
            if error is not None:
                return Outcome("failed", error=error)
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
        return await run_parallel(frame, entry, value, resume)
    if isinstance(entry, BranchEntry):
        return await run_branch(frame, entry, value, resume)
    if isinstance(entry, ForeachEntry):
        return await run_foreach(frame, entry, value, resume)
    if isinstance(entry, LoopEntry):
        return await run_loop(frame, entry, value, resume)
    return await run_sleep(frame, entry, value)


async def _single(frame: Frame, entry: StepEntry, value: Any, resume: Resume | None) -> Outcome:
    """One step (or nested workflow). A nested workflow's frame kept as the entry's progress is
    where it goes on from: on a resume, from its suspension; without one (a restart), from its
    last checkpoint, its step already on the path."""
    step = entry.step
    progress = frame.entry_progress
    slot = progress.slot if isinstance(progress, NestedProgress) else None
    prior = None
    if resume is not None:
        prior = frame.steps.get(step.id)
        value = prior.payload if prior is not None else value
    elif slot is None:
        frame.path.append(step.id)
    run = await run_step(frame, step, value, frame.scope, resume=resume, prior=prior, slot=slot)
    frame.entry_progress = NestedProgress(slot=run.slot) if run.slot is not None else None
    return outcome_of(run)
