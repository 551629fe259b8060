"""Nested workflows share the run's state: inner steps read the parent's, and set it.

The inner workflow sees the state through its own ``state_schema`` (a narrower one sees only
its fields; the fields it does not know are kept), the parent's schema gives it its type back,
and after a suspension or a restart the inner frame's state is the parent's again, wherever the
run was stored. (Mastra's "nested workflow with state" tests, and its foreach state batch.)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from spanflow import StepContext, Workflow, create_step, create_workflow
from tests.support.stores import StoreSpec

from .support import fn_step


class MainState(BaseModel):
    value: str
    other_value: str


class InnerState(BaseModel):
    value: str


INITIAL = {"value": "test-state", "other_value": "other"}


def reads_state(step_id: str) -> Any:
    """A step whose output is the state it sees (and its type's name)."""

    async def execute(ctx: StepContext[Any]) -> dict[str, Any]:
        return {"state": ctx.state, "type": type(ctx.state).__name__}

    return create_step(id=step_id, execute=execute)


def shouts() -> Any:
    """An inner step that appends ``!!!`` to the state's value (Mastra's setState test)."""

    async def execute(ctx: StepContext[Any]) -> dict[str, Any]:
        ctx.set_state(InnerState(value=ctx.state.value + "!!!"))
        return {}

    return create_step(id="shout", execute=execute, state_schema=InnerState)


async def test_inner_steps_read_the_parents_state_through_their_own_schema() -> None:
    inner = create_workflow(id="inner", state_schema=InnerState).then(reads_state("read")).commit()
    workflow = create_workflow(id="outer", state_schema=MainState).then(inner).commit()

    result = await (await workflow.create_run()).start({}, initial_state=INITIAL)

    assert result.status == "success"
    assert result.result == {"state": InnerState(value="test-state"), "type": "InnerState"}


async def test_set_state_inside_a_nested_workflow_updates_the_parents_state() -> None:
    inner = (
        create_workflow(id="inner", state_schema=InnerState)
        .then(shouts())
        .then(reads_state("read"))
        .commit()
    )
    workflow = (
        create_workflow(id="outer", state_schema=MainState)
        .then(inner)
        .then(reads_state("after"))
        .commit()
    )

    result = await (await workflow.create_run()).start({}, initial_state=INITIAL)

    assert result.steps["inner"].output == {
        "state": InnerState(value="test-state!!!"),
        "type": "InnerState",
    }
    # The parent sees the change in its own type, with the field the inner schema lacks kept.
    expected = MainState(value="test-state!!!", other_value="other")
    assert result.result == {"state": expected, "type": "MainState"}
    assert result.state == expected


async def test_without_a_state_schema_inner_steps_share_the_parents_state_value() -> None:
    async def replace(ctx: StepContext[Any]) -> None:
        ctx.set_state({"count": ctx.state["count"] + 1})  # "note" is dropped: a replacement

    inner = create_workflow(id="inner").then(create_step(id="replace", execute=replace)).commit()
    workflow = create_workflow(id="outer").then(inner).then(reads_state("after")).commit()

    result = await (await workflow.create_run()).start(
        None, initial_state={"count": 1, "note": "x"}
    )

    assert result.result == {"state": {"count": 2}, "type": "dict"}
    assert result.state == {"count": 2}


async def test_a_parent_state_the_inner_schema_rejects_fails_the_nested_step() -> None:
    ran: list[str] = []
    inner = (
        create_workflow(id="inner", state_schema=InnerState)
        .then(fn_step("never", lambda v: ran.append("never")))
        .commit()
    )
    workflow = create_workflow(id="outer").then(inner).commit()

    result = await (await workflow.create_run()).start(None, initial_state={"other": 1})

    assert result.status == "failed"
    assert result.steps["inner"].status == "failed"
    assert str(result.error) == (
        "invalid state of nested workflow 'inner' (shared with workflow 'outer'): "
        "field 'value': Field required"
    )
    assert ran == []


async def test_a_state_the_parents_schema_rejects_fails_the_nested_step_where_it_was_set() -> None:
    class Counter(BaseModel):
        count: int

    ran: list[str] = []

    async def spoil(ctx: StepContext[Any]) -> None:
        ran.append("spoil")
        ctx.set_state({"count": "many"})  # the inner workflow has no schema to stop it

    inner = (
        create_workflow(id="inner")
        .then(create_step(id="spoil", execute=spoil))
        .then(fn_step("next", lambda v: ran.append("next")))
        .commit()
    )
    workflow = create_workflow(id="outer", state_schema=Counter).then(inner).commit()

    result = await (await workflow.create_run()).start(None, initial_state={"count": 1})

    assert result.status == "failed"
    assert str(result.error).startswith(
        "invalid state left by nested workflow 'inner' for workflow 'outer': field 'count'"
    )
    assert ran == ["spoil"]  # the nested workflow stopped right after the step that set it
    assert result.state == Counter(count=1)


def counting(step_id: str) -> Any:
    async def execute(ctx: StepContext[Any]) -> int:
        ctx.set_state({**ctx.state, "trail": [*ctx.state["trail"], step_id]})
        return len(ctx.state["trail"])

    return create_step(id=step_id, execute=execute)


async def test_state_flows_through_several_levels_of_nesting_and_back() -> None:
    leaf = create_workflow(id="leaf").then(counting("in-leaf")).commit()
    middle = (
        create_workflow(id="middle")
        .then(counting("in-middle"))
        .then(leaf)
        .then(reads_state("middle-reads"))
        .commit()
    )
    workflow = create_workflow(id="top").then(middle).then(counting("in-top")).commit()

    result = await (await workflow.create_run()).start(None, initial_state={"trail": []})

    assert result.steps["middle"].output == {
        "state": {"trail": ["in-middle", "in-leaf"]},
        "type": "dict",
    }
    assert result.state == {"trail": ["in-middle", "in-leaf", "in-top"]}


class Output(BaseModel):
    output: int


def foreach_state_batch() -> Workflow:
    """Mastra's "should update state after each concurrent batch in foreach step"."""
    seen: list[int] = []

    async def expects_two(ctx: StepContext[int]) -> int:
        seen.append(ctx.state.output)
        assert ctx.state.output == 2, "the state set by the previous item reaches this one"
        return ctx.input_data

    async def sets_two(ctx: StepContext[int]) -> int:
        ctx.set_state(Output(output=2))
        return ctx.input_data

    s1 = (
        create_workflow(id="s1", state_schema=Output)
        .then(create_step(id="s1s", execute=expects_two))
        .commit()
    )
    s2 = (
        create_workflow(id="s2", state_schema=Output)
        .then(create_step(id="s2s", execute=sets_two))
        .commit()
    )
    routing = (
        create_workflow(id="routing", state_schema=Output)
        .branch([(lambda c: c.input_data == 1, s1), (lambda c: c.input_data == 2, s2)])
        .map(lambda ctx: ctx.input_data.get("s1", 0) + ctx.input_data.get("s2", 0))
        .commit()
    )
    return create_workflow(id="batch", state_schema=Output).foreach(routing).commit()


async def test_state_set_in_one_foreach_iteration_reaches_the_next_through_nested_workflows() -> (
    None
):
    workflow = foreach_state_batch()

    result = await (await workflow.create_run()).start([2, 1], initial_state={"output": 0})

    assert result.status == "success", result.error
    assert result.result == [2, 1]
    assert result.state == Output(output=2)


def approval_flow() -> Workflow:
    """outer: inner[note-asked -> ask (suspends) -> note-answer] -> after."""

    async def ask(ctx: StepContext[Any]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"question": "ok?"})
        ctx.set_state({**ctx.state, "answer": ctx.resume_data, "seen": ctx.state})
        return str(ctx.resume_data)

    inner = (
        create_workflow(id="inner")
        .then(counting("note-asked"))
        .then(create_step(id="ask", execute=ask))
        .then(counting("note-answer"))
        .commit()
    )
    return create_workflow(id="outer").then(inner).then(reads_state("after")).commit()


