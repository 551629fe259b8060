"""``.parallel([...])``: steps run concurrently; the output maps each step id to its output."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spanflow import StepContext, StepNotFoundError, create_step, create_workflow

from .support import InFlight, collect, const, event_types, fn_step


async def test_parallel_steps_run_at_the_same_time() -> None:
    flight = InFlight()

    def worker(step_id: str) -> Any:
        async def execute(ctx: StepContext[int]) -> int:
            await flight.pause(0.02)
            return ctx.input_data + len(step_id)

        return create_step(id=step_id, execute=execute)

    workflow = (
        create_workflow(id="fan-out").parallel([worker("a"), worker("bb"), worker("ccc")]).commit()
    )

    result = await (await workflow.create_run()).start(10)

    assert flight.max == 3
    assert result.result == {"a": 11, "bb": 12, "ccc": 13}


async def test_the_next_step_gets_the_outputs_keyed_by_step_id() -> None:
    workflow = (
        create_workflow(id="fan-in")
        .parallel([fn_step("plus", lambda v: v + 1), fn_step("times", lambda v: v * 3)])
        .then(fn_step("sum", lambda v: v["plus"] + v["times"]))
        .commit()
    )
    run = await workflow.create_run()

    out = run.stream(2)
    events = await collect(out)
    result = await out.result

    assert result.steps["sum"].payload == {"plus": 3, "times": 6}
    assert result.result == 9
    assert event_types(events).count("workflow-step-start") == 3


async def test_a_failure_fails_the_block_and_stops_the_run() -> None:
    async def broken(ctx: StepContext[Any]) -> None:
        raise RuntimeError("broken branch")

    workflow = (
        create_workflow(id="par-fail")
        .parallel([const("fine", 1), create_step(id="broken", execute=broken)])
        .then(const("after", 2))
        .commit()
    )
    run = await workflow.create_run()

    result = await run.start(None)

    assert result.status == "failed"
    assert str(result.error) == "broken branch"
    assert result.steps["fine"].status == "success"  # siblings still finish and are recorded
    assert result.steps["broken"].status == "failed"
    assert "after" not in result.steps
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.snapshot["error"]["message"] == "broken branch"


async def test_the_first_failure_in_declaration_order_is_reported() -> None:
    def failing(step_id: str, delay: float) -> Any:
        async def execute(ctx: StepContext[Any]) -> None:
            await asyncio.sleep(delay)
            raise RuntimeError(f"{step_id} failed")

        return create_step(id=step_id, execute=execute)

    workflow = (
        create_workflow(id="par-two-fail")
        .parallel([failing("slow", 0.02), failing("quick", 0.0)])
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert str(result.error) == "slow failed"


async def test_a_failure_wins_over_a_suspension_in_the_same_block() -> None:
    async def wait(ctx: StepContext[Any]) -> None:
        ctx.suspend({"ask": "human"})

    async def broken(ctx: StepContext[Any]) -> None:
        raise RuntimeError("broken")

    workflow = (
        create_workflow(id="par-mixed")
        .parallel([create_step(id="wait", execute=wait), create_step(id="broken", execute=broken)])
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert result.suspended == []


def approval_step(step_id: str) -> Any:
    async def execute(ctx: StepContext[Any]) -> dict[str, Any]:
        if ctx.resume_data is None:
            ctx.suspend({"step": step_id})
        return {"approved_by": ctx.resume_data, "input": ctx.input_data}

    return create_step(id=step_id, execute=execute)


async def test_a_suspension_inside_parallel_suspends_the_run_and_resumes_into_the_block() -> None:
    workflow = (
        create_workflow(id="par-suspend")
        .parallel([fn_step("auto", lambda v: v * 2), approval_step("manual")])
        .then(fn_step("after", lambda v: sorted(v)))
        .commit()
    )
    run = await workflow.create_run()

    suspended = await run.start(5)

    assert suspended.status == "suspended"
    assert suspended.suspended == [["manual"]]
    assert suspended.suspend_payload == {"manual": {"step": "manual"}}
    assert suspended.steps["auto"].status == "success"
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "suspended"

    out = run.resume_stream("alice", step="manual")
    events = await collect(out)
    resumed = await out.result

    assert resumed.status == "success"
    assert resumed.steps["manual"].output == {"approved_by": "alice", "input": 5}
    assert resumed.steps["after"].payload == {
        "auto": 10,
        "manual": {"approved_by": "alice", "input": 5},
    }
    # Only the suspended step runs again; its finished sibling is not re-executed.
    assert [e.to_dict()["payload"]["id"] for e in events if e.type == "workflow-step-start"] == [
        "manual",
        "after",
    ]


async def test_two_suspended_siblings_must_be_resumed_by_name_one_at_a_time() -> None:
    workflow = (
        create_workflow(id="par-two-suspend")
        .parallel([approval_step("legal"), approval_step("finance")])
        .commit()
    )
    run = await workflow.create_run()

    first = await run.start(1)
    assert first.suspended == [["legal"], ["finance"]]

    with pytest.raises(StepNotFoundError, match="several suspended steps"):
        await run.resume("x")

    after_legal = await run.resume("lee", step="legal")
    assert after_legal.status == "suspended"
    assert after_legal.suspended == [["finance"]]
    assert after_legal.steps["legal"].status == "success"

    done = await run.resume("fay")  # the single remaining one: no name needed
    assert done.status == "success"
    assert done.result == {
        "legal": {"approved_by": "lee", "input": 1},
        "finance": {"approved_by": "fay", "input": 1},
    }
