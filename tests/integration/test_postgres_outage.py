"""PostgreSQL that goes away for a few seconds and comes back: the runs writing to it wait and
go on, and neither fail nor stay ``running`` (issue 13). Each test has a cluster of its own,
since it stops the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from spanflow import StepContext, create_step, create_workflow
from spanflow.errors import StorageError
from spanflow.storage import PostgresStorage
from tests.support.postgres import ThrowawayPostgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster(postgres_cluster: ThrowawayPostgres) -> Iterator[ThrowawayPostgres]:
    """A cluster this test may stop (`postgres_cluster` only proves the binaries are here)."""
    with ThrowawayPostgres() as own:
        yield own


def outage_workflow(storage: PostgresStorage, outage: Any) -> Any:
    async def first(ctx: StepContext[int]) -> int:
        return ctx.input_data + 1

    async def during(ctx: StepContext[int]) -> int:
        await outage()  # the server goes away while this step runs, and comes back later
        return ctx.input_data * 10

    workflow = create_workflow(id="outage", storage=storage)
    workflow.then(create_step(id="first", execute=first))
    workflow.then(create_step(id="during", execute=during))
    return workflow.then(create_step(id="last", execute=lambda ctx: ctx.input_data + 1)).commit()


async def test_a_run_rides_out_an_outage_shorter_than_retry_for(
    cluster: ThrowawayPostgres,
) -> None:
    storage = PostgresStorage(cluster.dsn(), retry_for=30)
    back: list[float] = []

    async def outage() -> None:
        await asyncio.to_thread(cluster.pause)

        async def come_back() -> None:
            await asyncio.sleep(2)
            await asyncio.to_thread(cluster.resume)
            back.append(time.monotonic())

        asyncio.get_running_loop().create_task(come_back())

    workflow = outage_workflow(storage, outage)
    run = await workflow.create_run()
    try:
        result = await run.start(1)
        ended = time.monotonic()
        stored = await storage.get_run(run.run_id)
    finally:
        await storage.close()

    assert result.status == "success"
    assert result.result == 21
    assert back
    assert ended >= back[0]  # the checkpoint after "during" waited for the server
    assert stored is not None
    assert stored.status == "success"


async def test_an_outage_longer_than_retry_for_fails_the_call_clearly(
    cluster: ThrowawayPostgres,
) -> None:
    storage = PostgresStorage(cluster.dsn(), retry_for=1)
    await storage.open()
    await asyncio.to_thread(cluster.pause)
    started = time.monotonic()
    try:
        with pytest.raises(StorageError, match="PostgreSQL"):
            await storage.get_run("run-1")
        waited = time.monotonic() - started
    finally:
        await asyncio.to_thread(cluster.resume)
        await storage.close()

    assert 1 <= waited < 15
