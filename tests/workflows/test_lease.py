"""The owner and lease of an executing run: renewed while it runs, refusing a second executor
while live, and letting exactly one restart take over a run whose executor died (issue 13)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from spanflow import Run
from spanflow.errors import RunClaimError
from spanflow.storage import Storage
from tests.workflows.support import Held, held_workflow

LEASE = 1.0


def leased(storage: Storage) -> Held:
    held = held_workflow(storage)
    held.workflow.lease_seconds = LEASE
    return held


async def die(run: Run) -> None:
    """What a process that dies mid-run leaves: the run stored ``running``, nobody renewing."""
    task = run._task
    assert task is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_an_executing_run_is_owned_and_its_lease_renewed(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    held = leased(storage)
    run = await held.workflow.create_run()
    task = asyncio.create_task(run.start(None))
    await held.started.wait()

    first = await other.get_run(run.run_id)
    await asyncio.sleep(LEASE * 1.2)
    later = await other.get_run(run.run_id)
    held.release.set()
    await task
    ended = await other.get_run(run.run_id)

    assert first is not None
    assert later is not None
    assert ended is not None
    assert first.owner is not None
    assert first.owner.count(":") == 2  # host:pid:execution
    assert later.owner == first.owner
    assert later.lease_until > first.lease_until
    assert later.lease_until > time.time()
    assert (ended.status, ended.owner, ended.lease_until) == ("success", None, 0.0)


async def test_a_restart_while_the_executor_is_alive_is_refused(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    held, elsewhere = leased(storage), leased(other)
    run = await held.workflow.create_run()
    task = asyncio.create_task(run.start(None))
    await held.started.wait()
    await asyncio.sleep(LEASE * 1.2)  # past the first lease: only its renewal keeps it live

    second = await elsewhere.workflow.create_run(run_id=run.run_id)
    with pytest.raises(RunClaimError, match=r"holds its lease until"):
        await second.restart()

    held.release.set()
    assert (await task).status == "success"


async def test_two_restarts_of_a_run_whose_executor_died_exactly_one_wins(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    held = leased(storage)
    run = await held.workflow.create_run()
    run_task = asyncio.create_task(run.start(None))
    await held.started.wait()
    await die(run)
    assert run_task.cancelled()
    assert (await other.get_run(run.run_id)).status == "running"  # type: ignore[union-attr]

    first = leased(storage)
    second = leased(other)
    first.release.set()
    second.release.set()
    with pytest.raises(RunClaimError, match="holds its lease"):
        await (await first.workflow.create_run(run_id=run.run_id)).restart()
    await asyncio.sleep(LEASE * 1.1)  # the dead executor's lease runs out

    outcomes = await asyncio.gather(
        (await first.workflow.create_run(run_id=run.run_id)).restart(),
        (await second.workflow.create_run(run_id=run.run_id)).restart(),
        return_exceptions=True,
    )

    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert [result.status for result in won] == ["success"]
    assert len(lost) == 1
    assert isinstance(lost[0], RunClaimError)
    assert [first.started.is_set(), second.started.is_set()].count(True) == 1  # ran once
