"""Nested workflows: a committed workflow used as a step of another."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from spanflow import StepContext, StepNotFoundError, Workflow, create_step, create_workflow

from .support import collect, fn_step, step_events


class Amount(BaseModel):
    cents: int


def inner_workflow() -> Workflow:
    return (
        create_workflow(id="inner", input_schema=Amount, output_schema=Amount)
        .then(fn_step("add-tax", lambda a: Amount(cents=a.cents + a.cents // 10)))
        .then(fn_step("round", lambda a: Amount(cents=a.cents - a.cents % 5)))
        .commit()
    )


async def test_a_nested_workflow_runs_as_one_step_of_the_outer() -> None:
    workflow = (
        create_workflow(id="outer")
        .then(inner_workflow())
        .then(fn_step("show", lambda a: f"{a.cents} cents"))
        .commit()
    )

    result = await (await workflow.create_run()).start({"cents": 100})

    assert result.result == "110 cents"
    assert result.steps["inner"].status == "success"
    assert result.steps["inner"].output == Amount(cents=110)
    assert set(result.steps) == {"inner", "show"}


async def test_inner_events_are_republished_with_ids_inner_dot_step() -> None:
    workflow = create_workflow(id="outer").then(inner_workflow()).commit()
    run = await workflow.create_run()

    events = await collect(run.stream({"cents": 100}))

    assert step_events(events) == [
        ("workflow-step-start", "inner"),
        ("workflow-step-start", "inner.add-tax"),
        ("workflow-step-result", "inner.add-tax"),
        ("workflow-step-start", "inner.round"),
        ("workflow-step-result", "inner.round"),
        ("workflow-step-result", "inner"),
    ]
    inner_start = events[2].to_dict()
    assert inner_start["payload"]["stepName"] == "add-tax"
    assert inner_start["runId"] == run.run_id
    # the inner workflow's own start and finish are not stream events of the outer run
    assert [e.type for e in events].count("workflow-start") == 1
    assert [e.type for e in events].count("workflow-finish") == 1


async def test_ids_compose_through_several_levels_of_nesting() -> None:
    leaf = create_workflow(id="leaf").then(fn_step("work", lambda v: v + 1)).commit()
    middle = create_workflow(id="middle").then(leaf).commit()
    top = create_workflow(id="top").then(middle).commit()

    events = await collect((await top.create_run()).stream(1))

    assert [step_id for kind, step_id in step_events(events) if kind.endswith("start")] == [
        "middle",
        "middle.leaf",
        "middle.leaf.work",
    ]


async def test_a_failure_inside_fails_the_nested_step_and_the_run() -> None:
    async def broken(ctx: StepContext[Any]) -> None:
        raise LookupError("not in stock")

    inner = create_workflow(id="inner").then(create_step(id="broken", execute=broken)).commit()
    workflow = create_workflow(id="outer").then(inner).then(fn_step("after", str)).commit()
    run = await workflow.create_run()

    out = run.stream(None)
    events = await collect(out)
    result = await out.result

    assert result.status == "failed"
    assert isinstance(result.error, LookupError)
    assert result.steps["inner"].status == "failed"
    assert "after" not in result.steps
    failed_ids = [
        e.to_dict()["payload"]["id"]
        for e in events
        if e.type == "workflow-step-result" and e.to_dict()["payload"]["status"] == "failed"
    ]
    assert failed_ids == ["inner.broken", "inner"]


async def test_a_nested_workflow_validates_its_own_input() -> None:
    workflow = create_workflow(id="outer").then(inner_workflow()).commit()

    result = await (await workflow.create_run()).start({"dollars": 1})

    assert result.status == "failed"
    assert "input of workflow 'inner'" in str(result.error)
    assert "field 'cents'" in str(result.error)


def approval_workflow() -> Workflow:
    async def approve(ctx: StepContext[Any]) -> dict[str, Any]:
        if ctx.resume_data is None:
            ctx.suspend({"amount": ctx.input_data})
        return {"amount": ctx.input_data, "by": ctx.resume_data}

    return (
        create_workflow(id="approval")
        .then(fn_step("prepare", lambda v: v * 100))
        .then(create_step(id="approve", execute=approve))
        .commit()
    )


async def suspended_outer() -> tuple[Workflow, Any]:
    workflow = (
        create_workflow(id="outer")
        .then(approval_workflow())
        .then(fn_step("record", lambda v: f"{v['amount']} by {v['by']}"))
        .commit()
    )
    run = await workflow.create_run()
    result = await run.start(3)
    assert result.status == "suspended"
    assert result.suspended == [["approval", "approve"]]
    assert result.suspend_payload == {"approval": {"amount": 300}}
    return workflow, run


@pytest.mark.parametrize("step", ["approval.approve", "approve", "approval", None])
async def test_a_suspension_inside_resumes_by_path_by_id_or_alone(step: str | None) -> None:
    _, run = await suspended_outer()

    result = await run.resume("boss", step=step)

    assert result.status == "success"
    assert result.result == "300 by boss"


async def test_a_suspension_inside_resumes_by_step_object() -> None:
    workflow, run = await suspended_outer()
    inner = workflow.find_step("approval")
    assert isinstance(inner, Workflow)
    approve = inner.find_step("approve")
    assert approve is not None

    result = await run.resume("boss", step=approve)

    assert result.result == "300 by boss"


async def test_the_resume_stream_republishes_only_the_resumed_inner_steps() -> None:
    _, run = await suspended_outer()

    events = await collect(run.resume_stream("boss", step="approval.approve"))

    assert step_events(events) == [
        ("workflow-step-start", "approval"),
        ("workflow-step-start", "approval.approve"),
        ("workflow-step-result", "approval.approve"),
        ("workflow-step-result", "approval"),
        ("workflow-step-start", "record"),
        ("workflow-step-result", "record"),
    ]


async def test_a_wrong_path_into_a_nested_workflow_is_refused() -> None:
    _, run = await suspended_outer()

    with pytest.raises(StepNotFoundError, match=r"'approval\.prepare' is not suspended"):
        await run.resume("boss", step="approval.prepare")


async def test_a_nested_suspension_survives_a_new_run_object() -> None:
    workflow, run = await suspended_outer()

    again = await workflow.create_run(run_id=run.run_id)
    result = await again.resume("boss", step="approval.approve")

    assert result.result == "300 by boss"


def approving(workflow_id: str) -> Workflow:
    async def approve(ctx: StepContext[Any]) -> dict[str, Any]:
        if ctx.resume_data is None:
            ctx.suspend({"amount": ctx.input_data})
        return {"amount": ctx.input_data, "by": ctx.resume_data}

    return create_workflow(id=workflow_id).then(create_step(id="approve", execute=approve)).commit()


async def test_nested_workflows_suspended_in_parallel_resume_by_path_one_at_a_time() -> None:
    workflow = create_workflow(id="outer").parallel([approving("x"), approving("y")]).commit()
    run = await workflow.create_run()

    first = await run.start(1)
    second = await run.resume("ann", step="x.approve")
    third = await run.resume("bob", step=["y", "approve"])  # a path as a sequence of ids

    assert first.suspended == [["x", "approve"], ["y", "approve"]]
    assert first.suspend_payload == {"x": {"amount": 1}, "y": {"amount": 1}}
    assert second.suspended == [["y", "approve"]]
    assert third.result == {"x": {"amount": 1, "by": "ann"}, "y": {"amount": 1, "by": "bob"}}


async def test_nested_workflows_suspended_in_a_foreach_report_their_inner_path() -> None:
    workflow = create_workflow(id="outer").foreach(approving("each"), concurrency=2).commit()
    run = await workflow.create_run()

    first = await run.start([1, 2])
    second = await run.resume("ann", step="each.approve", foreach_index=1)
    third = await run.resume("bob", step="each")  # the foreach's name is enough

    assert first.suspended == [["each", "approve"]]
    assert second.status == "suspended"
    assert third.result == [{"amount": 1, "by": "bob"}, {"amount": 2, "by": "ann"}]


async def test_a_suspension_inside_a_parallel_inside_a_nested_foreach_resumes_by_name() -> None:
    inner = (
        create_workflow(id="inner")
        .parallel([approving("left"), fn_step("right", lambda v: v * 2)])
        .commit()
    )
    workflow = create_workflow(id="outer").foreach(inner).commit()
    run = await workflow.create_run()

    first = await run.start([5])
    done = await run.resume("cy", step="inner")

    assert first.suspended == [["inner", "left", "approve"]]
    assert done.result == [{"left": {"amount": 5, "by": "cy"}, "right": 10}]
