"""The ``*_sync`` conveniences for scripts, which refuse to run inside a live event loop."""

from __future__ import annotations

from typing import Any

import pytest

from spanflow import StepContext, SyncInLoopError, create_step, create_workflow

from .support import fn_step


def ask_workflow() -> Any:
    async def ask(ctx: StepContext[Any]) -> str:
        if ctx.resume_data is None:
            ctx.suspend({"q": "?"})
        return f"answer {ctx.resume_data}"

    return create_workflow(id="script").then(create_step(id="ask", execute=ask)).commit()


def test_sync_methods_run_a_workflow_from_plain_code() -> None:
    workflow = ask_workflow()

    run = workflow.create_run_sync()
    suspended = run.start_sync(None)
    done = run.resume_sync(42)

    assert suspended.status == "suspended"
    assert done.result == "answer 42"


def test_cancel_sync_cancels_a_suspended_run() -> None:
    workflow = ask_workflow()
    run = workflow.create_run_sync()
    run.start_sync(None)

    run.cancel_sync()

    assert run.status == "canceled"


async def test_sync_methods_refuse_inside_a_running_loop() -> None:
    workflow = ask_workflow()
    run = await workflow.create_run()

    with pytest.raises(SyncInLoopError, match=r"create_run_sync\(\) cannot run inside"):
        workflow.create_run_sync()
    with pytest.raises(SyncInLoopError, match=r"start_sync\(\) cannot run inside"):
        run.start_sync(None)
    with pytest.raises(SyncInLoopError, match=r"resume_sync\(\) cannot run inside"):
        run.resume_sync(1)
    with pytest.raises(SyncInLoopError, match=r"cancel_sync\(\) cannot run inside"):
        run.cancel_sync()

    assert run.status == "pending"  # nothing was started by the refused calls
    assert (await run.start(None)).status == "suspended"


async def test_sync_in_loop_error_is_a_runtime_error() -> None:
    workflow = create_workflow(id="x").then(fn_step("s", str)).commit()

    with pytest.raises(RuntimeError):
        workflow.create_run_sync()
