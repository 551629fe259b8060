"""Steps: how they are made, what they see in `ctx`, and how their outcome is recorded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from spanflow import (
    Step,
    StepContext,
    StepOutputPayload,
    WorkflowDefinitionError,
    create_step,
    create_workflow,
    step,
)
from spanflow.workflows.events import CustomPayload

from .support import collect, const, fn_step


class Order(BaseModel):
    item: str
    quantity: int


class Priced(BaseModel):
    item: str
    total: float


class Counter(BaseModel):
    count: int = 0


def test_create_step_and_the_decorator_make_the_same_kind_of_step() -> None:
    async def execute(ctx: StepContext[int]) -> int:
        return ctx.input_data

    made = create_step(id="made", execute=execute, description="by hand")

    @step(input_schema=int, output_schema=int)
    async def decorated(ctx: StepContext[int]) -> int:
        """Doubles the input.

        Longer explanation that is not part of the description.
        """
        return ctx.input_data * 2

    assert isinstance(made, Step)
    assert isinstance(decorated, Step)
    assert decorated.id == "decorated"
    assert decorated.description == "Doubles the input."
    assert made.description == "by hand"


def test_the_decorator_takes_an_explicit_id() -> None:
    @step(id="renamed")
    async def original(ctx: StepContext[Any]) -> None:
        return None

    assert original.id == "renamed"


@pytest.mark.parametrize("bad_id", ["", "a.b"])
def test_a_step_id_must_be_non_empty_and_dot_free(bad_id: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match="id"):
        const(bad_id, 1)


def test_negative_retries_are_rejected() -> None:
    with pytest.raises(WorkflowDefinitionError, match="retries"):
        fn_step("s", lambda v: v, retries=-1)


async def test_a_step_sees_its_input_as_a_validated_model_and_the_wire_holds_its_json() -> None:
    seen: list[Any] = []

    async def price(ctx: StepContext[Order]) -> Priced:
        seen.append(ctx.input_data)
        return Priced(item=ctx.input_data.item, total=ctx.input_data.quantity * 2.5)

    priced = create_step(id="price", input_schema=Order, output_schema=Priced, execute=price)
    workflow = create_workflow(id="orders").then(priced).commit()
    run = await workflow.create_run()

    result = await run.start({"item": "tea", "quantity": "4"})

    assert seen == [Order(item="tea", quantity=4)]
    assert result.result == Priced(item="tea", total=10.0)
    assert result.to_dict()["steps"]["price"]["payload"] == {"item": "tea", "quantity": 4}
    assert result.to_dict()["result"] == {"item": "tea", "total": 10.0}


async def test_a_dict_output_is_validated_into_the_output_model() -> None:
    async def execute(ctx: StepContext[Any]) -> dict[str, Any]:
        return {"item": "tea", "total": "3.5"}

    priced = create_step(id="price", output_schema=Priced, execute=execute)
    workflow = create_workflow(id="orders").then(priced).commit()

    result = await (await workflow.create_run()).start(None)

    assert result.result == Priced(item="tea", total=3.5)


async def test_a_sync_execute_runs_in_a_worker_thread_without_blocking_the_loop() -> None:
    threads: list[threading.Thread] = []
    ticks = 0

    def slow(ctx: StepContext[int]) -> int:
        threads.append(threading.current_thread())
        time.sleep(0.05)  # blocking on purpose
        return ctx.input_data + 1

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    workflow = create_workflow(id="sync").then(create_step(id="slow", execute=slow)).commit()
    run = await workflow.create_run()
    tick_task = asyncio.create_task(ticker())
    try:
        result = await run.start(1)
    finally:
        tick_task.cancel()

    assert result.result == 2
    assert threads
    assert threads[0] is not threading.main_thread()
    assert ticks > 0  # the loop kept running while the step slept in its thread


async def test_a_sync_step_can_suspend_and_bail() -> None:
    def gate(ctx: StepContext[int]) -> int:
        if ctx.resume_data is None:
            ctx.suspend({"waiting": True})
        if ctx.resume_data == "stop":
            ctx.bail("stopped")
        return ctx.input_data

    workflow = create_workflow(id="sync-gate").then(create_step(id="gate", execute=gate))
    workflow.then(const("after", "after ran")).commit()
    run = await workflow.create_run()

    suspended = await run.start(7)
    resumed = await run.resume("stop")

    assert suspended.status == "suspended"
    assert suspended.suspend_payload == {"gate": {"waiting": True}}
    assert resumed.status == "success"
    assert resumed.result == "stopped"
    assert "after" not in resumed.steps


async def test_get_step_result_returns_an_earlier_output_and_none_otherwise() -> None:
    seen: dict[str, Any] = {}

    async def look(ctx: StepContext[Any]) -> None:
        seen["first"] = ctx.get_step_result("first")
        seen["by_object"] = ctx.get_step_result(first)
        seen["unknown"] = ctx.get_step_result("nope")
        seen["init"] = ctx.get_init_data()
        seen["input"] = ctx.input_data

    first = fn_step("first", lambda v: v * 10)
    workflow = (
        create_workflow(id="lookup")
        .then(first)
        .then(fn_step("second", lambda v: v + 1))
        .then(create_step(id="look", execute=look))
        .commit()
    )

    await (await workflow.create_run()).start(2)

    assert seen == {"first": 20, "by_object": 20, "unknown": None, "init": 2, "input": 21}


async def test_get_step_result_is_none_for_a_step_that_failed() -> None:
    seen: list[Any] = []

    async def boom(ctx: StepContext[Any]) -> None:
        raise ValueError("no")

    async def look(ctx: StepContext[Any]) -> dict[str, Any]:
        seen.append(ctx.get_step_result("boom"))
        return {}

    inner_fail = create_step(id="boom", execute=boom)
    workflow = (
        create_workflow(id="lookup-failed")
        .branch(
            [(lambda c: True, inner_fail), (lambda c: True, create_step(id="look", execute=look))]
        )
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert seen == [None]


async def test_ctx_carries_run_identity_and_a_zero_retry_count() -> None:
    seen: list[tuple[str, str, str | None, int]] = []

    async def who(ctx: StepContext[Any]) -> None:
        seen.append((ctx.run_id, ctx.workflow_id, ctx.resource_id, ctx.retry_count))

    workflow = create_workflow(id="who").then(create_step(id="who", execute=who)).commit()
    run = await workflow.create_run(run_id="run-1", resource_id="user-9")

    await run.start(None)

    assert seen == [("run-1", "who", "user-9", 0)]


async def test_set_state_is_validated_applied_after_the_step_and_seen_by_later_steps() -> None:
    seen: list[tuple[str, Any]] = []

    async def bump(ctx: StepContext[Any]) -> None:
        state: Counter = ctx.state
        ctx.set_state({"count": state.count + 1})
        seen.append(("bump, after set_state", ctx.state))

    async def read(ctx: StepContext[Any]) -> int:
        seen.append(("read", ctx.state))
        state: Counter = ctx.state
        return state.count

    workflow = (
        create_workflow(id="stateful", state_schema=Counter)
        .then(create_step(id="bump", execute=bump))
        .then(create_step(id="read", execute=read))
        .commit()
    )
    run = await workflow.create_run()

    result = await run.start(None, initial_state={"count": 41})

    assert seen == [("bump, after set_state", Counter(count=41)), ("read", Counter(count=42))]
    assert result.result == 42
    assert result.state == Counter(count=42)
    assert result.to_dict()["state"] == {"count": 42}
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.snapshot["frame"]["state"] == {"count": 42}


async def test_a_step_without_set_state_leaves_the_state_alone() -> None:
    workflow = create_workflow(id="stateless").then(const("noop", 1)).commit()

    result = await (await workflow.create_run()).start(None, initial_state={"kept": True})

    assert result.state == {"kept": True}


async def test_state_that_breaks_the_state_schema_fails_the_step_naming_the_field() -> None:
    async def corrupt(ctx: StepContext[Any]) -> None:
        ctx.set_state({"count": "many"})

    workflow = (
        create_workflow(id="bad-state", state_schema=Counter)
        .then(create_step(id="corrupt", execute=corrupt))
        .then(const("never", 0))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert result.steps["corrupt"].status == "failed"
    assert "state set by step 'corrupt'" in str(result.error)
    assert "field 'count'" in str(result.error)
    assert "never" not in result.steps
    assert result.state == Counter(count=0)


async def test_writer_write_emits_step_output_from_user() -> None:
    async def chatty(ctx: StepContext[Any]) -> str:
        await ctx.writer.write({"progress": 0.5})
        await ctx.writer.write("done")
        return "ok"

    workflow = create_workflow(id="chatty").then(create_step(id="chatty", execute=chatty))
    run = await workflow.commit().create_run()

    events = await collect(run.stream(None))

    outputs = [e for e in events if e.type == "workflow-step-output"]
    assert [e.from_ for e in outputs] == ["USER", "USER"]
    first = outputs[0].payload
    assert isinstance(first, StepOutputPayload)
    assert (first.step_name, first.output, first.run_id) == (
        "chatty",
        {"progress": 0.5},
        run.run_id,
    )
    assert outputs[1].to_dict() == {
        "type": "workflow-step-output",
        "runId": run.run_id,
        "from": "USER",
        "payload": {"stepName": "chatty", "output": "done", "runId": run.run_id},
    }
    kinds = [e.type for e in events]
    assert kinds.index("workflow-step-start") < kinds.index("workflow-step-output")
    assert kinds.index("workflow-step-output") < kinds.index("workflow-step-result")


async def test_writer_custom_forwards_a_data_chunk_as_it_is() -> None:
    chunk = {"type": "data-progress", "data": {"percent": 50}}

    async def custom(ctx: StepContext[Any]) -> None:
        await ctx.writer.custom(chunk)

    workflow = create_workflow(id="custom").then(create_step(id="custom", execute=custom))
    run = await workflow.commit().create_run()

    events = await collect(run.stream(None))

    [data] = [e for e in events if e.type == "data-progress"]
    assert data.from_ == "USER"
    assert isinstance(data.payload, CustomPayload)
    assert data.payload.data == chunk
    assert data.to_dict() == chunk  # Mastra puts custom chunks into the stream unchanged


async def test_writer_custom_refuses_a_chunk_that_is_not_data_typed() -> None:
    async def custom(ctx: StepContext[Any]) -> None:
        await ctx.writer.custom({"type": "progress"})

    workflow = create_workflow(id="custom-bad").then(create_step(id="custom", execute=custom))

    result = await (await workflow.commit().create_run()).start(None)

    assert result.status == "failed"
    assert isinstance(result.error, ValueError)
    assert "'data-'" in str(result.error)


async def test_an_error_keeps_the_original_exception_with_its_traceback() -> None:
    class PaymentDeclined(Exception):
        pass

    async def charge(ctx: StepContext[Any]) -> None:
        raise PaymentDeclined("card 4242 declined")

    workflow = create_workflow(id="pay").then(create_step(id="charge", execute=charge)).commit()

    result = await (await workflow.create_run()).start(None)

    assert isinstance(result.error, PaymentDeclined)
    assert result.steps["charge"].error is result.error
    assert result.error.__traceback__ is not None
    wire = result.to_dict()["steps"]["charge"]["error"]
    assert wire["name"] == "PaymentDeclined"
    assert wire["message"] == "card 4242 declined"
    assert "in charge" in wire["stack"]


async def test_suspend_escapes_a_broad_except_in_user_code() -> None:
    async def careful(ctx: StepContext[Any]) -> str:
        suspend: Callable[[Any], object] = ctx.suspend
        try:
            suspend({"why": "approval"})
        except Exception:  # must not catch the control-flow signal
            return "swallowed"
        return "not reached"

    workflow = create_workflow(id="careful").then(create_step(id="careful", execute=careful))

    result = await (await workflow.commit().create_run()).start(None)

    assert result.status == "suspended"
    assert result.error is None
    assert result.steps["careful"].status == "suspended"
