"""Listing and fetching stored runs through the workflow and the registry, on every store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from spanflow import Spanflow, StepContext, Workflow, create_step, create_workflow
from spanflow.storage import Storage
from tests.support.stores import FakeClock, StoreSpec


class Ticket(BaseModel):
    n: int


def ticket_workflow(workflow_id: str) -> Workflow:
    async def check(ctx: StepContext[Ticket]) -> Ticket:
        if ctx.input_data.n % 3 == 0:
            ctx.suspend({"needs": "review"})
        return ctx.input_data

    step = create_step(id="check", input_schema=Ticket, output_schema=Ticket, execute=check)
    return create_workflow(id=workflow_id, input_schema=Ticket).then(step).commit()


@pytest.fixture
async def storage(store_spec: StoreSpec, clock: FakeClock) -> AsyncIterator[Storage]:
    store = store_spec.open(clock=clock)
    yield store
    await store.close()


async def test_runs_are_listed_newest_first_filtered_and_paged(
    storage: Storage, clock: FakeClock
) -> None:
    tickets, other = ticket_workflow("tickets"), ticket_workflow("other")
    registry = Spanflow(workflows=[tickets, other], storage=storage)
    run_ids = []
    for n in range(1, 8):
        clock.advance(1)
        run = await tickets.create_run(run_id=f"t-{n}", resource_id="alice" if n <= 4 else "bob")
        await run.start({"n": n})
        run_ids.append(run.run_id)
    await (await other.create_run(run_id="o-1")).start({"n": 1})

    everything = await tickets.list_runs(limit=100)
    assert [r.run_id for r in everything.runs] == list(reversed(run_ids))
    assert everything.total == 7

    suspended = await tickets.list_runs(status="suspended")
    assert [r.run_id for r in suspended.runs] == ["t-6", "t-3"]

    alice = await tickets.list_runs(resource_id="alice", status="success")
    assert [r.run_id for r in alice.runs] == ["t-4", "t-2", "t-1"]

    page = await tickets.list_runs(limit=3, offset=3)
    assert [r.run_id for r in page.runs] == ["t-4", "t-3", "t-2"]
    assert (page.total, page.limit, page.offset) == (7, 3, 3)

    across = await registry.list_runs(limit=100)
    assert across.total == 8
    assert (await registry.list_runs(workflow_id="other")).runs[0].run_id == "o-1"


async def test_a_run_is_fetched_by_id_with_its_status_and_snapshot(storage: Storage) -> None:
    tickets = ticket_workflow("tickets")
    tickets.storage = storage
    run = await tickets.create_run(run_id="t-3")
    await run.start({"n": 3})

    stored = await tickets.get_run("t-3")
    assert stored is not None
    assert stored.status == "suspended"
    assert stored.snapshot["suspended"] == [["check"]]
    assert stored.snapshot["suspendPayload"] == {"check": {"needs": "review"}}
    assert await tickets.get_run("missing") is None
    assert await ticket_workflow("other-workflow").get_run("t-3") is None  # another workflow's
