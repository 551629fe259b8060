"""The workflows whose stored snapshots ``tests/workflows/snapshots/`` keeps.

Each fixture there was written by spanflow at the moment named in its file name; the tests in
``test_stored_snapshots.py`` load them into these workflows and resume (or read) them, so a
change of the snapshot format that would strand stored runs fails a test. The workflows must
stay as they are: a stored run belongs to its workflow as it was defined when it was stored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from spanflow import StepContext, Workflow, create_step, create_workflow

__all__ = [
    "Review",
    "approving",
    "branch_workflow",
    "failing_workflow",
    "foreach_workflow",
    "loop_workflow",
    "nested_workflow",
    "parallel_workflow",
    "sleeping_workflow",
]


class Review(BaseModel):
    """A foreach iteration's output: stored as JSON, a model again after loading."""

    item: int
    verdict: str


async def _review(ctx: StepContext[int]) -> Review:
    if ctx.input_data % 2 == 0 and ctx.resume_data is None:
        ctx.suspend({"item": ctx.input_data})
    return Review(item=ctx.input_data, verdict=str(ctx.resume_data or "auto"))


async def _approve(ctx: StepContext[Any]) -> dict[str, Any]:
    if ctx.resume_data is None:
        ctx.suspend({"amount": ctx.input_data})
    return {"amount": ctx.input_data, "by": ctx.resume_data}


def approving(workflow_id: str) -> Workflow:
    """A nested workflow whose one step suspends for approval."""
    approve = create_step(id="approve", execute=_approve)
    return create_workflow(id=workflow_id).then(approve).commit()


def _add(step_id: str, amount: int) -> Any:
    async def execute(ctx: StepContext[int]) -> int:
        return ctx.input_data + amount

    return create_step(id=step_id, execute=execute)


def foreach_workflow() -> Workflow:
    """``prepare`` then a foreach whose even items suspend (stored: item 2 of [1, 2, 3])."""
    review = create_step(id="review", execute=_review, output_schema=Review)

    async def prepare(ctx: StepContext[list[int]]) -> list[int]:
        return ctx.input_data

    return (
        create_workflow(id="snap-foreach")
        .then(create_step(id="prepare", execute=prepare))
        .foreach(review, concurrency=2)
        .commit()
    )


def parallel_workflow() -> Workflow:
    """A parallel of a plain step, a suspending step and a nested workflow suspended inside."""
    return (
        create_workflow(id="snap-parallel")
        .parallel([_add("auto", 1), create_step(id="manual", execute=_approve), approving("inner")])
        .commit()
    )


def sleeping_workflow() -> Workflow:
    """``before``, a sleep, ``after`` (stored: waiting in the sleep)."""
    return (
        create_workflow(id="snap-sleep")
        .then(_add("before", 1))
        .sleep(0.2, id="nap")
        .then(_add("after", 10))
        .commit()
    )


def nested_workflow() -> Workflow:
    """``prepare``, a nested workflow suspended at ``inner.approve``, ``finish``."""

    async def finish(ctx: StepContext[dict[str, Any]]) -> str:
        return f"{ctx.input_data['amount']} approved by {ctx.input_data['by']}"

    return (
        create_workflow(id="snap-nested")
        .then(_add("prepare", 1))
        .then(approving("inner"))
        .then(create_step(id="finish", execute=finish))
        .commit()
    )


def failing_workflow() -> Workflow:
    """``prepare`` then a step that raises (stored: the failed run)."""

    async def boom(ctx: StepContext[int]) -> int:
        raise TimeoutError(f"gave up after {ctx.input_data}s")

    return (
        create_workflow(id="snap-failed")
        .then(_add("prepare", 1))
        .then(create_step(id="boom", execute=boom))
        .commit()
    )


def loop_workflow() -> Workflow:
    """A dountil loop over a nested workflow that suspends (stored: in the first iteration)."""

    async def done(ctx: Any) -> bool:
        return True

    return create_workflow(id="snap-loop").dountil(approving("inner"), done).commit()


def branch_workflow() -> Workflow:
    """A branch whose selected step is a nested workflow suspended inside."""

    async def big(ctx: Any) -> bool:
        return bool(ctx.input_data > 10)

    async def small(ctx: Any) -> bool:
        return bool(ctx.input_data <= 10)

    return (
        create_workflow(id="snap-branch")
        .branch([(big, approving("large")), (small, _add("small", 1))])
        .commit()
    )
