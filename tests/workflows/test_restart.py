"""``run.restart()``: re-drive a run that a dead executor left ``running``.

A process that dies mid-run leaves its last snapshot behind with status ``running``. Here the
"death" is the run's task being cancelled from outside (as when a loop shuts down), which is
not a ``run.cancel()``: the run is not marked canceled, it stays ``running``.
(``tests/integration`` does the same with a real process and SIGKILL.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spanflow import RunStateError, StepContext, Workflow, create_step, create_workflow
from spanflow.storage import MemoryStorage


class CheckpointedMemory(MemoryStorage):
    """A memory store checkpointed after every entry, as SQLite and PostgreSQL are (a plain
    memory store is not: nothing in it outlives the process a restart would follow)."""

    durable = True


class Journal:
    """Counts step executions; the first execution of `hang` never returns."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.hanging = asyncio.Event()

    def workflow(self) -> Workflow:
        async def prepare(ctx: StepContext[int]) -> int:
            self.ran.append("prepare")
            return ctx.input_data + 1

        async def hang(ctx: StepContext[int]) -> int:
            self.ran.append("hang")
            if self.ran.count("hang") == 1:
                self.hanging.set()
                await asyncio.Event().wait()  # the process "dies" here
            return ctx.input_data * 10

        async def finish(ctx: StepContext[int]) -> dict[str, Any]:
            self.ran.append("finish")
            return {"total": ctx.input_data}

        return (
            create_workflow(id="durable", storage=CheckpointedMemory())
            .then(create_step(id="prepare", execute=prepare))
            .then(create_step(id="hang", execute=hang))
            .then(create_step(id="finish", execute=finish))
            .commit()
        )


async def crash_mid_run(journal: Journal) -> tuple[Workflow, str]:
    workflow = journal.workflow()
    run = await workflow.create_run()
    starter = asyncio.create_task(run.start(1))
    await journal.hanging.wait()
    starter.cancel()  # the executor dies: not a run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter
    return workflow, run.run_id


async def test_a_run_whose_executor_died_is_left_running() -> None:
    workflow, run_id = await crash_mid_run(Journal())

    stored = await workflow.storage.get_run(run_id)

    assert stored is not None
    assert stored.status == "running"
    assert stored.snapshot["frame"]["position"] == 1  # prepare was stored; hang was not


async def test_restart_continues_without_rerunning_stored_steps() -> None:
    journal = Journal()
    workflow, run_id = await crash_mid_run(journal)

    again = await workflow.create_run(run_id=run_id)
    result = await again.restart()

    assert result.status == "success"
    assert result.result == {"total": 20}
    assert journal.ran == ["prepare", "hang", "hang", "finish"]
    assert result.steps["prepare"].output == 2  # from the snapshot
    stored = await workflow.storage.get_run(run_id)
    assert stored is not None
    assert stored.status == "success"


async def test_restart_refuses_a_run_that_is_not_running() -> None:
    workflow = Journal().workflow()
    never_started = await workflow.create_run()
    quick = create_workflow(id="quick").then(create_step(id="s", execute=lambda ctx: 1)).commit()
    done = await quick.create_run()
    await done.start(None)

    with pytest.raises(RunStateError, match="is success, not running"):
        await done.restart()
    with pytest.raises(RunStateError, match="never started"):
        await never_started.restart()


async def test_restart_refuses_a_suspended_run_and_points_to_resume() -> None:
    async def ask(ctx: StepContext[Any]) -> None:
        ctx.suspend(None)

    workflow = create_workflow(id="asks").then(create_step(id="ask", execute=ask)).commit()
    run = await workflow.create_run()
    await run.start(None)

    with pytest.raises(RunStateError, match=r"is suspended, not running.*resume"):
        await run.restart()
