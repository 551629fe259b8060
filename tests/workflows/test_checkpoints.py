"""When snapshots are written: after every entry to a durable store, only at the moments that
matter to a store that dies with the process (created, started, suspended, finished).

``create_run`` inserts the run as pending; starting it claims it (a status change only) and then
stores the running snapshot, with the run's input and trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spanflow import StepContext, Workflow, create_step, create_workflow
from spanflow.storage import MemoryStorage, StoredRun


class CountingMemory(MemoryStorage):
    """A memory store that records each write (and says whether it is durable)."""

    def __init__(self, durable: bool) -> None:
        super().__init__()
        self.durable = durable
        self.writes: list[str] = []

    async def insert_run(self, run: StoredRun) -> None:
        self.writes.append(f"insert {run.status}")
        await super().insert_run(run)

    async def save_run(
        self, run: StoredRun, *, events: Sequence[Any] = (), if_owner: str | None = None
    ) -> None:
        self.writes.append(f"save {run.status}")
        await super().save_run(run, events=events, if_owner=if_owner)


async def add_one(ctx: StepContext[int]) -> int:
    return ctx.input_data + 1


async def approve(ctx: StepContext[int]) -> int:
    if ctx.resume_data is None:
        ctx.suspend({"value": ctx.input_data})
    return ctx.input_data + int(ctx.resume_data)


def three_steps(storage: MemoryStorage) -> Workflow:
    return (
        create_workflow(id="three", storage=storage)
        .then(create_step(id="a", execute=add_one))
        .then(create_step(id="b", execute=add_one))
        .then(create_step(id="approve", execute=approve))
        .commit()
    )


async def test_a_durable_store_gets_a_snapshot_after_every_entry() -> None:
    store = CountingMemory(durable=True)
    run = await three_steps(store).create_run()

    await run.start(1)
    await run.resume(10)

    assert store.writes == [
        "insert pending",  # create_run
        "save running",  # started
        "save running",  # after a
        "save running",  # after b
        "save suspended",
        "save running",  # after the resumed approve
        "save success",
    ]


async def test_a_store_that_dies_with_the_process_gets_only_the_moments_that_matter() -> None:
    store = CountingMemory(durable=False)
    run = await three_steps(store).create_run()

    suspended = await run.start(1)
    stored = await store.get_run(run.run_id)
    done = await run.resume(10)

    assert store.writes == ["insert pending", "save running", "save suspended", "save success"]
    assert stored is not None
    assert stored.snapshot["frame"]["steps"]["b"]["output"] == 3  # all there when it matters
    assert (suspended.status, done.status, done.result) == ("suspended", "success", 13)
