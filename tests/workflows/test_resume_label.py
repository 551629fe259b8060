"""Resume by label: ``run.resume(data, label="finance")`` resumes the step that suspended with
``ctx.suspend(payload, resume_label="finance")``, wherever it is (a parallel branch, a nested
workflow, a foreach iteration). An unknown label raises `StepNotFoundError` listing the labels
the run's suspended steps carry; ``label`` with ``step`` must name the same step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from spanflow import (
    InvalidInputError,
    StepContext,
    StepNotFoundError,
    Workflow,
    create_step,
    create_workflow,
)
from spanflow.storage import Storage
from tests.support.stores import StoreSpec


def asking(step_id: str, label: Any = None) -> Any:
    """A step that suspends (with `label`, or a label made from its input) until resumed."""

    async def execute(ctx: StepContext[Any]) -> Any:
        if ctx.resume_data is None:
            own = label(ctx.input_data) if callable(label) else label
            ctx.suspend({"step": step_id, "input": ctx.input_data}, resume_label=own)
        return f"{step_id}: {ctx.resume_data}"

    return create_step(id=step_id, execute=execute)


def approvals(storage: Storage | None = None) -> Workflow:
    return (
        create_workflow(id="approvals", storage=storage)
        .parallel([asking("manager", "manager-ok"), asking("finance", "finance-ok")])
        .commit()
    )


@pytest.fixture
async def storage(store_spec: StoreSpec) -> AsyncIterator[Storage]:
    store = store_spec.open()
    yield store
    await store.close()


async def test_a_run_is_resumed_by_the_label_its_step_suspended_with(storage: Storage) -> None:
    workflow = approvals(storage)
    run = await workflow.create_run(run_id="a-1")
    await run.start(None)

    elsewhere = await workflow.create_run(run_id="a-1")  # the label is read from the store
    partly = await elsewhere.resume("yes", label="finance-ok")
    done = await elsewhere.resume("fine", label="manager-ok")

    assert (partly.status, partly.suspended) == ("suspended", [["manager"]])
    assert partly.steps["finance"].output == "finance: yes"
    assert (done.status, done.result) == (
        "success",
        {"manager": "manager: fine", "finance": "finance: yes"},
    )


async def test_a_label_inside_a_nested_workflow_resolves_to_its_path() -> None:
    inner = create_workflow(id="review").then(asking("sign", "signature")).commit()
    workflow = create_workflow(id="contract").then(inner).commit()
    run = await workflow.create_run()
    suspended = await run.start("nda")

    result = await run.resume("ada", label="signature")

    assert suspended.suspended == [["review", "sign"]]
    assert (result.status, result.result) == ("success", "sign: ada")


async def test_a_label_picks_one_iteration_of_a_foreach() -> None:
    workflow = (
        create_workflow(id="batch")
        .foreach(asking("check", lambda item: f"item-{item}"), concurrency=3)
        .commit()
    )
    run = await workflow.create_run()
    await run.start([10, 20, 30])

    partly = await run.resume("ok", label="item-20")

    assert partly.status == "suspended"
    stored = await workflow.get_run(run.run_id)
    assert stored is not None
    statuses = stored.snapshot["frame"]["entry"]["statuses"]
    assert statuses == ["suspended", "success", "suspended"]


async def test_a_label_every_suspended_iteration_carries_resumes_them_all() -> None:
    workflow = (
        create_workflow(id="batch").foreach(asking("check", "review"), concurrency=2).commit()
    )
    run = await workflow.create_run()
    await run.start([1, 2])

    result = await run.resume("ok", label="review")

    assert (result.status, result.result) == ("success", ["check: ok", "check: ok"])


async def test_an_unknown_label_raises_listing_the_labels_there_are() -> None:
    run = await approvals().create_run()
    await run.start(None)

    with pytest.raises(StepNotFoundError) as caught:
        await run.resume("yes", label="ceo-ok")

    assert str(caught.value) == (
        f"no suspended step of run {run.run_id!r} has resume label 'ceo-ok'; "
        f"labels of its suspended steps: 'finance-ok', 'manager-ok'"
    )
    assert run.status == "suspended"


async def test_a_label_on_a_run_whose_steps_carry_none_says_so() -> None:
    workflow = create_workflow(id="plain").then(asking("ask")).commit()
    run = await workflow.create_run()
    await run.start(None)

    with pytest.raises(StepNotFoundError, match="labels of its suspended steps: none"):
        await run.resume("yes", label="approve")
    with pytest.raises(InvalidInputError, match="label must be a non-empty string"):
        await run.resume("yes", label="")


async def test_label_and_step_together_must_name_the_same_step() -> None:
    run = await approvals().create_run()
    await run.start(None)

    with pytest.raises(InvalidInputError) as caught:
        await run.resume("yes", label="finance-ok", step="manager")
    result = await run.resume("yes", label="finance-ok", step="finance")

    assert str(caught.value) == (
        "resume label 'finance-ok' is on step 'finance', but step='manager' names another: "
        "give one of them, or both naming the same step"
    )
    assert result.suspended == [["manager"]]


async def test_resume_stream_and_resume_sync_take_a_label_too() -> None:
    run = await approvals().create_run()
    await run.start(None)

    out = run.resume_stream("yes", label="manager-ok")
    events = [e.type async for e in out]

    assert events[0] == "workflow-start"
    assert (await out.result).suspended == [["finance"]]


def test_resume_sync_resumes_by_label() -> None:
    run = approvals().create_run_sync()
    run.start_sync(None)

    assert run.resume_sync("yes", label="manager-ok").suspended == [["finance"]]
