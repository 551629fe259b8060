"""``.branch([(cond, step), ...])``: every step whose condition holds runs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from spanflow import ConditionContext, StepContext, create_step, create_workflow

from .support import InFlight, collect, event_ids, fn_step


def is_big(ctx: ConditionContext) -> bool:
    return bool(ctx.input_data > 50)


def is_small(ctx: ConditionContext) -> bool:
    return bool(ctx.input_data <= 50)


def sized_workflow(workflow_id: str) -> Any:
    return (
        create_workflow(id=workflow_id)
        .branch(
            [
                (is_big, fn_step("big", lambda v: f"{v} is big")),
                (is_small, fn_step("small", lambda v: f"{v} is small")),
            ]
        )
        .commit()
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(80, {"big": "80 is big"}), (3, {"small": "3 is small"})]
)
async def test_only_the_step_whose_condition_holds_runs(value: int, expected: Any) -> None:
    workflow = sized_workflow(f"sized-{value}")
    run = await workflow.create_run()

    out = run.stream(value)
    events = await collect(out)
    result = await out.result

    assert result.result == expected
    [chosen] = expected
    assert event_ids(events) == [chosen, chosen]
    assert set(result.steps) == {chosen}


async def test_every_step_whose_condition_holds_runs_concurrently() -> None:
    flight = InFlight()

    def worker(step_id: str) -> Any:
        async def execute(ctx: StepContext[int]) -> str:
            await flight.pause(0.02)
            return step_id

        return create_step(id=step_id, execute=execute)

    workflow = (
        create_workflow(id="multi")
        .branch(
            [
                (lambda ctx: True, worker("one")),
                (lambda ctx: False, worker("two")),
                (lambda ctx: True, worker("three")),
            ]
        )
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.result == {"one": "one", "three": "three"}
    assert flight.max == 2


async def test_async_conditions_and_condition_context() -> None:
    seen: list[tuple[Any, Any, Any, Any]] = []

    async def check(ctx: ConditionContext) -> bool:
        seen.append((ctx.input_data, ctx.get_init_data(), ctx.get_step_result("prep"), ctx.state))
        return True

    workflow = (
        create_workflow(id="async-cond")
        .then(fn_step("prep", lambda v: v + 1))
        .branch([(check, fn_step("go", lambda v: v))])
        .commit()
    )

    result = await (await workflow.create_run()).start(1, initial_state={"s": 1})

    assert result.result == {"go": 2}
    assert seen == [(2, 1, 2, {"s": 1})]


async def test_a_condition_that_raises_counts_as_false_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(ctx: ConditionContext) -> bool:
        raise KeyError("missing")

    workflow = (
        create_workflow(id="bad-cond")
        .branch([(explode, fn_step("never", lambda v: v)), (is_small, fn_step("small", str))])
        .commit()
    )

    with caplog.at_level(logging.WARNING, logger="spanflow"):
        result = await (await workflow.create_run()).start(1)

    assert result.status == "success"
    assert result.result == {"small": "1"}
    assert "never" not in result.steps
    assert any("condition 0 raised" in r.getMessage() for r in caplog.records)


async def test_no_true_condition_gives_an_empty_output() -> None:
    workflow = (
        create_workflow(id="none-true")
        .branch([(lambda ctx: False, fn_step("never", lambda v: v))])
        .then(fn_step("after", lambda v: {"got": v}))
        .commit()
    )

    result = await (await workflow.create_run()).start(1)

    assert result.result == {"got": {}}


async def test_a_failure_inside_a_branch_fails_the_run() -> None:
    async def broken(ctx: StepContext[Any]) -> None:
        raise ValueError("bad branch")

    workflow = (
        create_workflow(id="branch-fail")
        .branch([(lambda ctx: True, create_step(id="broken", execute=broken))])
        .then(fn_step("after", lambda v: v))
        .commit()
    )
    run = await workflow.create_run()

    result = await run.start(None)

    assert result.status == "failed"
    assert isinstance(result.error, ValueError)
    assert "after" not in result.steps
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"


async def test_a_suspension_inside_a_branch_resumes_the_chosen_step_only() -> None:
    calls: list[Any] = []

    async def ask(ctx: StepContext[Any]) -> str:
        calls.append(ctx.resume_data)
        if ctx.resume_data is None:
            ctx.suspend({"question": "ok?"})
        return f"answer: {ctx.resume_data}"

    conditions_run = 0

    def counted(ctx: ConditionContext) -> bool:
        nonlocal conditions_run
        conditions_run += 1
        return True

    workflow = (
        create_workflow(id="branch-suspend")
        .branch([(counted, create_step(id="ask", execute=ask))])
        .commit()
    )
    run = await workflow.create_run()

    first = await run.start(None)
    second = await run.resume("yes")

    assert first.suspended == [["ask"]]
    assert second.result == {"ask": "answer: yes"}
    assert calls == [None, "yes"]
    assert conditions_run == 1  # the resume does not re-evaluate the conditions
