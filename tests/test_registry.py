"""Which run store a workflow registered in `Spanflow` uses.

Every registered workflow keeps its runs in the registry's store. A workflow without a store of
its own gets it (running the workflow or reading ``workflow.storage`` first gives it none); a
registry given no store adopts the first workflow's own; any other own store is refused rather
than one silently replacing the other or keeping runs the registry cannot list.
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


def test_a_workflow_added_later_with_a_store_other_than_the_registrys_is_refused() -> None:
    registry = Spanflow(workflows=[checkout()])  # ./spanflow.db: the default store
    own = MemoryStorage()
    later = create_workflow(id="refund", storage=own).then(accept).commit()

    with pytest.raises(StorageConflictError, match="workflow 'refund'"):
        registry.add_workflow(later)

    assert later.storage is own
    assert "refund" not in registry.workflows


def test_a_workflow_run_before_registration_gets_the_registrys_store(tmp_path: Path) -> None:
    workflow = checkout()
    workflow.create_run_sync().start_sync({"order_id": "A-1"})  # in the private memory store
    store = SqliteStorage(tmp_path / "runs.db")

    Spanflow(workflows=[workflow], storage=store)

    assert workflow.storage is store
    assert workflow.own_storage is None


def test_reading_the_store_before_registration_leaves_the_registry_its_default(
    tmp_path: Path,
) -> None:
    workflow = checkout()
    private = workflow.storage

    registry = Spanflow(workflows=[workflow])

    assert isinstance(private, MemoryStorage)
    assert isinstance(registry.storage, SqliteStorage)
    assert Path(registry.storage.path).resolve() == tmp_path.resolve() / "spanflow.db"
    assert workflow.storage is registry.storage


def test_the_same_workflow_registered_in_two_registries_uses_the_latest_store() -> None:
    workflow = checkout()
    first, second = MemoryStorage(), MemoryStorage()

    Spanflow(workflows=[workflow], storage=first)
    Spanflow(workflows=[workflow], storage=second)

    assert workflow.storage is second
    assert workflow.own_storage is None


def test_a_second_workflow_with_a_different_store_is_refused_naming_both(
    tmp_path: Path,
) -> None:
    adopted = SqliteStorage(tmp_path / "runs.db")
    refund = create_workflow(id="refund", storage=MemoryStorage()).then(accept).commit()

    with pytest.raises(StorageConflictError) as raised:
        Spanflow(workflows=[checkout(storage=adopted), refund])

    message = str(raised.value)
    assert "workflow 'refund'" in message
    assert "MemoryStorage(<0 runs>)" in message
    assert f"SqliteStorage({str(tmp_path / 'runs.db')!r})" in message
    assert "workflow 'checkout'" in message  # where the registry's store came from
    assert "pass the same store" in message


def test_a_workflows_own_store_is_the_one_set_by_its_user() -> None:
    own = MemoryStorage()
    bare, given, assigned = checkout(), checkout(storage=own), checkout()
    assigned.storage = own
    bare.use_shared_storage(MemoryStorage())

    assert bare.own_storage is None
    assert given.own_storage is own
    assert assigned.own_storage is own


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
