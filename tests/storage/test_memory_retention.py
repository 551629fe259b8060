"""The in-memory store keeps the most recent finished runs only, and never drops a live run."""

from __future__ import annotations

import pytest

from spanflow.storage import MemoryStorage, RunStatus, StoredRun


def run(run_id: str, status: RunStatus) -> StoredRun:
    return StoredRun(run_id, "wf", status, {"version": 1})


async def test_finished_runs_beyond_the_limit_are_dropped_oldest_first() -> None:
    store = MemoryStorage(max_finished_runs=2)
    for i in range(4):
        await store.save_run(run(f"r{i}", "success"))

    page = await store.list_runs(limit=10)

    assert sorted(r.run_id for r in page.runs) == ["r2", "r3"]


async def test_live_runs_are_never_dropped_and_finishing_counts_as_newest() -> None:
    store = MemoryStorage(max_finished_runs=1)
    await store.save_run(run("waiting-for-a-human", "suspended"))
    await store.save_run(run("busy", "running"))
    await store.save_run(run("done-early", "success"))
    await store.save_run(run("busy", "failed"))  # finishes after done-early

    kept = {r.run_id for r in (await store.list_runs(limit=10)).runs}

    assert kept == {"waiting-for-a-human", "busy"}


async def test_pending_runs_are_live_and_never_dropped() -> None:
    store = MemoryStorage(max_finished_runs=0)
    await store.insert_run(run("created", "pending"))
    await store.insert_run(run("started", "pending"))
    await store.claim_run("started", from_status=["pending"], to_status="running")
    await store.save_run(run("done", "success"))

    kept = await store.count_runs()

    assert kept == {"wf": {"pending": 1, "running": 1}}


async def test_a_claim_that_finishes_a_run_counts_too() -> None:
    store = MemoryStorage(max_finished_runs=0)
    await store.save_run(run("r", "suspended"))

    await store.claim_run("r", from_status=["suspended"], to_status="canceled")

    assert await store.get_run("r") is None


async def test_no_limit_keeps_every_run() -> None:
    store = MemoryStorage(max_finished_runs=None)
    for i in range(50):
        await store.save_run(run(f"r{i}", "success"))
    assert (await store.list_runs(limit=100)).total == 50


def test_a_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_finished_runs"):
        MemoryStorage(max_finished_runs=-1)
