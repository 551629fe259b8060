"""Stored runs outlive the spanflow that wrote them: snapshots in ``snapshots/`` still load.

Each fixture was written by spanflow before the snapshot became typed (a suspended foreach,
parallel, nested workflow, loop and branch, a run waiting in a sleep, a failed run). Loading it
gives the typed snapshot, resuming (or restarting) it finishes the run as it would have
finished in the process that stored it, and a snapshot this spanflow cannot read says why.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from spanflow_otel.testing import SpanCapture

from spanflow import RunStateError, Workflow
from spanflow.cli.stored import print_run
from spanflow.errors import StorageError
from spanflow.storage import MemoryStorage, StoredRun
from spanflow.workflows._snapshot import (
    BranchProgress,
    ForeachProgress,
    LoopProgress,
    NestedProgress,
    ParallelProgress,
    RunSnapshot,
    dump_run_snapshot,
    read_run_snapshot,
)

from .snapshot_workflows import (
    Review,
    branch_workflow,
    failing_workflow,
    foreach_workflow,
    loop_workflow,
    nested_workflow,
    parallel_workflow,
    sleeping_workflow,
)

SNAPSHOTS = Path(__file__).parent / "snapshots"


def fixture(name: str) -> StoredRun:
    """The stored run kept in ``snapshots/<name>.json``."""
    data = json.loads((SNAPSHOTS / f"{name}.json").read_text())
    return StoredRun(
        data["runId"], data["workflowId"], data["status"], data["snapshot"], data["resourceId"]
    )


async def stored_in(workflow: Workflow, name: str) -> StoredRun:
    """Put the fixture in a fresh store of `workflow` (as another process would find it)."""
    stored = fixture(name)
    workflow.storage = MemoryStorage()
    await workflow.storage.save_run(stored)
    return stored


def without_kinds(data: Any) -> Any:
    """`data` without the ``kind`` tags entries carry since the snapshot became typed."""
    if isinstance(data, dict):
        return {k: without_kinds(v) for k, v in data.items() if k != "kind"}
    if isinstance(data, list):
        return [without_kinds(v) for v in data]
    return data


@pytest.mark.parametrize(
    ("name", "progress"),
    [
        ("suspended_foreach", ForeachProgress),
        ("suspended_parallel", ParallelProgress),
        ("suspended_branch", BranchProgress),
        ("suspended_loop", LoopProgress),
        ("suspended_nested", NestedProgress),
        ("waiting_sleep", type(None)),
        ("failed", type(None)),
    ],
)
def test_a_stored_snapshot_loads_as_the_typed_snapshot_and_dumps_back_to_its_json(
    name: str, progress: type
) -> None:
    stored = fixture(name)

    snapshot = read_run_snapshot(stored)
    dumped = dump_run_snapshot(snapshot)

    assert isinstance(snapshot, RunSnapshot)
    assert isinstance(snapshot.frame.entry, progress)
    assert snapshot.status == stored.status
    assert snapshot.trace is not None
    assert snapshot.trace.to_dict() == stored.snapshot["trace"]
    # The same JSON: entries gain their `kind`, the outcome keys are always there.
    assert {k: v for k, v in without_kinds(dumped).items() if k in stored.snapshot} == (
        stored.snapshot
    )
    assert set(dumped) - set(stored.snapshot) <= {"result", "error", "suspended", "suspendPayload"}
    again = StoredRun(stored.run_id, stored.workflow_id, stored.status, dumped)
    assert dump_run_snapshot(read_run_snapshot(again)) == dumped


def test_a_stored_foreach_keeps_its_iterations_by_index() -> None:
    snapshot = read_run_snapshot(fixture("suspended_foreach"))

    progress = snapshot.frame.entry
    assert isinstance(progress, ForeachProgress)
    assert progress.items == [1, 2, 3]
    assert progress.statuses == ["success", "suspended", "success"]
    assert progress.suspend_payloads == {1: {"item": 2}}
    assert progress.paths == {1: [["review"]]}
    assert snapshot.request_context == {"tenant": "acme"}


async def test_a_stored_suspended_foreach_resumes_by_index_with_its_outputs_as_models() -> None:
    workflow = foreach_workflow()
    await stored_in(workflow, "suspended_foreach")
    run = await workflow.create_run(run_id="run-foreach")

    result = await run.resume("ann", foreach_index=1)

    assert result.status == "success"
    assert result.result == [
        Review(item=1, verdict="auto"),
        Review(item=2, verdict="ann"),
        Review(item=3, verdict="auto"),
    ]
    assert result.steps["prepare"].output == [1, 2, 3]


async def test_a_stored_foreach_refuses_an_index_that_is_not_suspended() -> None:
    workflow = foreach_workflow()
    await stored_in(workflow, "suspended_foreach")
    run = await workflow.create_run(run_id="run-foreach")

    with pytest.raises(Exception, match="iteration 0 of step 'review' is not suspended"):
        await run.resume("ann", foreach_index=0)


async def test_a_stored_suspended_parallel_resumes_its_branches_one_at_a_time() -> None:
    workflow = parallel_workflow()
    await stored_in(workflow, "suspended_parallel")
    run = await workflow.create_run(run_id="run-parallel")

    first = await run.resume("ok", step="manual")
    second = await run.resume("ann", step="inner.approve")

    assert (first.status, first.suspended) == ("suspended", [["inner", "approve"]])
    assert second.status == "success"
    assert second.result == {
        "auto": 6,
        "manual": {"amount": 5, "by": "ok"},
        "inner": {"amount": 5, "by": "ann"},
    }


async def test_a_stored_suspended_nested_workflow_resumes_by_path_in_the_same_trace(
    span_capture: SpanCapture,
) -> None:
    workflow = nested_workflow()
    stored = await stored_in(workflow, "suspended_nested")
    run = await workflow.create_run(run_id="run-nested")

    result = await run.resume("bob", step="inner.approve")

    assert result.status == "success"
    assert result.result == "42 approved by bob"
    assert result.steps["prepare"].output == 42
    assert result.trace_id == stored.snapshot["trace"]["traceId"]


async def test_a_stored_suspended_loop_resumes_into_its_nested_workflow() -> None:
    workflow = loop_workflow()
    await stored_in(workflow, "suspended_loop")
    run = await workflow.create_run(run_id="run-loop")

    result = await run.resume("ann")

    assert (result.status, result.result) == ("success", {"amount": 7, "by": "ann"})


async def test_a_stored_suspended_branch_resumes_the_branch_it_selected() -> None:
    workflow = branch_workflow()
    await stored_in(workflow, "suspended_branch")
    run = await workflow.create_run(run_id="run-branch")

    result = await run.resume("ann", step="large.approve")

    assert (result.status, result.result) == ("success", {"large": {"amount": 50, "by": "ann"}})


async def test_a_run_stored_while_it_slept_restarts_and_finishes() -> None:
    workflow = sleeping_workflow()
    await stored_in(workflow, "waiting_sleep")
    run = await workflow.create_run(run_id="run-sleep")
    assert run.status == "waiting"

    result = await run.restart()

    assert (result.status, result.result) == ("success", 12)
    assert result.steps["before"].output == 2


async def test_a_stored_failed_run_reads_with_its_error_and_cannot_be_resumed() -> None:
    workflow = failing_workflow()
    stored = await stored_in(workflow, "failed")
    run = await workflow.create_run(run_id="run-failed")
    out = io.StringIO()

    print_run(Console(file=out, width=120), stored, "memory")

    snapshot = read_run_snapshot(stored)
    assert snapshot.status == "failed"
    assert snapshot.error is not None
    assert (snapshot.error["name"], snapshot.error["message"]) == (
        "TimeoutError",
        "gave up after 3s",
    )
    assert "TimeoutError: gave up after 3s" in out.getvalue()
    assert stored.snapshot["trace"]["traceId"] in out.getvalue()
    with pytest.raises(RunStateError, match="is failed, not suspended"):
        await run.resume("again")


def test_a_snapshot_from_a_newer_spanflow_asks_for_an_upgrade() -> None:
    stored = fixture("suspended_nested")
    stored.snapshot["version"] = 99

    with pytest.raises(StorageError) as caught:
        read_run_snapshot(stored)

    assert str(caught.value) == (
        "run 'run-nested' was stored by a newer spanflow (snapshot version 99, this one reads "
        "up to 1): upgrade spanflow to resume it"
    )


@pytest.mark.parametrize("snapshot", [{}, {"version": 1}, {"version": "1", "frame": {}}])
def test_something_that_is_not_a_spanflow_snapshot_is_refused(snapshot: dict[str, Any]) -> None:
    stored = StoredRun("run-x", "wf", "suspended", snapshot)

    with pytest.raises(StorageError) as caught:
        read_run_snapshot(stored)

    assert str(caught.value) == "run 'run-x': stored snapshot is not a spanflow snapshot"


def test_a_damaged_snapshot_is_refused_naming_what_is_wrong() -> None:
    stored = fixture("suspended_foreach")
    stored.snapshot["frame"]["position"] = "first"

    with pytest.raises(StorageError, match=r"stored snapshot is damaged .*frame\.position"):
        read_run_snapshot(stored)
