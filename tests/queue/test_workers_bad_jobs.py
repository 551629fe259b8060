"""Jobs no worker can execute: a workflow no worker serves, a payload that does not decode, a
job without a run id, a job whose run was deleted. The run (when there is one) is stored
``failed`` with an error saying why, its caller is told, the job ends ``failed`` and is not
retried, and the worker goes on serving.

Raw jobs are put on the queue with procrastinate itself, as a foreign or broken producer would.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from procrastinate import App, PsycopgConnector
from procrastinate.types import JSONValue

from spanflow import Spanflow
from spanflow.errors import RunNotFoundError
from spanflow.queue import DEFAULT_QUEUE, TASK_NAME
from tests.queue.conftest import (
    WITHIN,
    WorkerPool,
    eventually,
    procrastinate_jobs,
    step_log,
    still_serving,
    stored_as,
)

pytestmark = pytest.mark.postgres


async def test_a_job_for_a_workflow_no_worker_knows_fails_its_run(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    (worker,) = await workers.start(1)
    run = await registry.get_workflow("ghost").create_run()

    async with asyncio.timeout(WITHIN):
        result = await run.start({})

    assert result.status == "failed"
    assert "ghost" in str(result.error)
    stored = await registry.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert await step_log(queue_url, run.run_id) == []
    assert worker.alive
    await still_serving(registry)


async def test_a_job_whose_payload_does_not_decode_fails_its_run(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    run = await registry.get_workflow("chain").create_run()
    started = asyncio.create_task(run.start({}))
    async with asyncio.timeout(WITHIN):
        await stored_as(registry, run.run_id, "queued")
        # The run's own job is replaced by one with an op no worker knows.
        await drop_queued_jobs(queue_url, run.run_id)
        bad = await defer_raw(
            queue_url, op="explode", workflow_id="chain", run_id=run.run_id, carrier={}
        )
        (worker,) = await workers.start(1)
        result = await started
        job_status = await job_ended(queue_url, bad)

    assert result.status == "failed"
    assert "explode" in str(result.error), str(result.error)
    stored = await registry.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert job_status == "failed"  # and not retried
    assert await step_log(queue_url, run.run_id) == []
    assert worker.alive
    await still_serving(registry)


async def test_a_job_without_a_run_id_fails_and_the_worker_goes_on(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    (worker,) = await workers.start(1)
    async with asyncio.timeout(WITHIN):
        bad = await defer_raw(queue_url, nonsense=1)
        assert await job_ended(queue_url, bad) == "failed"
    assert worker.alive
    await still_serving(registry)


async def test_a_job_for_a_deleted_run_does_nothing_and_the_worker_goes_on(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    run = await registry.get_workflow("chain").create_run()
    started = asyncio.create_task(run.start({}))
    async with asyncio.timeout(WITHIN):
        await stored_as(registry, run.run_id, "queued")
        assert await registry.storage.delete_run(run.run_id)  # as a cleanup job might
        job_id = await queued_job(queue_url, run.run_id)
        (worker,) = await workers.start(1)
        status = await job_ended(queue_url, job_id)
        with pytest.raises(RunNotFoundError, match=run.run_id):
            await started  # the caller following the run is told, not left waiting

    assert status in ("succeeded", "failed")
    assert await registry.storage.get_run(run.run_id) is None  # not brought back
    assert await step_log(queue_url, run.run_id) == []
    assert worker.alive
    await still_serving(registry)


async def defer_raw(url: str, **kwargs: JSONValue) -> int:
    """Put a job on the spanflow queue as procrastinate sees it, whatever its arguments."""
    app = App(connector=PsycopgConnector(conninfo=url))
    async with app.open_async():
        job_id: int = await app.configure_task(TASK_NAME, queue=DEFAULT_QUEUE).defer_async(**kwargs)
    return job_id


async def queued_job(url: str, run_id: str) -> int:
    """Wait for the run's job on the queue (the run is stored ``queued`` just before its job is
    deferred); its id."""

    async def probe() -> int | None:
        jobs = await procrastinate_jobs(url, run_id)
        assert len(jobs) <= 1, f"run {run_id} has several jobs: {jobs}"
        return jobs[0][0] if jobs and jobs[0][1] == "todo" else None

    return await eventually(probe, f"the job of run {run_id} on the queue")


async def drop_queued_jobs(url: str, run_id: str) -> None:
    """Delete the run's job before any worker took it (procrastinate's cancel-and-delete)."""
    job_id = await queued_job(url, run_id)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("SELECT procrastinate_cancel_job_v1(%s, false, true)", (job_id,))


async def job_ended(url: str, job_id: int) -> str:
    """Wait until the queue's job `job_id` ended; its final status (``succeeded`` once it is
    deleted, as the queue executor does with successful jobs)."""

    async def probe() -> str | None:
        async with await psycopg.AsyncConnection.connect(url) as connection:
            cursor = await connection.execute(
                "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)
            )
            row = await cursor.fetchone()
        if row is None:
            return "succeeded"  # successful jobs are deleted as they end
        status: str = row[0]
        return status if status not in ("todo", "doing") else None

    return await eventually(probe, f"job {job_id} to end")
