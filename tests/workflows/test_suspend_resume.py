"""Suspend and resume: a step pauses the run with ``ctx.suspend``; ``run.resume`` continues it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from spanflow import (
    InvalidInputError,
    RunClaimError,
    RunStateError,
    StepContext,
    StepNotFoundError,
    StepResultPayload,
    StepStartPayload,
    Workflow,
    create_step,
    create_workflow,
)
from spanflow.storage import MemoryStorage, StoredRun

from .support import collect, event_types, fn_step


class Decision(BaseModel):
    approved: bool
    by: str


class Question(BaseModel):
    question: str


def approval_workflow(workflow_id: str = "approval") -> Workflow:
    async def approve(ctx: StepContext[int]) -> dict[str, Any]:
        if ctx.resume_data is None:
            ctx.suspend(Question(question=f"approve {ctx.input_data}?"))
        decision: Decision = ctx.resume_data
        return {
            "amount": ctx.input_data,
            "approved": decision.approved,
            "by": decision.by,
            "asked": ctx.suspend_data,
        }

    approve_step = create_step(
        id="approve",
        execute=approve,
        resume_schema=Decision,
        suspend_schema=Question,
    )
    workflow = (
        create_workflow(id=workflow_id)
        .then(fn_step("prepare", lambda v: v * 2))
        .then(approve_step)
        .then(fn_step("record", lambda v: {**v, "recorded": True}))
        .commit()
    )
    return workflow


async def test_a_suspended_step_suspends_the_run_and_stores_it() -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()

    result = await run.start(21)

    assert result.status == "suspended"
    assert result.suspended == [["approve"]]
    assert result.suspend_payload == {"approve": Question(question="approve 42?")}
    assert result.steps["approve"].status == "suspended"
    assert result.steps["approve"].suspended_at is not None
    assert "record" not in result.steps
    assert run.status == "suspended"
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "suspended"
    assert stored.snapshot["suspended"] == [["approve"]]
    assert stored.snapshot["suspendPayload"] == {"approve": {"question": "approve 42?"}}


async def test_resume_continues_with_the_resume_data_and_the_suspend_payload() -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()
    await run.start(21)

    result = await run.resume({"approved": True, "by": "alice"})

    assert result.status == "success"
    assert result.result == {
        "amount": 42,
        "approved": True,
        "by": "alice",
        "asked": {"question": "approve 42?"},
        "recorded": True,
    }
    approve = result.steps["approve"]
    assert approve.resume_payload == Decision(approved=True, by="alice")
    assert approve.resumed_at is not None
    assert approve.started_at is not None
    assert approve.started_at <= approve.resumed_at
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "success"


@pytest.mark.parametrize("how", ["object", "id", "auto"])
async def test_resume_picks_the_step_by_object_by_id_or_the_single_suspended(how: str) -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()
    await run.start(1)
    target: Any = {"object": workflow.find_step("approve"), "id": "approve", "auto": None}[how]

    result = await run.resume({"approved": False, "by": "bob"}, step=target)

    assert result.status == "success"
    assert result.result["approved"] is False


async def test_a_resumed_step_gets_a_new_call_id_and_keeps_its_start_time() -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()
    first = await collect(run.stream(1))
    second = await collect(run.resume_stream({"approved": True, "by": "c"}))

    suspended = next(e for e in first if e.type == "workflow-step-suspended").to_dict()["payload"]
    [resumed_start] = [
        e.payload
        for e in second
        if isinstance(e.payload, StepStartPayload) and e.payload.step_name == "approve"
    ]
    [resumed_result] = [
        e.payload
        for e in second
        if isinstance(e.payload, StepResultPayload) and e.payload.step_name == "approve"
    ]
    assert resumed_start.step_call_id != suspended["stepCallId"]
    assert resumed_start.started_at == suspended["startedAt"]
    assert resumed_start.resume_payload == Decision(approved=True, by="c")
    assert resumed_start.resumed_at is not None
    assert resumed_result.step_call_id == resumed_start.step_call_id
    assert resumed_result.started_at == suspended["startedAt"]
    assert event_types(second)[0] == "workflow-start"


async def test_a_run_can_be_resumed_from_a_new_run_object_with_the_same_id() -> None:
    workflow = approval_workflow()
    first = await workflow.create_run(resource_id="tenant-1")
    await first.start(5)

    second = await workflow.create_run(run_id=first.run_id)
    result = await second.resume({"approved": True, "by": "dora"})

    assert second.resource_id == "tenant-1"
    assert second.status == "success"
    assert result.result["amount"] == 10
    assert result.steps["prepare"].output == 10  # earlier results come from the snapshot


async def test_resume_data_is_validated_by_the_resume_schema_and_the_run_stays_suspended() -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()
    await run.start(1)

    with pytest.raises(InvalidInputError) as caught:
        await run.resume({"approved": "perhaps"})

    message = str(caught.value)
    assert "resume data of step 'approve'" in message
    assert "field 'approved'" in message
    assert "field 'by'" in message
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "suspended"  # untouched: a valid resume still works
    assert (await run.resume({"approved": True, "by": "e"})).status == "success"


async def test_a_suspend_payload_that_breaks_the_suspend_schema_fails_the_step() -> None:
    async def ask(ctx: StepContext[Any]) -> None:
        ctx.suspend({"wrong": 1})

    workflow = create_workflow(id="bad-suspend").then(
        create_step(id="ask", execute=ask, suspend_schema=Question)
    )

    result = await (await workflow.commit().create_run()).start(None)

    assert result.status == "failed"
    assert "suspend payload of step 'ask'" in str(result.error)
    assert "field 'question'" in str(result.error)


async def test_resuming_twice_raises_because_the_run_is_no_longer_suspended() -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()
    await run.start(1)
    await run.resume({"approved": True, "by": "f"})

    with pytest.raises(RunStateError, match="is success, not suspended: nothing to resume"):
        await run.resume({"approved": True, "by": "f"})


async def test_of_two_concurrent_resumers_exactly_one_wins() -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()
    await run.start(1)
    one = await workflow.create_run(run_id=run.run_id)
    two = await workflow.create_run(run_id=run.run_id)

    outcomes = await asyncio.gather(
        one.resume({"approved": True, "by": "one"}),
        two.resume({"approved": True, "by": "two"}),
        return_exceptions=True,
    )

    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1
    assert winners[0].status == "success"
    assert len(losers) == 1
    assert isinstance(losers[0], RunClaimError)


class SlowStorage(MemoryStorage):
    """A store whose writes yield to the loop, like any store doing real I/O."""

    durable = True  # checkpointed after every entry, like SQLite and PostgreSQL

    async def save_run(
        self, run: StoredRun, *, events: Sequence[Any] = (), if_owner: str | None = None
    ) -> None:
        await asyncio.sleep(0.005)
        await super().save_run(run, events=events, if_owner=if_owner)


async def test_a_consumer_may_resume_as_soon_as_it_sees_the_step_suspend() -> None:
    workflow = approval_workflow()
    workflow.storage = SlowStorage()  # the run is still storing its snapshot when we resume
    run = await workflow.create_run()
    out = run.stream(3, close_on_suspend=False)

    async for event in out:
        if event.type == "workflow-step-suspended":
            await run.resume({"approved": True, "by": "quick"})
    result = await out.result

    assert result.status == "success"
    assert result.result["by"] == "quick"


async def test_resuming_a_step_that_is_not_suspended_names_the_suspended_ones() -> None:
    workflow = approval_workflow()
    run = await workflow.create_run()
    await run.start(1)

    with pytest.raises(StepNotFoundError, match=r"'prepare' is not suspended.*'approve'"):
        await run.resume({"approved": True, "by": "g"}, step="prepare")


async def test_code_after_suspend_does_not_run() -> None:
    ran_after: list[bool] = []

    async def ask(ctx: StepContext[Any]) -> None:
        suspend: Callable[[Any], object] = ctx.suspend
        suspend({"q": 1})
        ran_after.append(True)

    workflow = create_workflow(id="stop-here").then(create_step(id="ask", execute=ask))

    result = await (await workflow.commit().create_run()).start(None)

    assert result.status == "suspended"
    assert ran_after == []


async def test_suspend_data_is_none_on_the_first_run_of_a_step() -> None:
    seen: list[tuple[Any, Any]] = []

    async def look(ctx: StepContext[Any]) -> None:
        seen.append((ctx.resume_data, ctx.suspend_data))

    workflow = create_workflow(id="fresh").then(create_step(id="look", execute=look)).commit()

    await (await workflow.create_run()).start(None)

    assert seen == [(None, None)]


async def test_a_step_may_suspend_again_after_a_resume() -> None:
    async def two_stage(ctx: StepContext[int]) -> dict[str, Any]:
        if ctx.resume_data is None:
            ctx.suspend({"stage": 1})
        if ctx.resume_data == "legal ok":
            ctx.suspend({"stage": 2})
        return {"final": ctx.resume_data, "last_question": ctx.suspend_data}

    workflow = create_workflow(id="two-stage").then(create_step(id="sign", execute=two_stage))
    run = await workflow.commit().create_run()

    first = await run.start(1)
    second = await run.resume("legal ok")
    third = await run.resume("finance ok")

    assert first.suspend_payload == {"sign": {"stage": 1}}
    assert second.suspend_payload == {"sign": {"stage": 2}}
    assert third.result == {"final": "finance ok", "last_question": {"stage": 2}}
    assert first.steps["sign"].started_at == third.steps["sign"].started_at
