"""Run administration in `Spanflow`: counting each workflow's runs, and deleting a run.

A run that some process is executing (``running``, ``waiting``) is not deleted unless forced;
counts cover every registered workflow, those without runs too. Each test runs on every store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from spanflow import (
    NotRegisteredError,
    RunStateError,
    Spanflow,
    StepContext,
    Workflow,
    create_workflow,
    step,
)
from spanflow.storage import MemoryStorage, RunStatus, Storage, StoredRun
from tests.support.stores import FakeClock, StoreSpec

__all__: list[str] = []


class Order(BaseModel):
    order_id: str


@step(input_schema=Order, output_schema=Order)
async def accept(ctx: StepContext[Order]) -> Order:
    return ctx.input_data


def workflow(workflow_id: str) -> Workflow:
    return create_workflow(id=workflow_id, input_schema=Order).then(accept).commit()


@pytest.fixture
async def storage(store_spec: StoreSpec, clock: FakeClock) -> AsyncIterator[Storage]:
    store = store_spec.open(clock=clock)
    yield store
    await store.close()


@pytest.fixture
def registry(storage: Storage) -> Spanflow:
    """Workflows ``checkout`` and ``refund`` sharing the test's store."""
    return Spanflow(workflows=[workflow("checkout"), workflow("refund")], storage=storage)


async def store_run(
    registry: Spanflow,
    run_id: str,
    status: RunStatus,
    workflow_id: str = "checkout",
    created_at: float = 0.0,
) -> None:
    await registry.storage.insert_run(
        StoredRun(run_id, workflow_id, status, {"steps": {}}, created_at=created_at)
    )


async def test_run_counts_gives_every_registered_workflow_its_runs_per_status(
    registry: Spanflow,
) -> None:
    runs: list[tuple[str, RunStatus]] = [
        ("c1", "running"),
        ("c2", "suspended"),
        ("c3", "suspended"),
    ]
    for run_id, status in runs:
        await store_run(registry, run_id, status)
    await store_run(registry, "gone-1", "success", workflow_id="retired")  # not registered

    counts = await registry.run_counts()

    assert counts == {"checkout": {"running": 1, "suspended": 2}, "refund": {}}
    assert list(counts) == ["checkout", "refund"]


async def test_run_counts_sees_the_runs_a_workflow_executes(registry: Spanflow) -> None:
    checkout = registry.get_workflow("checkout")
    for order_id in ("A-1", "A-2"):
        await (await checkout.create_run()).start({"order_id": order_id})

    assert await registry.run_counts() == {"checkout": {"success": 2}, "refund": {}}


@pytest.mark.parametrize(
    "status", ["pending", "suspended", "success", "failed", "canceled", "tripwire"]
)
async def test_a_run_nobody_is_executing_is_deleted(registry: Spanflow, status: RunStatus) -> None:
    await store_run(registry, "c1", status)
    await store_run(registry, "c2", "success")

    deleted = await registry.delete_run("c1")

    assert deleted is True
    assert await registry.get_run("c1") is None
    page = await registry.list_runs()
    assert [run.run_id for run in page.runs] == ["c2"]
    assert page.total == 1


@pytest.mark.parametrize("status", ["running", "waiting"])
async def test_a_run_being_executed_is_not_deleted_unless_forced(
    registry: Spanflow, status: RunStatus
) -> None:
    await store_run(registry, "c1", status)

    with pytest.raises(
        RunStateError,
        match=rf"cannot delete run 'c1' of workflow 'checkout': its status is '{status}', so "
        r"a process \(this one or another\) is executing it; cancel it first, or pass "
        "force=True if that process is gone",
    ):
        await registry.delete_run("c1")

    stored = await registry.get_run("c1")
    assert stored is not None
    assert stored.status == status


async def test_a_queued_run_is_not_deleted_while_it_waits_for_a_worker(registry: Spanflow) -> None:
    await store_run(registry, "c1", "queued")

    with pytest.raises(
        RunStateError,
        match=r"cannot delete run 'c1' of workflow 'checkout': its status is 'queued', so it "
        "waits in the queue for a worker; cancel it first",
    ):
        await registry.delete_run("c1")

    stored = await registry.get_run("c1")
    assert stored is not None
    assert stored.status == "queued"


async def test_force_deletes_a_run_left_running(registry: Spanflow) -> None:
    await store_run(registry, "c1", "running")

    assert await registry.delete_run("c1", force=True) is True
    assert await registry.get_run("c1") is None


async def test_deleting_an_unknown_run_is_false(registry: Spanflow) -> None:
    assert await registry.delete_run("ghost") is False
    assert await registry.delete_run("ghost", force=True) is False


async def test_a_workflow_id_restricts_the_delete_to_that_workflows_run(
    registry: Spanflow,
) -> None:
    await store_run(registry, "c1", "success")

    refused = await registry.delete_run("c1", workflow_id="refund")
    kept = await registry.get_run("c1")
    deleted = await registry.delete_run("c1", workflow_id="checkout")

    assert refused is False
    assert kept is not None
    assert deleted is True
    assert await registry.get_run("c1") is None


async def test_a_workflow_id_that_is_not_registered_is_refused(registry: Spanflow) -> None:
    await store_run(registry, "r1", "success", workflow_id="retired")

    with pytest.raises(NotRegisteredError, match="no workflow 'retired' is registered"):
        await registry.delete_run("r1", workflow_id="retired")

    assert await registry.get_run("r1") is not None
    assert await registry.delete_run("r1") is True  # without workflow_id: any stored run


async def test_list_runs_bounds_the_creation_date(registry: Spanflow) -> None:
    for run_id, created_at in [("c1", 100.0), ("c2", 200.0), ("c3", 300.0)]:
        await store_run(registry, run_id, "success", created_at=created_at)

    page = await registry.list_runs(
        from_date=datetime.fromtimestamp(200, UTC), to_date=datetime(1970, 1, 1, 0, 5)
    )

    assert [run.run_id for run in page.runs] == ["c3", "c2"]
    assert page.total == 2


class StartsOnRead(MemoryStorage):
    """A store where another process starts a run just after the registry reads it."""

    async def get_run(self, run_id: str) -> StoredRun | None:
        stored = await super().get_run(run_id)
        await self.claim_run(run_id, from_status=["pending"], to_status="running")
        return stored


async def test_a_pending_run_that_starts_while_it_is_being_deleted_is_kept() -> None:
    registry = Spanflow(workflows=[workflow("checkout")], storage=StartsOnRead())
    await store_run(registry, "c1", "pending")

    with pytest.raises(RunStateError, match="cannot delete run 'c1': its status is 'running'"):
        await registry.delete_run("c1")

    assert (await registry.list_runs(status="running")).total == 1
