"""Canceling a stored run whose snapshot this spanflow cannot read leaves the run as it was."""

from __future__ import annotations

import pytest

from spanflow import StepContext, create_step, create_workflow
from spanflow.errors import StorageError
from spanflow.storage import MemoryStorage


async def test_canceling_a_run_stored_by_a_newer_spanflow_leaves_it_untouched() -> None:
    async def review(ctx: StepContext[int]) -> int:
        if ctx.resume_data is None:
            ctx.suspend({"needs": "approval"})
        return ctx.input_data

    store = MemoryStorage()
    workflow = (
        create_workflow(id="review", storage=store)
        .then(create_step(id="review", execute=review))
        .commit()
    )
    run = await workflow.create_run(run_id="r-1")
    assert (await run.start(1)).status == "suspended"
    stored = await store.get_run("r-1")
    assert stored is not None
    stored.snapshot["version"] = 999  # as a newer spanflow would have written it
    await store.save_run(stored)
    reopened = await workflow.create_run(run_id="r-1")

    with pytest.raises(StorageError) as caught:
        await reopened.cancel()

    after = await store.get_run("r-1")
    assert after is not None
    assert after.status == "suspended"
    assert after.snapshot == stored.snapshot
    assert str(caught.value).startswith(
        "run 'r-1' was stored by a newer spanflow (snapshot version 999, "
    )
    assert str(caught.value).endswith("(not canceled: the run is left suspended)")
