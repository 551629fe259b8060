"""A run exists from ``create_run``: stored as pending, started once by whoever claims it first.

``create_run()`` stores the run as ``pending`` in every store, so it can be listed, fetched and
started later by id, from another store object (another process) too. Starting it claims it
``pending -> running``: of two starters exactly one wins. A run that was started is never
started again: a suspended one is resumed, an ended one stays as it ended (Mastra would run
either again under the same id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from spanflow import (
    InvalidInputError,
    RunClaimError,
    RunStateError,
    StepContext,
    Workflow,
    create_step,
    create_workflow,
)
from spanflow.storage import Storage
from tests.support.stores import StoreSpec

from .support import held_workflow


class Order(BaseModel):
    qty: int


async def double(ctx: StepContext[Order]) -> int:
    return ctx.input_data.qty * 2


async def approve(ctx: StepContext[int]) -> int:
    if ctx.resume_data is None:
        ctx.suspend({"amount": ctx.input_data})
    return ctx.input_data


def orders(storage: Storage, *, gate: bool = False) -> Workflow:
    workflow = create_workflow(id="orders", input_schema=Order, storage=storage)
    workflow.then(create_step(id="double", input_schema=Order, execute=double))
    if gate:
        workflow.then(create_step(id="approve", execute=approve))
    return workflow.commit()


@pytest.fixture
async def storage(store_spec: StoreSpec) -> AsyncIterator[Storage]:
    store = store_spec.open()
    yield store
    await store.close()


async def test_create_run_stores_the_run_as_pending_before_anything_runs(storage: Storage) -> None:
    workflow = orders(storage)

    run = await workflow.create_run(run_id="o-1", resource_id="alice")

    stored = await workflow.get_run("o-1")
    assert stored is not None
    assert (stored.status, stored.resource_id) == ("pending", "alice")
    assert run.status == "pending"
    assert [r.run_id for r in (await workflow.list_runs(status="pending")).runs] == ["o-1"]


async def test_a_pending_run_is_started_later_through_its_id(storage: Storage) -> None:
    workflow = orders(storage)
    await workflow.create_run(run_id="o-1", resource_id="alice")

    later = await workflow.create_run(run_id="o-1")
    result = await later.start({"qty": 4})

    assert (result.status, result.result) == ("success", 8)
    assert later.resource_id == "alice"  # the stored run's, not a new one
    stored = await workflow.get_run("o-1")
    assert stored is not None
    assert (stored.status, stored.snapshot["result"]) == ("success", 8)


async def test_a_pending_run_is_started_by_another_store_object_on_the_same_data(
    shared_store_spec: StoreSpec,
) -> None:
    first, second = shared_store_spec.open(), shared_store_spec.open()
    try:
        await orders(first).create_run(run_id="o-1")

        result = await (await orders(second).create_run(run_id="o-1")).start({"qty": 2})

        assert result.status == "success"
        stored = await first.get_run("o-1")
        assert stored is not None
        assert stored.status == "success"
    finally:
        await first.close()
        await second.close()


async def test_of_two_starters_of_one_pending_run_exactly_one_wins(storage: Storage) -> None:
    workflow = orders(storage)
    await workflow.create_run(run_id="o-1")
    starters = [await workflow.create_run(run_id="o-1") for _ in range(2)]

    outcomes = await asyncio.gather(
        *(run.start({"qty": n}) for n, run in enumerate(starters, 1)), return_exceptions=True
    )

    won = [o.result for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1
    assert [type(e) for e in lost] == [RunClaimError]
    stored = await workflow.get_run("o-1")
    assert stored is not None
    assert (stored.status, stored.snapshot["result"]) == ("success", won[0])


async def test_invalid_input_raises_and_leaves_the_run_pending_to_start_again(
    storage: Storage,
) -> None:
    workflow = orders(storage)
    run = await workflow.create_run(run_id="o-1")
    before = await workflow.get_run("o-1")

    with pytest.raises(InvalidInputError, match="field 'qty'"):
        await run.start({"qty": "many"})

    assert await workflow.get_run("o-1") == before
    assert run.status == "pending"
    assert (await run.start({"qty": 1})).result == 2


async def test_the_stored_run_shows_its_input_while_it_runs(storage: Storage) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx: StepContext[Order]) -> int:
        started.set()
        await release.wait()
        return ctx.input_data.qty

    workflow = (
        create_workflow(id="slow", input_schema=Order, storage=storage)
        .then(create_step(id="slow", input_schema=Order, execute=slow))
        .commit()
    )
    run = await workflow.create_run(run_id="s-1")
    out = run.stream({"qty": 3})
    await started.wait()

    stored = await workflow.get_run("s-1")
    release.set()
    await out.result

    assert stored is not None
    assert (stored.status, stored.snapshot["status"]) == ("running", "running")
    assert stored.snapshot["frame"]["input"] == {"qty": 3}


async def test_starting_a_suspended_run_is_refused_and_points_to_resume(storage: Storage) -> None:
    workflow = orders(storage, gate=True)
    run = await workflow.create_run(run_id="o-1")
    await run.start({"qty": 1})
    before = await workflow.get_run("o-1")
    elsewhere = await workflow.create_run(run_id="o-1")

    for caller in (run, elsewhere):
        with pytest.raises(RunStateError, match=r"is suspended: resume it with run\.resume"):
            await caller.start({"qty": 1})

    assert await workflow.get_run("o-1") == before
    assert (await elsewhere.resume(True)).status == "success"


@pytest.mark.parametrize("ending", ["success", "failed", "canceled"])
async def test_starting_a_run_that_has_ended_is_refused(storage: Storage, ending: str) -> None:
    async def work(ctx: StepContext[Any]) -> Any:
        if ending == "failed":
            raise RuntimeError("card declined")
        if ending == "canceled":
            ctx.abort()
        return "done"

    workflow = create_workflow(id="ends", storage=storage)
    workflow.then(create_step(id="work", execute=work)).commit()
    run = await workflow.create_run(run_id="e-1")
    assert (await run.start(None)).status == ending
    before = await workflow.get_run("e-1")
    elsewhere = await workflow.create_run(run_id="e-1")

    for caller in (run, elsewhere):
        with pytest.raises(RunStateError, match=rf"has ended \({ending}\): create a new run"):
            await caller.start(None)
        with pytest.raises(RunStateError, match="time_travel"):
            caller.stream(None)

    assert await workflow.get_run("e-1") == before


async def test_starting_a_run_another_caller_is_executing_is_a_claim_error(
    storage: Storage,
) -> None:
    held = held_workflow(storage)
    workflow = held.workflow
    run = await workflow.create_run(run_id="b-1")
    out = run.stream(None)
    await held.started.wait()

    with pytest.raises(RunStateError, match="is executing here"):
        await run.start(None)
    with pytest.raises(RunClaimError, match="is running: another caller is executing it"):
        await (await workflow.create_run(run_id="b-1")).start(None)

    held.release.set()
    assert (await out.result).status == "success"


async def test_a_pending_run_can_be_canceled_and_is_then_never_started(storage: Storage) -> None:
    workflow = orders(storage)
    run = await workflow.create_run(run_id="o-1")

    await run.cancel()

    stored = await workflow.get_run("o-1")
    assert stored is not None
    assert (stored.status, stored.snapshot["status"]) == ("canceled", "canceled")
    with pytest.raises(RunStateError, match=r"has ended \(canceled\)"):
        await run.start({"qty": 1})


async def test_a_pending_run_cannot_be_resumed_or_restarted(storage: Storage) -> None:
    run = await orders(storage).create_run()

    with pytest.raises(RunStateError, match="was never started, so it cannot be resumed"):
        await run.resume(True)
    with pytest.raises(RunStateError, match="was never started, so it cannot be restarted"):
        await run.restart()
    assert run.status == "pending"
