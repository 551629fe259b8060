"""``.foreach(step, concurrency=n)``: one execution per list element, at most n at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanflow import (
    InvalidInputError,
    StepContext,
    StepNotFoundError,
    StepProgressPayload,
    create_step,
    create_workflow,
)

from .support import InFlight, collect, event_types, fn_step


def measured_step(flight: InFlight, seconds: float = 0.01) -> Any:
    """A step that stays in flight for a moment, so overlapping iterations can be counted."""

    async def execute(ctx: StepContext[int]) -> int:
        await flight.pause(seconds)
        return ctx.input_data * ctx.input_data

    return create_step(id="square", execute=execute)


@pytest.mark.parametrize("concurrency", [1, 2, 3])
async def test_at_most_concurrency_iterations_run_at_once(concurrency: int) -> None:
    flight = InFlight()
    workflow = (
        create_workflow(id=f"limit-{concurrency}")
        .foreach(measured_step(flight), concurrency=concurrency)
        .commit()
    )

    result = await (await workflow.create_run()).start(list(range(7)))

    assert result.result == [n * n for n in range(7)]
    assert flight.entered == 7
    assert flight.max == concurrency  # measured: never more, and the limit is actually used


async def test_the_default_concurrency_is_one() -> None:
    flight = InFlight()
    workflow = create_workflow(id="serial").foreach(measured_step(flight, 0.001)).commit()

    await (await workflow.create_run()).start([1, 2, 3])

    assert flight.max == 1


async def test_outputs_keep_the_input_order_when_iterations_finish_out_of_order() -> None:
    finished: list[int] = []

    async def slow_first(ctx: StepContext[int]) -> str:
        await asyncio.sleep(0.001 * (5 - ctx.input_data) * 5)
        finished.append(ctx.input_data)
        return f"item {ctx.input_data}"

    workflow = (
        create_workflow(id="ordered")
        .foreach(create_step(id="each", execute=slow_first), concurrency=5)
        .commit()
    )

    result = await (await workflow.create_run()).start([1, 2, 3, 4, 5])

    assert finished != [1, 2, 3, 4, 5]
    assert result.result == ["item 1", "item 2", "item 3", "item 4", "item 5"]


async def test_one_start_and_one_result_event_frame_a_progress_event_per_item() -> None:
    workflow = create_workflow(id="progress").foreach(fn_step("inc", lambda v: v + 1)).commit()
    run = await workflow.create_run()

    events = await collect(run.stream([10, 20, 30]))

    assert event_types(events) == [
        "workflow-start",
        "workflow-step-start",
        "workflow-step-progress",
        "workflow-step-progress",
        "workflow-step-progress",
        "workflow-step-result",
        "workflow-finish",
    ]
    progress = [e.payload for e in events if isinstance(e.payload, StepProgressPayload)]
    assert [(p.completed_count, p.total_count, p.current_index) for p in progress] == [
        (1, 3, 0),
        (2, 3, 1),
        (3, 3, 2),
    ]
    assert [p.iteration_output for p in progress] == [11, 21, 31]
    assert {p.iteration_status for p in progress} == {"success"}
    start = events[1].to_dict()["payload"]
    assert "stepCallId" not in start  # one start for the whole foreach, as in Mastra
    assert start["payload"] == [10, 20, 30]
    assert events[-2].to_dict()["payload"]["output"] == [11, 21, 31]


async def test_an_empty_list_gives_an_empty_output() -> None:
    workflow = create_workflow(id="empty-list").foreach(fn_step("never", lambda v: v)).commit()

    result = await (await workflow.create_run()).start([])

    assert result.status == "success"
    assert result.result == []


async def test_an_input_that_is_not_a_list_fails_with_a_clear_error() -> None:
    workflow = create_workflow(id="not-a-list").foreach(fn_step("each", lambda v: v)).commit()

    result = await (await workflow.create_run()).start({"not": "a list"})

    assert result.status == "failed"
    assert isinstance(result.error, TypeError)
    assert "needs a list as input, got dict" in str(result.error)


async def test_the_first_failure_stops_scheduling_further_items() -> None:
    ran: list[int] = []

    async def picky(ctx: StepContext[int]) -> int:
        ran.append(ctx.input_data)
        if ctx.input_data == 2:
            raise ValueError("two is not allowed")
        return ctx.input_data

    workflow = (
        create_workflow(id="stop-on-fail")
        .foreach(create_step(id="picky", execute=picky))
        .then(fn_step("after", lambda v: v))
        .commit()
    )
    run = await workflow.create_run()

    out = run.stream([1, 2, 3, 4])
    events = await collect(out)
    result = await out.result

    assert ran == [1, 2]
    assert result.status == "failed"
    assert str(result.error) == "two is not allowed"
    assert result.steps["picky"].status == "failed"
    assert "after" not in result.steps
    progress = [e.payload for e in events if isinstance(e.payload, StepProgressPayload)]
    assert [p.iteration_status for p in progress] == ["success", "failed"]
    step_result = next(e for e in events if e.type == "workflow-step-result").to_dict()
    assert step_result["payload"]["status"] == "failed"
    assert step_result["payload"]["error"]["message"] == "two is not allowed"


async def test_items_in_flight_finish_when_another_fails() -> None:
    finished: list[int] = []
    zero_failing = asyncio.Event()

    async def work(ctx: StepContext[int]) -> int:
        if ctx.input_data == 0:
            await asyncio.sleep(0)  # let item 1 start first
            zero_failing.set()
            raise ValueError("zero")
        await zero_failing.wait()
        await asyncio.sleep(0.005)
        finished.append(ctx.input_data)
        return ctx.input_data

    workflow = (
        create_workflow(id="in-flight")
        .foreach(create_step(id="work", execute=work), concurrency=2)
        .commit()
    )

    result = await (await workflow.create_run()).start([0, 1, 2, 3, 4])

    assert result.status == "failed"
    assert finished == [1]  # started alongside the failure; nothing new was scheduled after


def gate_step() -> Any:
    """Suspends for even numbers until resumed; returns ``(n, resume_data)``."""

    async def execute(ctx: StepContext[int]) -> Any:
        if ctx.input_data % 2 == 0 and ctx.resume_data is None:
            ctx.suspend({"n": ctx.input_data})
        return [ctx.input_data, ctx.resume_data]

    return create_step(id="gate", execute=execute)


async def test_suspended_iterations_suspend_the_foreach_and_let_the_others_finish() -> None:
    # Concurrency 4: all four items start together, so all of them run before it suspends.
    workflow = create_workflow(id="fe-suspend").foreach(gate_step(), concurrency=4).commit()
    run = await workflow.create_run()

    out = run.stream([1, 2, 3, 4])
    events = await collect(out)
    result = await out.result

    assert result.status == "suspended"
    assert result.suspended == [["gate"]]
    assert result.suspend_payload == {"gate": {"n": 2}}
    progress = [e.payload for e in events if isinstance(e.payload, StepProgressPayload)]
    assert sorted((p.current_index, p.iteration_status) for p in progress) == [
        (0, "success"),
        (1, "suspended"),
        (2, "success"),
        (3, "suspended"),
    ]
    assert event_types(events)[-2:] == ["workflow-step-suspended", "workflow-finish"]
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "suspended"


async def test_suspended_iterations_can_be_resumed_one_index_at_a_time() -> None:
    workflow = create_workflow(id="fe-by-index").foreach(gate_step(), concurrency=4).commit()
    run = await workflow.create_run()
    await run.start([1, 2, 3, 4])

    partly = await run.resume("second", foreach_index=3)
    done = await run.resume("first", step="gate", foreach_index=1)

    assert partly.status == "suspended"
    assert partly.suspend_payload == {"gate": {"n": 2}}
    assert done.status == "success"
    assert done.result == [[1, None], [2, "first"], [3, None], [4, "second"]]


async def test_resuming_a_foreach_without_an_index_resumes_every_suspended_iteration() -> None:
    workflow = create_workflow(id="fe-all").foreach(gate_step(), concurrency=3).commit()
    run = await workflow.create_run()
    await run.start([2, 3, 4])

    done = await run.resume("ok")

    assert done.result == [[2, "ok"], [3, None], [4, "ok"]]


async def test_a_foreach_index_that_is_not_suspended_is_refused() -> None:
    workflow = create_workflow(id="fe-bad-index").foreach(gate_step()).commit()
    run = await workflow.create_run()
    await run.start([1, 2])

    with pytest.raises(StepNotFoundError, match="iteration 0 of step 'gate' is not suspended"):
        await run.resume("x", foreach_index=0)


async def test_a_foreach_index_for_a_step_that_is_no_foreach_is_refused() -> None:
    async def ask(ctx: StepContext[Any]) -> None:
        ctx.suspend(None)

    workflow = create_workflow(id="no-fe").then(create_step(id="ask", execute=ask)).commit()
    run = await workflow.create_run()
    await run.start(None)

    with pytest.raises(InvalidInputError, match="is not a foreach"):
        await run.resume("x", foreach_index=0)


@settings(max_examples=30, deadline=None)
@given(items=st.lists(st.integers(-50, 50), max_size=12), concurrency=st.integers(1, 5))
def test_any_list_keeps_its_order_and_the_concurrency_limit(
    items: list[int], concurrency: int
) -> None:
    flight = InFlight()

    async def negate(ctx: StepContext[int]) -> int:
        await flight.track(asyncio.sleep(0.001 * (ctx.input_data % 3)))
        return -ctx.input_data

    workflow = (
        create_workflow(id="prop")
        .foreach(create_step(id="negate", execute=negate), concurrency=concurrency)
        .commit()
    )

    async def scenario() -> Any:
        return (await (await workflow.create_run()).start(items)).result

    assert asyncio.run(scenario()) == [-n for n in items]
    assert flight.max == min(concurrency, len(items))