async def test_state_set_inside_before_a_suspension_is_the_parents_while_suspended(
    shared_store_spec: StoreSpec,
) -> None:
    workflow = approval_flow()
    workflow.storage = shared_store_spec.open()
    try:
        run = await workflow.create_run()
        result = await run.start(None, initial_state={"trail": []})
        stored = await workflow.storage.get_run(run.run_id)
    finally:
        await workflow.storage.close()

    assert result.status == "suspended"
    assert result.state == {"trail": ["note-asked"]}
    assert stored is not None
    frame = stored.snapshot["frame"]
    assert frame["state"] == {"trail": ["note-asked"]}
    assert frame["entry"]["slot"]["state"] == frame["state"]  # one value, stored twice


async def test_after_a_resume_in_another_process_inner_steps_share_the_parents_state(
    shared_store_spec: StoreSpec,
) -> None:
    workflow = approval_flow()
    workflow.storage = shared_store_spec.open()
    try:
        run = await workflow.create_run()
        await run.start(None, initial_state={"trail": []})
        await workflow.storage.close()
        workflow.storage = shared_store_spec.open()  # as a new process would
        again = await workflow.create_run(run_id=run.run_id)
        result = await again.resume("yes")
    finally:
        await workflow.storage.close()

    assert result.status == "success"
    final = {
        "trail": ["note-asked", "note-answer"],
        "answer": "yes",
        "seen": {"trail": ["note-asked"]},
    }
    assert result.state == final
    assert result.result == {"state": final, "type": "dict"}


