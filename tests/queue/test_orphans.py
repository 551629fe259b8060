"""A run left ``queued`` with no job in the queue (its caller died between storing the run and
deferring the job, or the worker that took the job died before claiming the run) is handed to
the queue again by a worker's recovery, and ends like any other run."""

from __future__ import annotations

import asyncio

import pytest

from spanflow import Spanflow
from spanflow.queue import DEFAULT_QUEUE
from spanflow.queue._app import build_app
from spanflow.queue.executor import _has_live_job
from tests.queue.conftest import (
    WITHIN,
    WorkerPool,
    eventually,
    procrastinate_jobs,
    stored_as,
)
from tests.queue.test_workers_bad_jobs import drop_queued_jobs

pytestmark = pytest.mark.postgres


async def test_a_queued_run_whose_job_was_lost_is_requeued_and_finishes(
    registry: Spanflow, workers: WorkerPool, queue_url: str
) -> None:
    run = await registry.get_workflow("chain").create_run()
    started = asyncio.create_task(run.start({}))
    async with asyncio.timeout(WITHIN):
        await stored_as(registry, run.run_id, "queued")
        await drop_queued_jobs(queue_url, run.run_id)  # the job is lost
        assert [status for _, status, _ in await procrastinate_jobs(queue_url, run.run_id)] == []

        await workers.start(1)
        result = await started

    assert result.status == "success"
    assert result.result is not None
    stored = await registry.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "success"


async def test_the_queue_tells_a_waiting_job_from_a_lost_one(
    registry: Spanflow, queue_url: str
) -> None:
    run = await registry.get_workflow("chain").create_run()
    started = asyncio.create_task(run.start({}))
    queue = build_app(queue_url, queue=DEFAULT_QUEUE, max_size=2)
    await queue.open_async()
    try:
        async with asyncio.timeout(WITHIN):
            await stored_as(registry, run.run_id, "queued")
            await eventually(lambda: procrastinate_jobs(queue_url, run.run_id), "its job")
        assert await _has_live_job(queue, DEFAULT_QUEUE, run.run_id)  # waiting: left alone
        assert not await _has_live_job(queue, "another-queue", run.run_id)

        await drop_queued_jobs(queue_url, run.run_id)
        assert not await _has_live_job(queue, DEFAULT_QUEUE, run.run_id)
    finally:
        await queue.close_async()
        started.cancel()
        await (await registry.get_workflow("chain").create_run(run_id=run.run_id)).cancel()
