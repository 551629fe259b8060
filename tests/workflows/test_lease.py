"""The owner and lease of an executing run: renewed while it runs, refusing a second executor
while live, and letting exactly one restart take over a run whose executor died (issue 13)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import pytest

from spanflow import Run
from spanflow.errors import RunClaimError, StorageError
from spanflow.storage import MemoryStorage, Storage, StoredRun
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
    await die(run)  # its lease is let go on the way out, so others need not wait for it
    assert run_task.cancelled()
    left = await other.get_run(run.run_id)
    assert left is not None
    assert left.status == "running"
    assert left.lease_until <= time.time()

    first, second = leased(storage), leased(other)
    restarts = [
        asyncio.create_task((await held.workflow.create_run(run_id=run.run_id)).restart())
        for held in (first, second)
    ]
    # The loser is refused while the winner still executes (so it meets the winner's lease).
    done, _ = await asyncio.wait(restarts, return_when=asyncio.FIRST_COMPLETED)
    first.release.set()
    second.release.set()
    outcomes = await asyncio.gather(*restarts, return_exceptions=True)

    (refused,) = done
    assert isinstance(refused.exception(), RunClaimError)
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    assert [result.status for result in won] == ["success"]
    assert [first.started.is_set(), second.started.is_set()].count(True) == 1  # ran once


async def test_an_executor_whose_lease_passed_to_another_cannot_overwrite_its_run(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    stalled, taking_over = held_workflow(storage), held_workflow(other)
    stalled.workflow.lease_seconds = taking_over.workflow.lease_seconds = 30
    run = await stalled.workflow.create_run()
    stalled_task = asyncio.create_task(run.start(None))
    await stalled.started.wait()
    owner = (await other.get_run(run.run_id)).owner  # type: ignore[union-attr]
    assert owner is not None
    await other.renew_lease(run.run_id, owner=owner, lease=0)  # as if it stalled past its lease
    again = await taking_over.workflow.create_run(run_id=run.run_id)
    taking_over_task = asyncio.create_task(again.restart())
    await taking_over.started.wait()

    stalled.release.set()  # the stalled executor wakes up and tries to store its step
    with pytest.raises(RunClaimError, match="no longer owned by"):
        await stalled_task
    mid = await other.get_run(run.run_id)
    taking_over.release.set()
    result = await taking_over_task

    assert mid is not None
    assert mid.status == "running"  # the new owner's, untouched by the stalled one
    assert mid.owner not in (None, owner)
    assert result.status == "success"
    assert (await other.get_run(run.run_id)).status == "success"  # type: ignore[union-attr]


class NothingButClaims(MemoryStorage):
    """A store that takes claims but no snapshot of a started run (its frame cannot be
    written, say)."""

    async def save_run(
        self, run: StoredRun, *, events: Sequence[Any] = (), if_owner: str | None = None
    ) -> None:
        if run.status != "pending":
            raise StorageError("cannot write this snapshot")
        await super().save_run(run, events=events, if_owner=if_owner)


async def test_a_run_whose_failure_cannot_be_written_is_still_marked_failed_by_its_owner() -> None:
    storage = NothingButClaims()
    held = leased(storage)
    run = await held.workflow.create_run()

    with pytest.raises(StorageError, match="cannot write this snapshot"):
        await run.start(None)

    stored = await storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"  # its own live lease did not refuse the last claim