def approving_into(key: str) -> Workflow:
    """A nested workflow whose step suspends, then writes its answer into the state."""

    async def approve(ctx: StepContext[Any]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"key": key})
        ctx.set_state({**ctx.state, key: ctx.resume_data})
        return str(ctx.resume_data)

    return (
        create_workflow(id=f"ask-{key}").then(create_step(id="approve", execute=approve)).commit()
    )


async def test_a_nested_workflow_resumed_after_its_sibling_sees_the_state_the_sibling_set() -> None:
    workflow = (
        create_workflow(id="outer").parallel([approving_into("a"), approving_into("b")]).commit()
    )
    run = await workflow.create_run()
    await run.start(None, initial_state={})

    first = await run.resume("ann", step="ask-a.approve")
    second = await run.resume("bob", step="ask-b.approve")

    assert first.state == {"a": "ann"}
    # ask-b suspended with the state {}; on its resume it sees the run's state as it is now.
    assert second.state == {"a": "ann", "b": "bob"}
    assert second.result == {"ask-a": "ann", "ask-b": "bob"}


async def test_a_loop_over_a_nested_workflow_resumed_mid_iteration_goes_on_with_fresh_ones() -> (
    None
):
    async def approve(ctx: StepContext[int]) -> int:
        if ctx.input_data == 1 and ctx.resume_data is None:
            ctx.suspend({"at": ctx.input_data})
        ctx.set_state({"trail": [*ctx.state["trail"], ctx.input_data]})
        return ctx.input_data + 1

    inner = create_workflow(id="inner").then(create_step(id="approve", execute=approve)).commit()
    workflow = create_workflow(id="outer").dountil(inner, lambda c: c.input_data >= 4).commit()
    run = await workflow.create_run()
    started = await run.start(1, initial_state={"trail": []})

    result = await run.resume("ok")

    assert started.suspended == [["inner", "approve"]]
    assert result.status == "success"
    assert result.result == 4
    assert result.state == {"trail": [1, 2, 3]}
