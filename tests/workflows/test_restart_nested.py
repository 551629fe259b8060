"""``run.restart()`` of a run whose executor died inside a nested workflow.

A nested workflow run as a step checkpoints through the run after each of its own entries, so
the stored snapshot holds its frame as the outer entry in progress: a restart goes on from
there, and the inner steps that had finished do not run again. As in ``test_restart.py``, the
executor "dies" by having its task cancelled from outside while a step hangs; the restart then
opens a new store object on the same SQLite file or PostgreSQL schema, as another process would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spanflow import StepContext, Workflow, create_step, create_workflow
from spanflow.storage import StoredRun
from tests.support.stores import StoreSpec


class Journal:
    """Records step executions; the first execution of `hang` never returns."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.hanging = asyncio.Event()

    def step(self, step_id: str) -> Any:
        """A step that notes itself in the journal and in the run state's trail."""

        async def execute(ctx: StepContext[Any]) -> Any:
            self.ran.append(step_id)
            if step_id == "hang" and self.ran.count("hang") == 1:
                self.hanging.set()
                await asyncio.Event().wait()  # the process "dies" here
            ctx.set_state({**ctx.state, "trail": [*ctx.state.get("trail", []), step_id]})
            return ctx.input_data + 1

        return create_step(id=step_id, execute=execute)

    def approve(self) -> Any:
        async def execute(ctx: StepContext[Any]) -> Any:
            self.ran.append("approve")
            if ctx.resume_data is None:
                ctx.suspend({"at": ctx.input_data})
            return {"value": ctx.input_data, "by": ctx.resume_data}

        return create_step(id="approve", execute=execute)

    def nested(self) -> Workflow:
        """outer: prepare -> inner[first -> hang -> last] -> finish."""
        inner = (
            create_workflow(id="inner")
            .then(self.step("first"))
            .then(self.step("hang"))
            .then(self.step("last"))
            .commit()
        )
        return (
            create_workflow(id="outer")
            .then(self.step("prepare"))
            .then(inner)
            .then(self.step("finish"))
            .commit()
        )

    def two_levels(self) -> Workflow:
        """top: a -> middle[b -> leaf[c -> hang -> d] -> e] -> f."""
        leaf = (
            create_workflow(id="leaf")
            .then(self.step("c"))
            .then(self.step("hang"))
            .then(self.step("d"))
            .commit()
        )
        middle = (
            create_workflow(id="middle")
            .then(self.step("b"))
            .then(leaf)
            .then(self.step("e"))
            .commit()
        )
        return (
            create_workflow(id="top")
            .then(self.step("a"))
            .then(middle)
            .then(self.step("f"))
            .commit()
        )

    def asking(self) -> Workflow:
        """outer: inner[first -> hang -> approve (suspends)]."""
        inner = (
            create_workflow(id="inner")
            .then(self.step("first"))
            .then(self.step("hang"))
            .then(self.approve())
            .commit()
        )
        return create_workflow(id="outer").then(inner).commit()

    def in_parallel(self) -> Workflow:
        """outer: parallel[inner[first -> hang], side]."""
        inner = (
            create_workflow(id="inner").then(self.step("first")).then(self.step("hang")).commit()
        )
        return create_workflow(id="outer").parallel([inner, self.step("side")]).commit()


async def crash_mid_run(workflow: Workflow, journal: Journal, spec: StoreSpec) -> StoredRun:
    """Start a run on `spec`'s store, let its executor die in `hang`; the run as left stored."""
    workflow.storage = spec.open()
    try:
        run = await workflow.create_run()
        starter = asyncio.create_task(run.start(1, initial_state={}))
        await journal.hanging.wait()
        starter.cancel()  # the executor dies: not a run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starter
        stored = await workflow.storage.get_run(run.run_id)
    finally:
        await workflow.storage.close()
    assert stored is not None
    return stored


async def restarted(workflow: Workflow, spec: StoreSpec, run_id: str) -> Any:
    """Restart the run from a new store object on the same data, as another process would."""
    workflow.storage = spec.open()
    try:
        run = await workflow.create_run(run_id=run_id)
        return run, await run.restart()
    finally:
        await workflow.storage.close()


async def test_the_stored_snapshot_holds_the_nested_workflows_progress(
    shared_store_spec: StoreSpec,
) -> None:
    journal = Journal()

    stored = await crash_mid_run(journal.nested(), journal, shared_store_spec)

    assert stored.status == "running"
    frame = stored.snapshot["frame"]
    assert frame["position"] == 1  # at the nested workflow's entry
    assert frame["state"] == {"trail": ["prepare", "first"]}  # first's change reached the run
    slot = frame["entry"]["slot"]
    assert frame["entry"]["kind"] == "nested"
    assert slot["workflowId"] == "inner"
    assert slot["position"] == 1  # first had finished; hang had not
    assert slot["steps"]["first"]["status"] == "success"
    assert "hang" not in slot["steps"]


async def test_a_restart_goes_on_inside_the_nested_workflow_without_rerunning_its_steps(
    shared_store_spec: StoreSpec,
) -> None:
    journal = Journal()
    stored = await crash_mid_run(journal.nested(), journal, shared_store_spec)

    _, result = await restarted(journal.nested(), shared_store_spec, stored.run_id)

    assert result.status == "success"
    assert journal.ran == ["prepare", "first", "hang", "hang", "last", "finish"]
    assert result.result == 6  # 1, +1 for each of the five steps
    assert result.steps["inner"].status == "success"
    assert result.state == {"trail": ["prepare", "first", "hang", "last", "finish"]}
    assert result.step_execution_path == ["prepare", "inner", "finish"]


async def test_a_restart_goes_on_two_levels_down(shared_store_spec: StoreSpec) -> None:
    journal = Journal()
    stored = await crash_mid_run(journal.two_levels(), journal, shared_store_spec)

    _, result = await restarted(journal.two_levels(), shared_store_spec, stored.run_id)

    assert stored.snapshot["frame"]["entry"]["slot"]["entry"]["slot"]["workflowId"] == "leaf"
    assert result.status == "success"
    assert journal.ran == ["a", "b", "c", "hang", "hang", "d", "e", "f"]
    assert result.state == {"trail": ["a", "b", "c", "hang", "d", "e", "f"]}


async def test_a_restarted_run_that_suspends_inside_resumes_as_usual(
    shared_store_spec: StoreSpec,
) -> None:
    journal = Journal()
    stored = await crash_mid_run(journal.asking(), journal, shared_store_spec)

    run, suspended = await restarted(journal.asking(), shared_store_spec, stored.run_id)
    journal_workflow = journal.asking()
    journal_workflow.storage = shared_store_spec.open()
    try:
        again = await journal_workflow.create_run(run_id=run.run_id)
        done = await again.resume("boss", step="inner.approve")
    finally:
        await journal_workflow.storage.close()

    assert suspended.status == "suspended"
    assert suspended.suspended == [["inner", "approve"]]
    assert done.status == "success"
    assert done.result == {"value": 3, "by": "boss"}
    assert journal.ran == ["first", "hang", "hang", "approve", "approve"]


async def test_inside_a_parallel_block_the_nested_workflow_runs_again_from_its_start(
    shared_store_spec: StoreSpec,
) -> None:
    journal = Journal()
    stored = await crash_mid_run(journal.in_parallel(), journal, shared_store_spec)

    _, result = await restarted(journal.in_parallel(), shared_store_spec, stored.run_id)

    assert stored.snapshot["frame"]["entry"] is None  # no nested checkpoint inside a block
    assert result.status == "success"
    assert sorted(journal.ran) == ["first", "first", "hang", "hang", "side", "side"]
