"""Bad input: the caller's mistakes raise at once with a message naming the field, and change
nothing (the run stays pending, as ``create_run`` stored it); a step's bad data fails that step
(and the run), never the process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from spanflow import (
    InvalidInputError,
    RunClaimError,
    RunStateError,
    StepContext,
    StepNotFoundError,
    StorageError,
    Workflow,
    create_step,
    create_workflow,
)
from spanflow.storage import MemoryStorage, StoredRun

from .support import collect, fn_step


class Customer(BaseModel):
    name: str
    age: int


class Settings(BaseModel):
    retries: int


class Tenant(BaseModel):
    tenant: str


def strict_workflow(storage: MemoryStorage | None = None) -> Workflow:
    return (
        create_workflow(
            id="strict",
            input_schema=Customer,
            state_schema=Settings,
            request_context_schema=Tenant,
            storage=storage,
        )
        .then(fn_step("greet", lambda c: f"hello {c.name}"))
        .commit()
    )


GOOD_INPUT = {"name": "ada", "age": 36}
GOOD_STATE = {"retries": 1}
GOOD_CONTEXT = {"tenant": "acme"}


async def assert_nothing_stored(workflow: Workflow) -> None:
    """Only the pending run ``create_run`` stored, unchanged: nothing of the refused start."""
    page = await workflow.storage.list_runs(workflow_id=workflow.id)
    assert [(run.status, run.snapshot["frame"].get("input")) for run in page.runs] == [
        ("pending", None)
    ]


async def test_invalid_input_raises_from_start_naming_the_field() -> None:
    workflow = strict_workflow()
    run = await workflow.create_run()

    with pytest.raises(InvalidInputError) as caught:
        await run.start({"name": "ada", "age": "old"}, initial_state=GOOD_STATE)

    assert str(caught.value).startswith("invalid input of workflow 'strict': field 'age'")
    assert caught.value.errors[0]["loc"] == ["age"]
    await assert_nothing_stored(workflow)


async def test_invalid_input_raises_from_stream_before_any_event() -> None:
    workflow = strict_workflow()
    run = await workflow.create_run()

    with pytest.raises(InvalidInputError, match="field 'name': Field required"):
        run.stream({"age": 3}, initial_state=GOOD_STATE, request_context=GOOD_CONTEXT)

    await assert_nothing_stored(workflow)


async def test_a_run_refused_for_bad_input_can_still_start_with_good_input() -> None:
    workflow = strict_workflow()
    run = await workflow.create_run()
    with pytest.raises(InvalidInputError):
        await run.start({}, initial_state=GOOD_STATE, request_context=GOOD_CONTEXT)

    result = await run.start(GOOD_INPUT, initial_state=GOOD_STATE, request_context=GOOD_CONTEXT)

    assert result.result == "hello ada"


async def test_invalid_initial_state_raises_naming_the_field() -> None:
    workflow = strict_workflow()
    run = await workflow.create_run()

    with pytest.raises(
        InvalidInputError, match=r"initial state of workflow 'strict': field 'retries'"
    ):
        await run.start(GOOD_INPUT, initial_state={"retries": "many"}, request_context=GOOD_CONTEXT)

    await assert_nothing_stored(workflow)


async def test_a_request_context_that_breaks_its_schema_raises_naming_the_field() -> None:
    workflow = strict_workflow()
    run = await workflow.create_run()

    with pytest.raises(
        InvalidInputError, match=r"request context of workflow 'strict': field 'tenant'"
    ):
        await run.start(GOOD_INPUT, initial_state=GOOD_STATE, request_context={"user": "x"})

    await assert_nothing_stored(workflow)


async def test_a_request_context_value_that_cannot_be_stored_raises_naming_the_key() -> None:
    workflow = create_workflow(id="ctx").then(fn_step("s", lambda v: v)).commit()
    run = await workflow.create_run()

    with pytest.raises(InvalidInputError, match=r"request_context\['handle'\] is not JSON"):
        await run.start(None, request_context={"handle": object()})

    await assert_nothing_stored(workflow)


async def test_a_request_context_that_is_not_a_mapping_raises() -> None:
    workflow = create_workflow(id="ctx-type").then(fn_step("s", lambda v: v)).commit()
    run = await workflow.create_run()
    not_a_mapping: Any = ["tenant", "acme"]

    with pytest.raises(InvalidInputError, match="must be a mapping or RequestContext, got list"):
        await run.start(None, request_context=not_a_mapping)


async def test_tracing_options_of_the_wrong_type_raise() -> None:
    workflow = create_workflow(id="trace-type").then(fn_step("s", lambda v: v)).commit()
    run = await workflow.create_run()
    wrong: Any = {"trace_id": "abc"}

    with pytest.raises(InvalidInputError, match="tracing_options must be a TracingOptions"):
        await run.start(None, tracing_options=wrong)

    await assert_nothing_stored(workflow)


async def test_a_step_input_that_breaks_the_step_schema_fails_that_step_not_the_process() -> None:
    ran: list[Any] = []

    async def needs_customer(ctx: StepContext[Customer]) -> str:
        ran.append(ctx.input_data)
        return ctx.input_data.name

    workflow = (
        create_workflow(id="step-input")
        .then(fn_step("make", lambda v: {"name": "bob"}))
        .then(create_step(id="use", input_schema=Customer, execute=needs_customer))
        .commit()
    )
    run = await workflow.create_run()

    out = run.stream(None)
    events = await collect(out)
    result = await out.result

    assert ran == []  # validated before execute
    assert result.status == "failed"
    assert isinstance(result.error, InvalidInputError)
    assert str(result.error) == "invalid input of step 'use': field 'age': Field required"
    assert result.steps["use"].status == "failed"
    assert result.steps["use"].payload == {"name": "bob"}
    failed = events[-2].to_dict()["payload"]
    assert (failed["id"], failed["status"]) == ("use", "failed")
    assert failed["error"]["message"] == str(result.error)
    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.snapshot["error"]["name"] == "InvalidInputError"


async def test_a_step_output_that_breaks_the_step_schema_fails_that_step() -> None:
    async def sloppy(ctx: StepContext[Any]) -> dict[str, Any]:
        return {"name": "eve", "age": "unknown"}

    workflow = (
        create_workflow(id="step-output")
        .then(create_step(id="sloppy", output_schema=Customer, execute=sloppy))
        .then(fn_step("never", lambda v: v))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert str(result.error).startswith("invalid output of step 'sloppy': field 'age'")
    assert "never" not in result.steps


async def test_an_output_that_breaks_the_workflow_output_schema_fails_the_run() -> None:
    workflow = (
        create_workflow(id="wf-output", output_schema=Customer)
        .then(fn_step("last", lambda v: {"name": "x"}))
        .commit()
    )

    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert str(result.error).startswith("invalid output of workflow 'wf-output': field 'age'")


async def test_resuming_a_run_that_is_not_suspended_raises() -> None:
    workflow = create_workflow(id="done").then(fn_step("s", lambda v: v)).commit()
    run = await workflow.create_run()
    await run.start(1)

    with pytest.raises(RunStateError, match="is success, not suspended"):
        await run.resume("x")


async def test_resuming_a_run_that_never_started_raises() -> None:
    workflow = create_workflow(id="fresh").then(fn_step("s", lambda v: v)).commit()
    run = await workflow.create_run()

    with pytest.raises(RunStateError, match="was never started"):
        await run.resume("x")


def suspending(step_id: str) -> Any:
    async def execute(ctx: StepContext[Any]) -> Any:
        if ctx.resume_data is None:
            ctx.suspend({"at": step_id})
        return ctx.resume_data

    return create_step(id=step_id, execute=execute)


async def test_resuming_an_unknown_step_raises_naming_the_suspended_ones() -> None:
    workflow = create_workflow(id="one-waits").then(suspending("approve")).commit()
    run = await workflow.create_run()
    await run.start(None)

    with pytest.raises(StepNotFoundError) as caught:
        await run.resume("x", step="aprove")

    assert str(caught.value) == (
        f"step 'aprove' is not suspended in run {run.run_id!r}; suspended steps: 'approve'"
    )


async def test_two_suspended_steps_and_none_named_raises() -> None:
    workflow = create_workflow(id="two-wait").parallel([suspending("a"), suspending("b")]).commit()
    run = await workflow.create_run()
    await run.start(None)

    with pytest.raises(StepNotFoundError, match=r"several suspended steps \('a', 'b'\)"):
        await run.resume("x")

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "suspended"  # still resumable by name


async def test_starting_a_run_twice_raises() -> None:
    workflow = create_workflow(id="twice").then(fn_step("s", lambda v: v)).commit()
    run = await workflow.create_run()
    await run.start(1)

    with pytest.raises(RunStateError, match="already started"):
        await run.start(2)


async def test_a_stored_run_of_another_workflow_is_refused() -> None:
    shared = MemoryStorage()
    first = create_workflow(id="first", storage=shared).then(fn_step("s", str)).commit()
    second = create_workflow(id="second", storage=shared).then(fn_step("s", str)).commit()
    run = await first.create_run()
    await run.start(1)

    with pytest.raises(RunStateError, match="belongs to workflow 'first', not 'second'"):
        await second.create_run(run_id=run.run_id)


async def test_an_empty_run_id_is_refused() -> None:
    workflow = create_workflow(id="ids").then(fn_step("s", str)).commit()

    with pytest.raises(InvalidInputError, match="run_id must be a non-empty string"):
        await workflow.create_run(run_id="")


class FailsOnce(MemoryStorage):
    """A store whose first checkpoint write fails; later writes succeed."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def save_run(
        self, run: StoredRun, *, events: Sequence[Any] = (), if_owner: str | None = None
    ) -> None:
        if not self.failed:
            self.failed = True
            raise StorageError("write timed out")
        await super().save_run(run, events=events, if_owner=if_owner)


