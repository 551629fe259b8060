"""Ending a run early: ``ctx.bail`` (success now), ``run.cancel()`` and ``ctx.abort()``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from spanflow import (
    RunStateError,
    StepContext,
    WorkflowCanceledPayload,
    create_step,
    create_workflow,
)
from spanflow.storage import MemoryStorage, StoredRun

from .support import collect, event_types, fn_step


async def test_bail_ends_the_run_successfully_with_the_given_value() -> None:
    async def shortcut(ctx: StepContext[int]) -> int:
        if ctx.input_data > 10:
            ctx.bail({"cached": ctx.input_data})
        return ctx.input_data

    workflow = (
        create_workflow(id="bail")
        .then(create_step(id="shortcut", execute=shortcut))
        .then(fn_step("expensive", lambda v: v * 1000))
        .commit()
    )
    run = await workflow.create_run()

    out = run.stream(42)
    events = await collect(out)
    result = await out.result

    assert result.status == "success"
    assert result.result == {"cached": 42}
    assert result.error is None
    assert result.steps["shortcut"].status == "success"  # a signal, not a failure
    assert "expensive" not in result.steps
    assert events[-1].to_dict()["payload"]["finalWorkflowResult"] == {"cached": 42}
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.snapshot["result"]) == ("success", {"cached": 42})


async def test_bail_inside_parallel_ends_the_whole_run() -> None:
    async def stop(ctx: StepContext[Any]) -> None:
        ctx.bail("stopped early")

    workflow = (
        create_workflow(id="bail-parallel")
        .parallel([fn_step("other", lambda v: v), create_step(id="stop", execute=stop)])
        .then(fn_step("after", lambda v: v))
        .commit()
    )

    result = await (await workflow.create_run()).start(1)

    assert result.status == "success"
    assert result.result == "stopped early"
    assert "after" not in result.steps


async def test_bail_inside_foreach_ends_the_whole_run() -> None:
    async def each(ctx: StepContext[int]) -> int:
        if ctx.input_data == 2:
            ctx.bail("found two")
        return ctx.input_data

    workflow = (
        create_workflow(id="bail-foreach")
        .foreach(create_step(id="each", execute=each))
        .then(fn_step("after", lambda v: v))
        .commit()
    )

    result = await (await workflow.create_run()).start([1, 2, 3])

    assert result.status == "success"
    assert result.result == "found two"
    assert "after" not in result.steps


class Blocker:
    """A step body that signals it started, then waits (for a cancel) far longer than a test."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self, ctx: StepContext[Any]) -> None:
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_cancel_during_a_step_interrupts_it_and_stores_canceled() -> None:
    blocker = Blocker()
    workflow = (
        create_workflow(id="cancel-mid-step")
        .then(fn_step("first", lambda v: v))
        .then(create_step(id="block", execute=blocker))
        .then(fn_step("never", lambda v: v))
        .commit()
    )
    run = await workflow.create_run()
    out = run.stream(None)

    await blocker.started.wait()
    await run.cancel()
    result = await out.result
    events = await collect(out)

    assert blocker.cancelled
    assert result.status == "canceled"
    assert result.steps["first"].status == "success"
    assert result.steps["block"].status == "canceled"
    assert "never" not in result.steps
    assert event_types(events)[-3:] == [
        "workflow-step-result",
        "workflow-canceled",
        "workflow-finish",
    ]
    assert events[-3].to_dict()["payload"]["status"] == "canceled"
    canceled = events[-2]
    assert isinstance(canceled.payload, WorkflowCanceledPayload)
    assert canceled.to_dict()["payload"] == {}
    assert events[-1].to_dict()["payload"]["workflowStatus"] == "canceled"
    assert run.status == "canceled"
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "canceled"


async def test_cancel_from_start_returns_a_canceled_result() -> None:
    blocker = Blocker()
    workflow = create_workflow(id="cancel-start").then(create_step(id="b", execute=blocker))
    run = await workflow.commit().create_run()

    started = asyncio.create_task(run.start(None))
    await blocker.started.wait()
    await run.cancel()

    assert (await started).status == "canceled"


async def test_abort_from_inside_stops_before_the_next_entry() -> None:
    seen: list[bool] = []

    async def stopper(ctx: StepContext[Any]) -> str:
        seen.append(ctx.cancelled)
        ctx.abort()
        seen.append(ctx.cancelled)
        return "finished anyway"

    workflow = (
        create_workflow(id="abort")
        .then(create_step(id="stopper", execute=stopper))
        .then(fn_step("never", lambda v: v))
        .commit()
    )
    run = await workflow.create_run()

    result = await run.start(None)

    assert seen == [False, True]
    assert result.status == "canceled"
    assert result.steps["stopper"].status == "success"  # the step itself completed
    assert "never" not in result.steps


async def test_cancel_during_a_foreach_stops_scheduling_iterations() -> None:
    started: list[int] = []
    release = asyncio.Event()

    async def each(ctx: StepContext[int]) -> int:
        started.append(ctx.input_data)
        if ctx.input_data == 1:
            release.set()
        await asyncio.sleep(30)
        return ctx.input_data

    workflow = (
        create_workflow(id="cancel-foreach")
        .foreach(create_step(id="each", execute=each), concurrency=2)
        .commit()
    )
    run = await workflow.create_run()
    out = run.stream([0, 1, 2, 3])

    await release.wait()
    await run.cancel()
    result = await out.result

    assert result.status == "canceled"
    assert started == [0, 1]


async def test_canceling_a_suspended_run_marks_it_canceled_and_it_cannot_resume() -> None:
    async def ask(ctx: StepContext[Any]) -> None:
        ctx.suspend({"q": "?"})

    workflow = create_workflow(id="cancel-suspended").then(create_step(id="ask", execute=ask))
    run = await workflow.commit().create_run()
    await run.start(None)

    await run.cancel()

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "canceled"
    with pytest.raises(RunStateError, match="is canceled, not suspended"):
        await run.resume("late")


async def test_canceling_a_finished_run_changes_nothing() -> None:
    workflow = create_workflow(id="cancel-done").then(fn_step("a", lambda v: v)).commit()
    run = await workflow.create_run()
    await run.start(1)

    await run.cancel()

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "success"


class SlowStorage(MemoryStorage):
    """A store whose writes take a moment, like any store doing real I/O."""

    durable = True  # checkpointed after every entry, like SQLite and PostgreSQL

    async def save_run(
        self, run: StoredRun, *, events: Sequence[Any] = (), if_owner: str | None = None
    ) -> None:
        await asyncio.sleep(0.01)
        await super().save_run(run, events=events, if_owner=if_owner)


async def test_cancel_between_entries_stops_before_the_next_one() -> None:
    workflow = (
        create_workflow(id="cancel-between", storage=SlowStorage())
        .then(fn_step("first", lambda v: v + 1))
        .then(fn_step("second", lambda v: v + 1))
        .commit()
    )
    run = await workflow.create_run()
    out = run.stream(1)

    async for event in out:
        if event.type == "workflow-step-result":  # first is done; its checkpoint is saving
            await run.cancel()
    result = await out.result

    assert result.status == "canceled"
    assert result.steps["first"].status == "success"
    assert "second" not in result.steps
    assert "workflow-step-start" not in event_types(out.events)[2:]
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "canceled"
