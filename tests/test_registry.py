"""Which run store a workflow registered in `Spanflow` uses.

A workflow without a store gets the registry's; one with its own keeps it; its own store and a
different one given to the registry are refused rather than one silently replacing the other.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from spanflow import (
    Spanflow,
    SpanflowError,
    StepContext,
    StorageConflictError,
    Workflow,
    create_workflow,
    step,
)
from spanflow.storage import MemoryStorage, SqliteStorage, Storage


class Order(BaseModel):
    order_id: str


@step(input_schema=Order, output_schema=Order)
async def accept(ctx: StepContext[Order]) -> Order:
    return ctx.input_data


def checkout(storage: Storage | None = None) -> Workflow:
    return (
        create_workflow(id="checkout", input_schema=Order, output_schema=Order, storage=storage)
        .then(accept)
        .commit()
    )


@pytest.fixture(autouse=True)
def no_default_store_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A registry opening its default store would create ``spanflow.db``: keep it in tmp."""
    monkeypatch.delenv("SPANFLOW_STORAGE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def test_a_workflow_without_a_store_gets_the_registrys() -> None:
    store = MemoryStorage()
    workflow = checkout()

    Spanflow(workflows=[workflow], storage=store)

    assert workflow.storage is store


def test_without_a_store_anywhere_the_workflow_gets_the_default_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPANFLOW_STORAGE_URL", "memory://")
    workflow = checkout()

    registry = Spanflow(workflows=[workflow])

    assert isinstance(registry.storage, MemoryStorage)
    assert workflow.storage is registry.storage


def test_a_store_assigned_to_the_workflow_is_kept_when_the_registry_is_given_none(
    tmp_path: Path,
) -> None:
    workflow = checkout()
    workflow.storage = SqliteStorage(tmp_path / "runs.db")

    registry = Spanflow(workflows=[workflow])

    assert isinstance(workflow.storage, SqliteStorage)
    assert workflow.storage.path == str(tmp_path / "runs.db")
    assert registry.storage is workflow.storage  # adopted: list_runs sees the workflow's runs
    assert not (tmp_path / "spanflow.db").exists()


def test_a_store_passed_to_create_workflow_is_kept_when_the_registry_is_given_none() -> None:
    own = MemoryStorage()
    workflow = checkout(storage=own)

    Spanflow(workflows=[workflow])

    assert workflow.storage is own


def test_a_workflow_added_later_keeps_its_store_beside_the_registrys() -> None:
    registry = Spanflow(workflows=[checkout()])
    own = MemoryStorage()
    later = create_workflow(id="refund", storage=own).then(accept).commit()

    registry.add_workflow(later)

    assert later.storage is own
    assert registry.storage is not own


def test_the_same_store_on_the_workflow_and_the_registry_is_no_conflict() -> None:
    store = MemoryStorage()
    workflow = checkout(storage=store)

    Spanflow(workflows=[workflow], storage=store)

    assert workflow.storage is store


def test_different_stores_on_the_workflow_and_the_registry_are_refused_naming_both(
    tmp_path: Path,
) -> None:
    workflow = checkout()
    workflow.storage = SqliteStorage(tmp_path / "runs.db")

    with pytest.raises(StorageConflictError) as raised:
        Spanflow(workflows=[workflow], storage=MemoryStorage())

    message = str(raised.value)
    assert "workflow 'checkout'" in message
    assert f"SqliteStorage({str(tmp_path / 'runs.db')!r})" in message
    assert "MemoryStorage(<0 runs>)" in message
    assert isinstance(raised.value, SpanflowError)
    assert isinstance(workflow.storage, SqliteStorage)  # left as the user set it


async def test_the_registry_lists_the_runs_kept_in_the_workflows_own_store(
    tmp_path: Path,
) -> None:
    workflow = checkout()
    workflow.storage = SqliteStorage(tmp_path / "runs.db")
    registry = Spanflow(workflows=[workflow])
    run = await workflow.create_run()

    await run.start({"order_id": "A-17"})

    page = await registry.list_runs()
    assert [stored.run_id for stored in page.runs] == [run.run_id]
    await registry.close()
