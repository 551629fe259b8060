"""Runs started in this process execute on worker subprocesses (``spanflow worker``), and the
caller sees them as if they ran here: results, suspensions, resumes, streams.

Every step's output names the pid of the process that ran it, so a result says which worker
executed it; the step log (`tests.queue.app`) says how often each step ran. The tests here
share two workers (`shared_workers`); those that stop or kill workers are in
``test_workers_handover.py``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from spanflow import Spanflow, WorkflowEvent, WorkflowResult
from spanflow.errors import RunClaimError, RunStateError
from spanflow.storage import MemoryStorage
from tests.queue.app import chain_workflow
from tests.queue.conftest import WITHIN, WorkerPool, started_steps, step_log

pytestmark = pytest.mark.postgres


async def test_runs_spread_over_the_workers_and_each_run_stays_on_one(
    registry: Spanflow, shared_workers: WorkerPool
) -> None:
    pool = {worker.pid for worker in shared_workers.started}
    chain = registry.get_workflow("chain")
    runs = [await chain.create_run() for _ in range(12)]

    async with asyncio.timeout(WITHIN):
        results = await asyncio.gather(*(run.start({"pause": 0.15}) for run in runs))

    assert [result.status for result in results] == ["success"] * len(runs)
    by_run = [result.result["pids"] for result in results]
    assert all(len(pids) == 3 and len(set(pids)) == 1 for pids in by_run)  # one worker per run
    used = {pids[0] for pids in by_run}
    assert used <= pool
    assert len(used) == 2, f"every run went to one worker: {Counter(p[0] for p in by_run)}"


async def test_the_callers_stream_sees_every_event_once_in_order(
    registry: Spanflow, shared_workers: WorkerPool, queue_url: str
) -> None:
    chain = registry.get_workflow("chain")
    runs = [await chain.create_run() for _ in range(4)]

    async def streamed(run: Any) -> tuple[list[WorkflowEvent], WorkflowResult]:
        out = run.stream({"pause": 0.05})
        events = [event async for event in out]
        return events, await out.result

    async with asyncio.timeout(WITHIN):
        outcomes = await asyncio.gather(*(streamed(run) for run in runs))
        expected = await in_process_kinds(queue_url)

    for run, (events, result) in zip(runs, outcomes, strict=True):
        assert result.status == "success"
        assert kinds(events) == expected  # what the same run streams in process
        assert kinds(events)[0] == ("workflow-start", None)
        assert kinds(events)[-1] == ("workflow-finish", None)
        assert {e.run_id for e in events} == {run.run_id}
        logged = await registry.storage.read_events(run.run_id)
        assert [entry.seq for entry in logged] == list(range(len(logged)))
        assert [entry.event["type"] for entry in logged] == [event.type for event in events]


async def in_process_kinds(url: str) -> list[tuple[str, str | None]]:
    """The (type, step) sequence of the chain streamed in this process, the local way."""
    local = Spanflow(workflows=[chain_workflow("chain", url, 0.0)], storage=MemoryStorage())
    run = await local.get_workflow("chain").create_run()
    out = run.stream({"pause": 0.0})
    events = [event async for event in out]
    assert (await out.result).status == "success"
    await local.close()
    return kinds(events)


def kinds(events: list[WorkflowEvent]) -> list[tuple[str, str | None]]:
    """Each event's type and step id (None for run-level events)."""
    return [(event.type, getattr(event.payload, "id", None)) for event in events]


async def test_of_two_concurrent_resumers_exactly_one_wins(
    registry: Spanflow, shared_workers: WorkerPool, queue_url: str
) -> None:
    approval = registry.get_workflow("approval")
    run = await approval.create_run()

    async with asyncio.timeout(WITHIN):
        assert (await run.start({"order": 8})).status == "suspended"
        here = await approval.create_run(run_id=run.run_id)
        there = await approval.create_run(run_id=run.run_id)
        outcomes = await asyncio.gather(
            here.resume({"by": "here"}), there.resume({"by": "there"}), return_exceptions=True
        )

    won = [o for o in outcomes if isinstance(o, WorkflowResult)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1, f"outcomes: {outcomes!r}"
    assert len(lost) == 1
    assert isinstance(lost[0], RunClaimError | RunStateError), repr(lost[0])
    assert won[0].status == "success"
    winner = "here" if isinstance(outcomes[0], WorkflowResult) else "there"
    assert won[0].result["answer"] == {"by": winner}
    assert started_steps(await step_log(queue_url, run.run_id)) == ["ask", "ask", "after"]
