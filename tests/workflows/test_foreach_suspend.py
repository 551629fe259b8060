"""A foreach whose iterations suspend: the items after a suspension wait for it to be resumed.

With ``concurrency=1`` one item is suspended at a time: a resume without ``foreach_index``
resumes it and the foreach goes on with the next item. With more, the iterations already
started may all suspend, are resumed by index (or all at once), and the items not yet started
begin once none is left suspended (the cases of Mastra's suspend-resume suite).
"""

from __future__ import annotations

from typing import Any

import pytest

from spanflow import (
    StepContext,
    StepNotFoundError,
    StepProgressPayload,
    Workflow,
    create_step,
    create_workflow,
)
from tests.support.stores import StoreSpec

from .support import collect, event_types


class Desk:
    """A foreach step that asks for approval of items above a threshold, and logs its calls."""

    def __init__(self, threshold: int = 5) -> None:
        self.threshold = threshold
        self.calls: list[tuple[int, Any]] = []
        """``(item, resume_data)`` of each execution, in order."""

    def step(self) -> Any:
        async def review(ctx: StepContext[int]) -> int:
            self.calls.append((ctx.input_data, ctx.resume_data))
            if ctx.input_data > self.threshold and ctx.resume_data is None:
                ctx.suspend({"item": ctx.input_data})
            return ctx.input_data + 11 + (ctx.resume_data or 0)

        return create_step(id="review", execute=review)

    def workflow(self, concurrency: int = 1) -> Workflow:
        return (
            create_workflow(id=f"desk-{concurrency}")
            .foreach(self.step(), concurrency=concurrency)
            .commit()
        )

    def items(self) -> list[int]:
        return [item for item, _ in self.calls]


async def test_with_concurrency_one_a_suspended_item_holds_the_items_after_it() -> None:
    desk = Desk()
    workflow = desk.workflow()
    run = await workflow.create_run()

    result = await run.start([1, 22, 333])

    assert result.status == "suspended"
    assert result.suspended == [["review"]]
    assert result.suspend_payload == {"review": {"item": 22}}
    assert desk.items() == [1, 22]  # 333 has not started
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.snapshot["frame"]["entry"]["statuses"] == ["success", "suspended", None]


async def test_three_suspending_items_take_three_resumes() -> None:
    desk = Desk(threshold=0)
    run = await desk.workflow().create_run()
    await run.start([1, 22, 333])

    first = await run.resume(100)
    second = await run.resume(200)
    third = await run.resume(300)

    assert [first.status, second.status, third.status] == ["suspended", "suspended", "success"]
    assert first.suspend_payload == {"review": {"item": 22}}
    assert second.suspend_payload == {"review": {"item": 333}}
    assert third.result == [112, 233, 644]
    assert desk.calls == [(1, None), (1, 100), (22, None), (22, 200), (333, None), (333, 300)]


async def test_a_resume_goes_on_with_the_items_that_do_not_suspend() -> None:
    desk = Desk()
    run = await desk.workflow().create_run()
    await run.start([22, 1, 2, 333])

    partly = await run.resume(5)
    done = await run.resume(0)

    assert partly.status == "suspended"
    assert partly.suspend_payload == {"review": {"item": 333}}
    assert done.result == [38, 12, 13, 344]
    assert desk.items() == [22, 22, 1, 2, 333, 333]


async def test_a_resumed_item_that_suspends_again_still_holds_the_next_one() -> None:
    asked: list[int] = []

    async def twice(ctx: StepContext[int]) -> int:
        asked.append(ctx.input_data)
        if ctx.resume_data != "second":
            ctx.suspend({"round": ctx.resume_data})
        return ctx.input_data

    workflow = create_workflow(id="twice").foreach(create_step(id="twice", execute=twice)).commit()
    run = await workflow.create_run()
    await run.start([1, 2])

    again = await run.resume("first")

    assert again.status == "suspended"
    assert again.suspend_payload == {"twice": {"round": "first"}}
    assert asked == [1, 1]  # item 2 still waits
    assert (await run.resume("second")).status == "suspended"  # now item 2 asks
    assert asked == [1, 1, 1, 2]


async def test_the_resume_stream_shows_the_resumed_item_then_the_next_one_suspending() -> None:
    desk = Desk(threshold=0)
    run = await desk.workflow().create_run()
    await run.start([1, 22])

    events = await collect(run.resume_stream(7))

    assert event_types(events) == [
        "workflow-start",
        "workflow-step-start",
        "workflow-step-progress",
        "workflow-step-progress",
        "workflow-step-suspended",
        "workflow-finish",
    ]
    progress = [e.payload for e in events if isinstance(e.payload, StepProgressPayload)]
    assert [(p.current_index, p.iteration_status, p.completed_count) for p in progress] == [
        (0, "success", 1),
        (1, "suspended", 1),
    ]
    assert events[-1].to_dict()["payload"]["workflowStatus"] == "suspended"


