"""``.then`` chains steps; ``.map`` reshapes data between them with a plain function."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel

from spanflow import StepContext, create_workflow

from .support import collect, event_ids, fn_step


class Total(BaseModel):
    total: int


async def test_then_feeds_each_output_to_the_next_step() -> None:
    workflow = (
        create_workflow(id="chain")
        .then(fn_step("add", lambda v: v + 1))
        .then(fn_step("double", lambda v: v * 2))
        .then(fn_step("show", lambda v: f"= {v}"))
        .commit()
    )
    run = await workflow.create_run()

    result = await run.start(4)

    assert result.status == "success"
    assert result.result == "= 10"
    assert [result.steps[s].payload for s in ("add", "double", "show")] == [4, 5, 10]
    assert result.step_execution_path == ["add", "double", "show"]
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "success"
    assert stored.snapshot["result"] == "= 10"


async def test_the_workflow_output_schema_validates_the_last_output() -> None:
    workflow = (
        create_workflow(id="typed-out", output_schema=Total)
        .then(fn_step("make", lambda v: {"total": v}))
        .commit()
    )

    result = await (await workflow.create_run()).start(3)

    assert result.result == Total(total=3)


async def test_map_with_an_async_function_reshapes_the_data() -> None:
    async def reshape(ctx: StepContext[Any]) -> dict[str, Any]:
        return {"total": ctx.input_data["a"] + ctx.get_init_data()["b"]}

    workflow = (
        create_workflow(id="mapper")
        .then(fn_step("first", lambda v: {"a": v["a"] * 10}))
        .map(reshape, output_schema=Total)
        .commit()
    )

    result = await (await workflow.create_run()).start({"a": 1, "b": 2})

    assert result.result == Total(total=12)


async def test_map_with_a_sync_function_runs_in_a_thread() -> None:
    threads: list[threading.Thread] = []

    def reshape(ctx: StepContext[Any]) -> list[int]:
        threads.append(threading.current_thread())
        return [ctx.input_data] * 3

    workflow = create_workflow(id="sync-mapper").map(reshape).commit()

    result = await (await workflow.create_run()).start(7)

    assert result.result == [7, 7, 7]
    assert threads[0] is not threading.main_thread()


async def test_map_steps_get_generated_ids_numbered_within_the_workflow() -> None:
    workflow = (
        create_workflow(id="wf")
        .map(lambda ctx: ctx.input_data + 1)
        .then(fn_step("middle", lambda v: v))
        .map(lambda ctx: ctx.input_data * 2)
        .map(lambda ctx: ctx.input_data, id="named-map")
        .commit()
    )
    run = await workflow.create_run()

    events = await collect(run.stream(1))

    assert [e.id for e in workflow.entries] == [
        "mapping_wf_1",
        "middle",
        "mapping_wf_2",
        "named-map",
    ]
    assert event_ids(events) == [
        "mapping_wf_1",
        "mapping_wf_1",
        "middle",
        "middle",
        "mapping_wf_2",
        "mapping_wf_2",
        "named-map",
        "named-map",
    ]


async def test_an_entry_can_be_given_its_own_id_description_and_metadata() -> None:
    workflow = (
        create_workflow(id="entry-meta")
        .then(fn_step("s", lambda v: v), id="first-entry", description="d", metadata={"k": 1})
        .commit()
    )

    [entry] = workflow.entries

    assert (entry.id, entry.description, entry.metadata) == ("first-entry", "d", {"k": 1})
