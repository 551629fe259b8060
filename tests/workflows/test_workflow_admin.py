"""A workflow's stored runs: listed between dates, counted by status, deleted, on every store.

`Workflow.list_runs`, `Workflow.count_runs` and `Workflow.delete_run` see only the workflow's
own runs, in whatever store it uses. A run that is executing (here, or stored as running or
waiting by another process) is never deleted from under its executor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from spanflow import RunStateError, StepContext, Workflow, create_step, create_workflow
from spanflow.storage import Storage
from tests.support.stores import FakeClock, StoreSpec

from .support import held_workflow


async def review(ctx: StepContext[int]) -> int:
    if ctx.input_data < 0 and ctx.resume_data is None:
        ctx.suspend({"why": "negative"})
    if ctx.input_data == 0:
        raise ValueError("zero")
    return ctx.input_data


def tickets(storage: Storage, workflow_id: str = "tickets") -> Workflow:
    return (
        create_workflow(id=workflow_id, storage=storage)
        .then(create_step(id="review", execute=review))
        .commit()
    )


@pytest.fixture
async def storage(store_spec: StoreSpec, clock: FakeClock) -> AsyncIterator[Storage]:
    store = store_spec.open(clock=clock)
    yield store
    await store.close()


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_runs_are_listed_between_two_dates_both_included(
    storage: Storage, clock: FakeClock
) -> None:
    workflow = tickets(storage)
    created = {}
    for n in range(1, 5):
        created[n] = clock.advance(60)
        await (await workflow.create_run(run_id=f"t-{n}")).start(n)

    between = await workflow.list_runs(from_date=at(created[2]), to_date=at(created[3]))
    since = await workflow.list_runs(from_date=at(created[3]))
    until = await workflow.list_runs(to_date=at(created[1]))

    assert [r.run_id for r in between.runs] == ["t-3", "t-2"]
    assert between.total == 2
    assert [r.run_id for r in since.runs] == ["t-4", "t-3"]
    assert [r.run_id for r in until.runs] == ["t-1"]


async def test_count_runs_counts_the_workflows_own_runs_by_status(storage: Storage) -> None:
    workflow, other = tickets(storage), tickets(storage, "other")
    for n in (1, 2, -1, 0):
        await (await workflow.create_run()).start(n)
    await workflow.create_run()  # pending
    await (await other.create_run()).start(5)

    counts = await workflow.count_runs()

    assert counts == {"success": 2, "suspended": 1, "failed": 1, "pending": 1}
    assert await tickets(storage, "nothing-yet").count_runs() == {}


async def test_delete_run_removes_an_ended_suspended_or_pending_run(storage: Storage) -> None:
    workflow = tickets(storage)
    await (await workflow.create_run(run_id="done")).start(1)
    await (await workflow.create_run(run_id="waiting-for-review")).start(-1)
    await workflow.create_run(run_id="not-started")

    deleted = [await workflow.delete_run(r) for r in ("done", "waiting-for-review", "not-started")]

    assert deleted == [True, True, True]
    assert (await workflow.list_runs()).total == 0
    assert await workflow.delete_run("done") is False  # gone already


async def test_delete_run_leaves_another_workflows_run_alone(storage: Storage) -> None:
    workflow, other = tickets(storage), tickets(storage, "other")
    await (await other.create_run(run_id="o-1")).start(1)

    assert await workflow.delete_run("o-1") is False
    assert await workflow.delete_run("unknown") is False
    assert await other.get_run("o-1") is not None


async def test_delete_run_refuses_a_run_that_is_executing(storage: Storage) -> None:
    held = held_workflow(storage)
    here = held.workflow
    elsewhere = held_workflow(storage).workflow  # another process's copy of the workflow
    out = (await here.create_run(run_id="b-1")).stream(None)
    await held.started.wait()

    with pytest.raises(
        RunStateError,
        match=r"its status is 'running', so a process .* is executing it; cancel it first$",
    ):
        await here.delete_run("b-1")
    with pytest.raises(
        RunStateError,
        match=r"its status is 'running', so a process .* is executing it; cancel it first$",
    ):
        await elsewhere.delete_run("b-1")

    held.release.set()
    assert (await out.result).status == "success"
    assert await here.delete_run("b-1") is True


class PausingGet:
    """Wraps a store so that one `get_run` pauses after reading, as a slow admin would."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.pause_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    async def get_run(self, run_id: str) -> Any:
        stored = await self.storage.get_run(run_id)
        if self.pause_next:
            self.pause_next = False
            await asyncio.sleep(0.05)
        return stored


async def test_a_run_claimed_while_delete_run_looks_at_it_is_not_deleted(
    storage: Storage,
) -> None:
    gate = asyncio.Event()

    async def slow(ctx: StepContext[Any]) -> str:
        await gate.wait()
        return "done"

    def build(store: Any) -> Workflow:
        return (
            create_workflow(id="slow", storage=store)
            .then(create_step(id="s", execute=slow))
            .commit()
        )

    pausing = PausingGet(storage)
    admin, worker = build(pausing), build(storage)  # two processes on one store
    run = await worker.create_run()
    pausing.pause_next = True
    deleting = asyncio.create_task(admin.delete_run(run.run_id))
    await asyncio.sleep(0.01)  # the admin read "pending" and pauses
    starting = asyncio.create_task(run.start())
    await asyncio.sleep(0.01)  # the worker claims the run meanwhile

    with pytest.raises(RunStateError, match="running"):
        await deleting
    gate.set()
    result = await starting

    stored = await storage.get_run(run.run_id)
    assert result.status == "success"
    assert stored is not None
    assert stored.status == "success"


async def test_discard_deletes_a_run_that_never_started_and_keeps_one_that_did(
    storage: Storage,
) -> None:
    workflow = tickets(storage)
    never = await workflow.create_run()
    started = await workflow.create_run()
    await started.start(5)

    assert await never.discard()
    assert not await started.discard()
    assert await storage.get_run(never.run_id) is None
    kept = await storage.get_run(started.run_id)
    assert kept is not None
    assert kept.status == "success"
