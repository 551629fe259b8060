"""``run.time_travel(step, input_data=None, context=None)``: re-execute a stored run from a step.

This is how a failed production run is replayed from the step that failed. The run keeps its
id; the steps before the target keep their stored results (or take those in ``context``); the
target gets ``input_data`` or the output of the entry before it; the target and every step
after it run again, and the stored snapshot becomes this execution's. Allowed for a run that
ended (success, failed, canceled), is suspended or was never started; refused while it runs.
Every check runs before the run is claimed: a refused time travel leaves the run untouched.
Its events, spans and hooks are those of a new execution.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture

from spanflow import (
    InvalidInputError,
    RunStateError,
    StepContext,
    StepNotFoundError,
    Workflow,
    create_step,
    create_workflow,
)
from spanflow.storage import Storage
from tests.support.stores import StoreSpec
from tests.tracing.span_helpers import spans_named

from .support import held_workflow


class Cart(BaseModel):
    items: list[int]


class Charge(BaseModel):
    amount: int


class Shop:
    """fetch -> charge -> receipt; charge fails while the card is declined."""

    def __init__(self) -> None:
        self.declined = True
        self.ran: list[tuple[str, Any]] = []

    def workflow(self, storage: Storage | None = None, **options: Any) -> Workflow:
        async def fetch(ctx: StepContext[Any]) -> Cart:
            self.ran.append(("fetch", ctx.input_data))
            return Cart(items=[int(ctx.input_data), 2])

        async def charge(ctx: StepContext[Cart]) -> Charge:
            self.ran.append(("charge", ctx.input_data))
            if self.declined:
                raise RuntimeError("card declined")
            return Charge(amount=sum(ctx.input_data.items))

        async def receipt(ctx: StepContext[Charge]) -> str:
            self.ran.append(("receipt", ctx.input_data))
            return f"paid {ctx.input_data.amount}"

        return (
            create_workflow(id="shop", storage=storage, **options)
            .then(create_step(id="fetch", output_schema=Cart, execute=fetch))
            .then(create_step(id="charge", input_schema=Cart, output_schema=Charge, execute=charge))
            .then(create_step(id="receipt", input_schema=Charge, execute=receipt))
            .commit()
        )

    def steps(self) -> list[str]:
        return [name for name, _ in self.ran]


@pytest.fixture
async def storage(store_spec: StoreSpec) -> AsyncIterator[Storage]:
    store = store_spec.open()
    yield store
    await store.close()


async def failed_run(shop: Shop, storage: Storage | None = None) -> tuple[Workflow, str]:
    workflow = shop.workflow(storage)
    run = await workflow.create_run(run_id="order-1")
    assert (await run.start(1)).status == "failed"
    shop.ran.clear()
    shop.declined = False
    return workflow, run.run_id


async def test_a_failed_run_is_replayed_from_the_step_that_failed(storage: Storage) -> None:
    shop = Shop()
    workflow, run_id = await failed_run(shop, storage)

    result = await (await workflow.create_run(run_id=run_id)).time_travel("charge")

    assert (result.status, result.result, result.run_id) == ("success", "paid 3", "order-1")
    assert shop.ran == [("charge", Cart(items=[1, 2])), ("receipt", Charge(amount=3))]
    assert result.steps["fetch"].output == Cart(items=[1, 2])  # kept from the stored run
    assert result.step_execution_path == ["fetch", "charge", "receipt"]
    stored = await workflow.get_run(run_id)
    assert stored is not None
    assert (stored.status, stored.snapshot["result"]) == ("success", "paid 3")
    assert stored.snapshot["error"] is None
    assert stored.snapshot["frame"]["steps"]["charge"]["status"] == "success"


async def test_the_target_step_gets_the_input_given(storage: Storage) -> None:
    shop = Shop()
    workflow, run_id = await failed_run(shop, storage)
    run = await workflow.create_run(run_id=run_id)

    result = await run.time_travel("charge", input_data={"items": [5, 5]})

    assert result.result == "paid 10"
    assert shop.ran[0] == ("charge", Cart(items=[5, 5]))


async def test_context_replaces_what_an_earlier_step_returned(storage: Storage) -> None:
    shop = Shop()
    shop.declined = False
    workflow = shop.workflow(storage)
    run = await workflow.create_run()
    await run.start(1)
    shop.ran.clear()

    result = await run.time_travel("receipt", context={"charge": {"amount": 40}})

    assert result.result == "paid 40"
    assert shop.steps() == ["receipt"]
    assert result.steps["charge"].output == Charge(amount=40)


async def test_an_earlier_results_steps_can_be_given_as_context() -> None:
    shop = Shop()
    shop.declined = False
    workflow = shop.workflow()
    first = await (await workflow.create_run()).start(7)
    shop.ran.clear()

    never_started = await workflow.create_run()
    result = await never_started.time_travel("charge", context={"fetch": first.steps["fetch"]})

    assert result.result == "paid 9"
    assert shop.ran == [("charge", Cart(items=[7, 2])), ("receipt", Charge(amount=9))]


async def test_a_run_that_never_started_time_travels_from_the_input_given(
    storage: Storage,
) -> None:
    shop = Shop()
    shop.declined = False
    workflow = shop.workflow(storage)
    run = await workflow.create_run(run_id="fresh")

    result = await run.time_travel(
        "receipt",
        input_data={"amount": 5},
        context={"fetch": {"items": []}, "charge": {"amount": 5}},
    )

    assert (result.status, result.result) == ("success", "paid 5")
    assert shop.steps() == ["receipt"]


async def test_time_travel_from_the_first_step_with_input_is_a_new_input() -> None:
    shop = Shop()
    workflow, run_id = await failed_run(shop)
    run = await workflow.create_run(run_id=run_id)

    result = await run.time_travel("fetch", input_data=4)

    assert (result.input, result.result) == (4, "paid 6")
    assert shop.steps() == ["fetch", "charge", "receipt"]


async def test_a_suspended_run_time_travels_and_its_suspension_is_replaced(
    storage: Storage,
) -> None:
    async def ask(ctx: StepContext[int]) -> int:
        if ctx.resume_data is None and ctx.input_data > 10:
            ctx.suspend({"amount": ctx.input_data})
        return ctx.input_data

    workflow = (
        create_workflow(id="approvals", storage=storage)
        .then(create_step(id="add", execute=lambda ctx: ctx.input_data + 10))
        .then(create_step(id="ask", execute=ask))
        .commit()
    )
    run = await workflow.create_run()
    assert (await run.start(5)).status == "suspended"

    result = await run.time_travel("ask", input_data=3)

    assert (result.status, result.result) == ("success", 3)
    stored = await workflow.get_run(run.run_id)
    assert stored is not None
    assert (stored.status, stored.snapshot["suspended"]) == ("success", [])


async def test_time_travel_is_refused_while_the_run_is_executing(storage: Storage) -> None:
    held = held_workflow(storage)
    workflow = held.workflow
    run = await workflow.create_run(run_id="b-1")
    out = run.stream(None)
    await held.started.wait()

    with pytest.raises(RunStateError, match="is executing here"):
        await run.time_travel("slow")
    with pytest.raises(RunStateError, match="is running: a run that is executing cannot time"):
        await (await workflow.create_run(run_id="b-1")).time_travel("slow")

    held.release.set()
    await out.result


async def test_of_two_time_travels_of_one_run_exactly_one_wins(storage: Storage) -> None:
    shop = Shop()
    workflow, run_id = await failed_run(shop, storage)
    travellers = [await workflow.create_run(run_id=run_id) for _ in range(2)]

    outcomes = await asyncio.gather(
        *(t.time_travel("charge") for t in travellers), return_exceptions=True
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["RunClaimError", "WorkflowResult"]
    assert shop.steps() == ["charge", "receipt"]


async def test_a_run_failed_in_one_process_is_replayed_in_another(
    shared_store_spec: StoreSpec,
) -> None:
    first, second = shared_store_spec.open(), shared_store_spec.open()
    try:
        shop = Shop()
        await failed_run(shop, first)

        there = await shop.workflow(second).create_run(run_id="order-1")
        result = await there.time_travel("charge")

        assert result.status == "success"
        stored = await first.get_run("order-1")
        assert stored is not None
        assert stored.status == "success"
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            {"step": "chrage"},
            StepNotFoundError,
            "workflow 'shop' has no top-level step 'chrage' to time travel to; "
            "its steps: 'fetch', 'charge', 'receipt'",
        ),
        ({"step": "charge", "input_data": {"items": "x"}}, InvalidInputError, "field 'items'"),
        (
            {"step": "charge", "context": {"receipt": "x"}},
            InvalidInputError,
            "context names step 'receipt', which runs at or after the target",
        ),
        (
            {"step": "charge", "context": {"refund": 1}},
            InvalidInputError,
            "context names step 'refund', which is not a top-level step of the workflow",
        ),
        (
            {"step": "receipt", "context": {"fetch": {"items": "x"}}},
            InvalidInputError,
            r"context\['fetch'\] \(output of step 'fetch'\): field 'items'",
        ),
        (
            {"step": "receipt"},
            InvalidInputError,
            "needs the result of step 'charge', which runs before it, but run 'order-1' has a "
            r"failed result for it: give its output in context=\{'charge': ...\}",
        ),
    ],
)
async def test_a_refused_time_travel_raises_and_leaves_the_run_as_it_was(
    storage: Storage, call: dict[str, Any], error: type[Exception], message: str
) -> None:
    shop = Shop()
    workflow, run_id = await failed_run(shop, storage)
    before = await workflow.get_run(run_id)
    run = await workflow.create_run(run_id=run_id)

    with pytest.raises(error, match=message):
        await run.time_travel(**call)

    assert await workflow.get_run(run_id) == before
    assert run.status == "failed"
    assert shop.ran == []


async def test_a_step_inside_a_nested_workflow_is_not_a_target() -> None:
    inner = create_workflow(id="inner").then(create_step(id="leaf", execute=lambda c: 1)).commit()
    workflow = create_workflow(id="outer").then(inner).commit()
    run = await workflow.create_run()
    await run.start(None)

    with pytest.raises(InvalidInputError, match="time travel to 'inner' re-runs it from its start"):
        await run.time_travel("inner.leaf")
    assert (await run.time_travel("inner")).status == "success"


async def test_a_block_is_re_run_whole_from_its_input() -> None:
    ran: list[str] = []

    def noted(step_id: str) -> Any:
        def execute(ctx: StepContext[Any]) -> Any:
            ran.append(f"{step_id}({ctx.input_data})")
            return ctx.input_data * 2

        return create_step(id=step_id, execute=execute)

    workflow = (
        create_workflow(id="blocks")
        .then(noted("first"))
        .parallel([noted("left"), noted("right")])
        .commit()
    )
    run = await workflow.create_run()
    await run.start(1)
    ran.clear()

    result = await run.time_travel("right")

    assert sorted(ran) == ["left(2)", "right(2)"]
    assert result.result == {"left": 4, "right": 4}


async def test_time_travel_stream_shows_a_new_execution_from_the_target() -> None:
    shop = Shop()
    workflow, run_id = await failed_run(shop)
    run = await workflow.create_run(run_id=run_id)

    out = run.time_travel_stream("charge")
    events = [e.to_dict() for e in [e async for e in out]]

    assert [(e["type"], e["payload"].get("id")) for e in events] == [
        ("workflow-start", None),
        ("workflow-step-start", "charge"),
        ("workflow-step-result", "charge"),
        ("workflow-step-start", "receipt"),
        ("workflow-step-result", "receipt"),
        ("workflow-finish", None),
    ]
    assert (await out.result).status == "success"


async def test_the_time_travel_is_a_new_run_span_in_the_runs_trace(
    span_capture: SpanCapture,
) -> None:
    shop = Shop()
    workflow, run_id = await failed_run(shop)

    await (await workflow.create_run(run_id=run_id)).time_travel("charge")

    original, replay = sorted(
        spans_named(span_capture, "invoke_workflow shop"), key=lambda s: s.start_time or 0
    )
    assert original.context is not None
    assert replay.context is not None
    assert replay.context.trace_id == original.context.trace_id
    assert replay.parent is not None
    assert replay.parent.span_id == original.context.span_id
    attributes = replay.attributes or {}
    assert attributes["spanflow.run.time_travel"] == "charge"
    assert attributes["spanflow.run.status"] == "success"
    assert "spanflow.run.resumed" not in attributes
    assert "spanflow.run.time_travel" not in (original.attributes or {})
    assert [s.name for s in spans_named(span_capture, "workflow_step fetch")] == [
        "workflow_step fetch"
    ]  # from the first execution only


async def test_a_time_travel_calls_the_hooks_of_a_new_execution() -> None:
    seen: list[tuple[str, str, str]] = []

    def hook(name: str) -> Any:
        return lambda event: seen.append((name, event.trigger, event.status))

    shop = Shop()
    workflow, run_id = await failed_run(shop)
    # The same workflow, with hooks this time (a redeploy): the hooks of the definition in use.
    replaying = shop.workflow(
        workflow.storage, on_start=hook("on_start"), on_finish=hook("on_finish")
    )

    await (await replaying.create_run(run_id=run_id)).time_travel("charge")

    assert seen == [("on_start", "time_travel", "running"), ("on_finish", "time_travel", "success")]
