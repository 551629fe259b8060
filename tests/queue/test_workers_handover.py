"""A run changes hands between workers: suspended on one and resumed on another, its worker
killed mid-step or stopped with SIGTERM, restarted by two callers at once, canceled from the
caller's process. The run still ends as it should, every step completed once.

A killed worker (``kill -9``) lets go of nothing: its run stays ``running`` under a lease that
runs out within `LEASE_SECONDS`, and another worker's recovery (every `RECOVER_EVERY` s)
restarts it from its last snapshot, so only the step that was running runs again.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from spanflow import Spanflow
from spanflow.errors import RunClaimError, RunStateError
from spanflow.storage import StoredRun
from tests.queue.app import LEASE_SECONDS, SLOW_PAUSE
from tests.queue.conftest import (
    WITHIN,
    WorkerPool,
    eventually,
    started_steps,
    step_log,
    step_reached,
    still_serving,
    stored_as,
)

pytestmark = pytest.mark.postgres


async def test_a_run_suspended_on_one_worker_resumes_on_another(
    registry: Spanflow, workers: WorkerPool
) -> None:
    approval = registry.get_workflow("approval")
    (first,) = await workers.start(1)
    run = await approval.create_run()

    async with asyncio.timeout(WITHIN):
        suspended = await run.start({"order": 7})
        assert await workers.stop(first) == 0
        (second,) = await workers.start(1)
        resumed = await run.resume({"approved": True})

    assert suspended.status == "suspended"
    assert suspended.suspend_payload["ask"] == {"asked_by": first.pid}
    assert resumed.status == "success"
    assert resumed.result == {
        "answer": {"approved": True},
        "resumed_by": second.pid,
        "after_by": second.pid,
    }
    stored = await registry.storage.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.owner) == ("success", None)


async def test_a_run_whose_worker_is_killed_mid_step_is_finished_by_another(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    await workers.start(2)
    run = await registry.get_workflow("slow").create_run()
    started = asyncio.create_task(run.start({}))

    async with asyncio.timeout(WITHIN):
        victim = workers.by_pid((await step_reached(queue_url, run.run_id, "two")).pid)
        victim.kill()
        result = await started

    (survivor,) = [w for w in workers.started if w is not victim]
    assert survivor.alive
    assert result.status == "success"
    # step one's output was stored before the kill; two ran again, on the survivor
    assert result.result["pids"] == [victim.pid, survivor.pid, survivor.pid]
    rows = await step_log(queue_url, run.run_id)
    assert Counter(started_steps(rows)) == {"one": 1, "two": 2, "three": 1}
    assert Counter(r.step for r in rows if r.phase == "ended") == {"one": 1, "two": 1, "three": 1}


async def test_sigterm_lets_the_running_run_finish_and_takes_no_more_jobs(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    slow = registry.get_workflow("slow")
    (first,) = await workers.start(1)
    running = await slow.create_run()
    started = asyncio.create_task(running.start({}))

    async with asyncio.timeout(WITHIN):
        await step_reached(queue_url, running.run_id, "one")
        stopping = asyncio.create_task(workers.stop(first))
        await asyncio.sleep(0.2)  # the signal is in: the worker takes no new job
        later = await slow.create_run()
        queued = asyncio.create_task(later.start({"pause": 0.05}))
        finished = await started  # within the grace period, on the stopping worker
        assert await stopping == 0
        assert not queued.done()
        (second,) = await workers.start(1)
        taken_over = await queued

    assert finished.status == "success"
    assert finished.result["pids"] == [first.pid] * 3
    assert Counter(started_steps(await step_log(queue_url, running.run_id))) == {
        "one": 1,
        "two": 1,
        "three": 1,
    }
    assert taken_over.result["pids"] == [second.pid] * 3


async def test_of_two_concurrent_restarts_of_a_stalled_run_exactly_one_wins(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    slow = registry.get_workflow("slow")
    (only,) = await workers.start(1)
    run = await slow.create_run()
    started = asyncio.create_task(run.start({}))

    async with asyncio.timeout(WITHIN):
        await step_reached(queue_url, run.run_id, "one")
        only.kill()  # no worker left: nobody's recovery competes with the two restarts
        await lease_expired(registry, run.run_id)
        here = await slow.create_run(run_id=run.run_id)
        there = await slow.create_run(run_id=run.run_id)
        restarts = [asyncio.create_task(here.restart()), asyncio.create_task(there.restart())]
        done, _ = await asyncio.wait(restarts, return_when=asyncio.FIRST_COMPLETED)
        (refused,) = done
        assert isinstance(refused.exception(), RunClaimError | RunStateError), repr(
            refused.exception() if not refused.cancelled() else "cancelled"
        )
        await workers.start(1)  # executes the winner's restart job
        (winner,) = [task for task in restarts if task is not refused]
        result = await winner
        first_caller = await started  # the starter, following the run's log, sees it end too

    assert result.status == "success"
    assert first_caller.status == "success"
    assert Counter(started_steps(await step_log(queue_url, run.run_id))) == {
        "one": 2,
        "two": 1,
        "three": 1,
    }


async def lease_expired(registry: Spanflow, run_id: str) -> StoredRun:
    """Wait until the run is stored executing under a lease that ran out."""

    async def probe() -> StoredRun | None:
        stored = await registry.storage.get_run(run_id)
        assert stored is not None
        if stored.status in ("running", "waiting") and stored.lease_until <= time.time():
            return stored
        return None

    return await eventually(
        probe, f"the lease of run {run_id} to run out", within=LEASE_SECONDS * 5
    )


async def test_cancel_from_the_caller_stops_the_remote_run(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    (worker,) = await workers.start(1)
    run = await registry.get_workflow("slow").create_run()
    started = asyncio.create_task(run.start({}))

    async with asyncio.timeout(WITHIN):
        await step_reached(queue_url, run.run_id, "one")
        await run.cancel()
        stored = await stored_as(registry, run.run_id, "canceled", "success", "failed")
        result = await started
        await asyncio.sleep(SLOW_PAUSE * 1.5)  # had it gone on, step two would have started

    assert stored.status == "canceled"
    assert result.status == "canceled"
    assert "two" not in started_steps(await step_log(queue_url, run.run_id))
    assert "three" not in started_steps(await step_log(queue_url, run.run_id))
    assert stored.owner is None
    assert worker.alive
    await still_serving(registry)