async def test_with_concurrency_one_foreach_index_names_the_one_suspended_item() -> None:
    desk = Desk(threshold=0)
    run = await desk.workflow().create_run()
    await run.start([1, 22])

    with pytest.raises(StepNotFoundError, match=r"iteration 1 of step 'review' is not suspended"):
        await run.resume(1, foreach_index=1)
    result = await run.resume(1, foreach_index=0)

    assert result.status == "suspended"
    assert result.suspend_payload == {"review": {"item": 22}}


async def test_with_higher_concurrency_started_iterations_suspend_and_the_rest_wait() -> None:
    desk = Desk()
    run = await desk.workflow(concurrency=3).create_run()

    started = await run.start([22, 1, 333, 444, 1000])
    first = await run.resume(5)  # resumes 22 and 333, then 444 and 1000 start and suspend
    second = await run.resume(5)

    assert started.status == "suspended"
    assert sorted(desk.items()[:3]) == [1, 22, 333]  # the first three started together
    assert first.status == "suspended"
    assert second.status == "success"
    assert second.result == [38, 12, 349, 460, 1016]
    assert len(desk.calls) == 9  # five first executions, four resumed ones


async def test_resuming_one_index_while_another_is_suspended_starts_no_new_item() -> None:
    desk = Desk()
    run = await desk.workflow(concurrency=3).create_run()
    await run.start([22, 1, 333, 444, 1000])

    by_two = await run.resume(5, foreach_index=2)
    ran_after_two = desk.items()
    by_zero = await run.resume(3, foreach_index=0)
    by_three = await run.resume(2, foreach_index=3)
    done = await run.resume(8, foreach_index=4)

    assert ran_after_two == [22, 1, 333, 333]  # 22 is still suspended: 444 waits
    assert by_two.status == by_zero.status == by_three.status == "suspended"
    assert done.result == [36, 12, 349, 457, 1019]


def approvals(workflow_id: str) -> Workflow:
    async def approve(ctx: StepContext[int]) -> dict[str, Any]:
        if ctx.resume_data is None:
            ctx.suspend({"amount": ctx.input_data})
        return {"amount": ctx.input_data, "by": ctx.resume_data}

    return create_workflow(id=workflow_id).then(create_step(id="approve", execute=approve)).commit()


async def test_a_nested_workflow_suspending_in_a_foreach_holds_the_next_item_too() -> None:
    workflow = create_workflow(id="outer").foreach(approvals("each")).commit()
    run = await workflow.create_run()

    started = await run.start([1, 2])
    middle = await run.resume("ann")
    done = await run.resume("bob")

    assert started.suspended == [["each", "approve"]]
    assert started.suspend_payload == {"each": {"amount": 1}}
    assert middle.suspend_payload == {"each": {"amount": 2}}
    assert done.result == [{"amount": 1, "by": "ann"}, {"amount": 2, "by": "bob"}]


async def test_a_foreach_inside_a_nested_workflow_is_resumed_by_index() -> None:
    desk = Desk(threshold=0)
    inner = create_workflow(id="inner").foreach(desk.step(), concurrency=2).commit()
    workflow = create_workflow(id="outer").then(inner).commit()
    run = await workflow.create_run()
    await run.start([1, 2])

    partly = await run.resume(10, step="inner.review", foreach_index=1)
    with pytest.raises(StepNotFoundError, match=r"iteration 1 of step 'review' is not suspended"):
        await run.resume(10, step="inner.review", foreach_index=1)
    done = await run.resume(20, step="inner.review", foreach_index=0)

    assert partly.status == "suspended"
    assert done.result == [32, 23]


async def test_each_resume_of_a_concurrency_one_foreach_may_come_from_another_process(
    shared_store_spec: StoreSpec,
) -> None:
    desk = Desk(threshold=0)
    workflow = desk.workflow()
    workflow.storage = shared_store_spec.open()
    try:
        run = await workflow.create_run()
        await run.start([1, 22, 333])
        results = []
        for data in (100, 200, 300):
            workflow.storage = shared_store_spec.open()  # a new store object, as a new process
            again = await workflow.create_run(run_id=run.run_id)
            results.append(await again.resume(data))
    finally:
        await workflow.storage.close()

    assert [r.status for r in results] == ["suspended", "suspended", "success"]
    assert results[-1].result == [112, 233, 644]
    assert desk.items() == [1, 1, 22, 22, 333, 333]
