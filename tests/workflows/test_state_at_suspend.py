"""State set before ``ctx.suspend`` is kept: stored with the suspended run, seen after the resume.

A step that calls ``ctx.set_state(...)`` and then suspends has its state validated (as any
``set_state``) and applied when it suspends, so the snapshot written on suspend holds it, on
every store, and the steps that run after the resume (the resumed step included) see it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from spanflow import InvalidInputError, StepContext, Workflow, create_step, create_workflow
from spanflow.storage import Storage


class Review(BaseModel):
    asked: list[str] = []
    approved_by: str | None = None


def review_workflow(storage: Storage, seen: list[tuple[str, Any]]) -> Workflow:
    async def ask(ctx: StepContext[str]) -> str:
        review: Review = ctx.state
        seen.append(("ask", ctx.state))
        if ctx.resume_data is None:
            ctx.set_state({"asked": [*review.asked, ctx.input_data]})
            ctx.suspend({"question": f"approve {ctx.input_data}?"})
        ctx.set_state(review.model_copy(update={"approved_by": ctx.resume_data}))
        return ctx.input_data

    async def record(ctx: StepContext[str]) -> str:
        seen.append(("record", ctx.state))
        return f"{ctx.input_data} approved"

    return (
        create_workflow(id="review", state_schema=Review, storage=storage)
        .then(create_step(id="ask", execute=ask))
        .then(create_step(id="record", execute=record))
        .commit()
    )


async def test_state_set_before_suspending_is_stored_with_the_suspended_run(
    stores: tuple[Storage, Storage],
) -> None:
    first, _ = stores
    workflow = review_workflow(first, [])
    run = await workflow.create_run()

    result = await run.start("invoice-7")

    assert result.status == "suspended"
    assert result.state == Review(asked=["invoice-7"])
    stored = await first.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "suspended"
    assert stored.snapshot["frame"]["state"] == {"asked": ["invoice-7"], "approved_by": None}


async def test_the_steps_after_the_resume_see_the_state_set_before_suspending(
    stores: tuple[Storage, Storage],
) -> None:
    first, second = stores
    run = await review_workflow(first, []).create_run()
    await run.start("invoice-7")

    seen: list[tuple[str, Any]] = []
    again = await review_workflow(second, seen).create_run(run_id=run.run_id)
    result = await again.resume("alice")

    assert result.status == "success"
    assert seen == [
        ("ask", Review(asked=["invoice-7"])),
        ("record", Review(asked=["invoice-7"], approved_by="alice")),
    ]
    assert result.state == Review(asked=["invoice-7"], approved_by="alice")
    stored = await second.get_run(run.run_id)
    assert stored is not None
    assert stored.snapshot["frame"]["state"] == {"asked": ["invoice-7"], "approved_by": "alice"}


async def test_state_that_breaks_the_schema_before_suspending_fails_the_step_naming_the_field() -> (
    None
):
    async def ask(ctx: StepContext[Any]) -> None:
        ctx.set_state({"asked": "not a list"})
        ctx.suspend(None)

    workflow = (
        create_workflow(id="bad-state-at-suspend", state_schema=Review)
        .then(create_step(id="ask", execute=ask))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert isinstance(result.error, InvalidInputError)
    assert str(result.error).startswith("invalid state set by step 'ask': field 'asked': ")
    assert result.steps["ask"].status == "failed"
    assert result.suspended == []
    assert result.state == Review()


async def test_a_suspend_payload_that_breaks_its_schema_fails_the_step_and_drops_the_state() -> (
    None
):
    async def ask(ctx: StepContext[Any]) -> None:
        ctx.set_state({"asked": ["x"]})
        ctx.suspend({"wrong": True})

    class Question(BaseModel):
        question: str

    workflow = (
        create_workflow(id="bad-payload", state_schema=Review)
        .then(create_step(id="ask", suspend_schema=Question, execute=ask))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert "suspend payload of step 'ask': field 'question'" in str(result.error)
    assert result.state == Review()


async def test_each_foreach_iteration_that_suspends_adds_to_the_state_the_next_one_sees() -> None:
    async def tick(ctx: StepContext[int]) -> int:
        review: Review = ctx.state
        if ctx.resume_data is None:
            ctx.set_state({"asked": [*review.asked, str(ctx.input_data)]})
            ctx.suspend(None)
        return ctx.input_data

    workflow = (
        create_workflow(id="each-asks", state_schema=Review)
        .foreach(create_step(id="tick", execute=tick))
        .commit()
    )
    run = await workflow.create_run()

    first = await run.start([1, 2])
    second = await run.resume("ok")  # item 1 finishes, item 2 asks
    done = await run.resume("ok")

    assert (first.status, first.state) == ("suspended", Review(asked=["1"]))
    assert (second.status, second.state) == ("suspended", Review(asked=["1", "2"]))
    assert (done.status, done.result, done.state) == ("success", [1, 2], Review(asked=["1", "2"]))
