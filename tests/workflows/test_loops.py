"""``.dowhile`` / ``.dountil``: run a step, test a condition on its output, maybe repeat."""

from __future__ import annotations

from spanflow import ConditionContext, StepContext, create_step, create_workflow

from .support import collect, event_ids, fn_step


async def test_dowhile_repeats_while_the_condition_holds() -> None:
    iterations: list[tuple[int, int]] = []

    def below_ten(ctx: ConditionContext) -> bool:
        iterations.append((ctx.iteration_count, ctx.input_data))
        return bool(ctx.input_data < 10)

    workflow = (
        create_workflow(id="dowhile")
        .dowhile(fn_step("double", lambda v: v * 2), below_ten)
        .then(fn_step("after", lambda v: v))
        .commit()
    )
    run = await workflow.create_run()

    out = run.stream(1)
    events = await collect(out)
    result = await out.result

    assert result.result == 16
    assert iterations == [(1, 2), (2, 4), (3, 8), (4, 16)]
    assert event_ids(events) == ["double"] * 8 + ["after", "after"]
    assert result.steps["double"].payload == 8  # the latest iteration's result


async def test_dountil_repeats_until_the_condition_holds() -> None:
    counts: list[int] = []

    async def reached(ctx: ConditionContext) -> bool:
        counts.append(ctx.iteration_count)
        return bool(ctx.input_data >= 3)

    workflow = create_workflow(id="dountil").dountil(fn_step("inc", lambda v: v + 1), reached)

    result = await (await workflow.commit().create_run()).start(0)

    assert result.result == 3
    assert counts == [1, 2, 3]


async def test_the_body_always_runs_at_least_once() -> None:
    workflow = create_workflow(id="once").dowhile(fn_step("inc", lambda v: v + 1), lambda c: False)

    result = await (await workflow.commit().create_run()).start(0)

    assert result.result == 1


async def test_a_condition_that_raises_fails_the_run() -> None:
    def broken(ctx: ConditionContext) -> bool:
        raise ZeroDivisionError("bad condition")

    workflow = create_workflow(id="bad-loop").dountil(fn_step("inc", lambda v: v + 1), broken)

    result = await (await workflow.commit().create_run()).start(0)

    assert result.status == "failed"
    assert isinstance(result.error, ZeroDivisionError)


async def test_a_failing_body_stops_the_loop() -> None:
    runs = 0

    async def flaky(ctx: StepContext[int]) -> int:
        nonlocal runs
        runs += 1
        if ctx.input_data == 2:
            raise RuntimeError("two")
        return ctx.input_data + 1

    workflow = create_workflow(id="fail-loop").dowhile(
        create_step(id="flaky", execute=flaky), lambda c: True
    )

    result = await (await workflow.commit().create_run()).start(0)

    assert result.status == "failed"
    assert runs == 3


async def test_cancellation_is_checked_between_iterations() -> None:
    seen: list[int] = []

    async def body(ctx: StepContext[int]) -> int:
        seen.append(ctx.input_data)
        if ctx.input_data == 3:
            ctx.abort()
        return ctx.input_data + 1

    workflow = create_workflow(id="cancel-loop").dowhile(
        create_step(id="body", execute=body), lambda c: True
    )
    run = await workflow.commit().create_run()

    result = await run.start(0)

    assert result.status == "canceled"
    assert seen == [0, 1, 2, 3]
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "canceled"


async def test_a_suspended_loop_body_resumes_and_the_loop_continues() -> None:
    async def body(ctx: StepContext[int]) -> int:
        if ctx.input_data == 2 and ctx.resume_data is None:
            ctx.suspend({"at": 2})
        return ctx.input_data + 1

    counts: list[int] = []

    def until_five(ctx: ConditionContext) -> bool:
        counts.append(ctx.iteration_count)
        return bool(ctx.input_data >= 5)

    workflow = create_workflow(id="suspend-loop").dountil(
        create_step(id="body", execute=body), until_five
    )
    run = await workflow.commit().create_run()

    first = await run.start(0)
    second = await run.resume("go")

    assert first.status == "suspended"
    assert second.result == 5
    assert counts == [1, 2, 3, 4, 5]  # the count carries on across the resume