async def test_a_run_that_crashes_is_recorded_as_failed_not_left_running() -> None:
    workflow = create_workflow(id="crashy", storage=FailsOnce())
    workflow.then(fn_step("a", str)).then(fn_step("b", str)).commit()
    run = await workflow.create_run()

    with pytest.raises(StorageError, match="write timed out"):
        await run.start(1)

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.snapshot["error"]["message"] == "write timed out"
    assert run.status == "failed"


class Order(BaseModel):
    customer: Customer
    items: list[int]


async def test_the_message_gives_the_full_path_of_a_nested_field() -> None:
    workflow = create_workflow(id="orders", input_schema=Order).then(fn_step("s", str)).commit()
    run = await workflow.create_run()

    with pytest.raises(InvalidInputError) as caught:
        await run.start({"customer": {"name": "x", "age": "?"}, "items": [1, "two"]})

    assert str(caught.value) == (
        "invalid input of workflow 'orders': "
        "field 'customer.age': Input should be a valid integer, unable to parse string as an "
        "integer; field 'items.1': Input should be a valid integer, unable to parse string as "
        "an integer"
    )


async def test_a_second_run_object_cannot_start_a_run_id_already_taken() -> None:
    workflow = create_workflow(id="same-id").then(fn_step("s", lambda v: v)).commit()
    first = await workflow.create_run(run_id="order-1")
    second = await workflow.create_run(run_id="order-1")  # both created before either started
    await first.start("first")

    # Both objects are the one pending run: the first start claimed it, the second cannot.
    with pytest.raises(RunClaimError, match="its status is 'success', not 'pending'"):
        await second.start("second")

    stored = await workflow.storage.get_run("order-1")
    assert stored is not None
    assert (stored.status, stored.snapshot["result"]) == ("success", "first")  # untouched
