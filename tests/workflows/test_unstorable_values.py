"""Values no store can keep end as a failed step that names the field and the problem, never
as a raw exception or a run left ``running``, the same on every store (issue 13)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from spanflow_otel.testing import SpanCapture

from spanflow import StepContext, create_step, create_workflow
from spanflow.errors import InvalidInputError
from spanflow.storage import Storage


def cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["me"] = value
    return value


def deep() -> Any:
    value: Any = 1
    for _ in range(10_000):
        value = [value]
    return value


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


UNSTORABLE = [
    pytest.param(lambda: {"blob": b"\xff\xfe"}, "at 'blob': bytes that are not UTF-8", id="bytes"),
    pytest.param(cyclic, "at 'me': refers to itself", id="cycle"),
    pytest.param(deep, "nested more than 200 deep", id="deep"),
    pytest.param(lambda: {"score": [1.0, math.nan]}, "at 'score[1]': nan is not JSON", id="nan"),
    pytest.param(lambda: {"n": 10**5000}, "at 'n': an int of more than 4,300 digits", id="bigint"),
]


def two_steps(storage: Storage, first: Any) -> Any:
    ran_after: list[Any] = []

    async def after(ctx: StepContext[Any]) -> str:
        ran_after.append(ctx.input_data)
        return "after"

    workflow = create_workflow(id="unstorable", storage=storage)
    workflow.then(create_step(id="emit", execute=first))
    workflow.then(create_step(id="after", execute=after)).commit()
    return workflow, ran_after


@pytest.mark.parametrize(("make", "problem"), UNSTORABLE)
async def test_an_unstorable_output_fails_its_step_and_the_stored_run(
    stores: tuple[Storage, Storage], span_capture: SpanCapture, make: Any, problem: str
) -> None:
    storage, other = stores

    async def emit(ctx: StepContext[Any]) -> Any:
        return make()

    workflow, ran_after = two_steps(storage, emit)
    run = await workflow.create_run()

    result = await run.start(None)

    assert result.status == "failed"
    assert isinstance(result.error, InvalidInputError)
    assert str(result.error).startswith("output of step 'emit' cannot be stored: ")
    assert problem in str(result.error)
    assert result.steps["emit"].status == "failed"
    assert ran_after == []
    stored = await other.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.snapshot["error"]["message"] == str(result.error)
    (step_span,) = [s for s in span_capture.spans if s.name.endswith("emit")]
    assert step_span.status.status_code is StatusCode.ERROR


async def test_an_unstorable_suspend_payload_fails_the_step(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores

    async def ask(ctx: StepContext[Any]) -> Any:
        ctx.suspend({"question": math.inf})

    workflow, _ = two_steps(storage, ask)
    run = await workflow.create_run()

    result = await run.start(None)

    assert result.status == "failed"
    assert "suspend payload of step 'emit' cannot be stored: at 'question': inf" in str(
        result.error
    )
    assert (await other.get_run(run.run_id)).status == "failed"  # type: ignore[union-attr]


async def test_unstorable_state_fails_the_step_that_set_it(stores: tuple[Storage, Storage]) -> None:
    storage, _ = stores

    async def remember(ctx: StepContext[Any]) -> str:
        ctx.set_state({"seen": cyclic()})
        return "ok"

    workflow, _ = two_steps(storage, remember)
    result = await (await workflow.create_run()).start(None)

    assert result.status == "failed"
    assert "state set by step 'emit' cannot be stored: at 'seen.me'" in str(result.error)


async def test_an_exception_whose_message_cannot_be_rendered_fails_the_step(
    stores: tuple[Storage, Storage], span_capture: SpanCapture
) -> None:
    storage, other = stores

    async def explode(ctx: StepContext[Any]) -> None:
        raise Unprintable

    workflow, _ = two_steps(storage, explode)
    run = await workflow.create_run()

    result = await run.start(None)

    assert result.status == "failed"
    assert isinstance(result.error, RuntimeError)
    assert "raised Unprintable, whose message cannot be rendered" in str(result.error)
    assert isinstance(result.error.__cause__, Unprintable)
    assert (await other.get_run(run.run_id)).status == "failed"  # type: ignore[union-attr]
    (step_span,) = [s for s in span_capture.spans if s.name.endswith("emit")]
    assert step_span.status.status_code is StatusCode.ERROR


async def test_unstorable_input_is_refused_before_the_run_starts(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    workflow, _ = two_steps(storage, lambda ctx: "x")
    run = await workflow.create_run()

    with pytest.raises(InvalidInputError, match=r"input of workflow 'unstorable' cannot be stored"):
        await run.start({"x": math.nan})

    assert (await other.get_run(run.run_id)).status == "pending"  # type: ignore[union-attr]
    assert (await run.start("fine")).status == "success"


async def test_unstorable_resume_data_is_refused_and_the_run_stays_suspended(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores

    async def ask(ctx: StepContext[Any]) -> Any:
        if ctx.resume_data is None:
            ctx.suspend({"question": "ok?"})
        return ctx.resume_data

    workflow, _ = two_steps(storage, ask)
    run = await workflow.create_run()
    await run.start(None)

    with pytest.raises(InvalidInputError, match=r"resume data of step 'emit' cannot be stored"):
        await run.resume({"answer": b"\xff"})

    assert (await other.get_run(run.run_id)).status == "suspended"  # type: ignore[union-attr]
    assert (await run.resume({"answer": "yes"})).status == "success"


async def test_a_value_written_to_the_stream_that_is_not_json_does_not_hold_up_the_run(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores

    async def chatty(ctx: StepContext[Any]) -> str:
        await ctx.writer.write({"progress": math.nan})
        return "done"

    workflow, _ = two_steps(storage, chatty)
    run = await workflow.create_run()

    out = run.stream(None)
    events = [event async for event in out]

    assert (await out.result).status == "success"
    assert any(e.type == "workflow-step-output" for e in events)
    assert (await other.get_run(run.run_id)).status == "success"  # type: ignore[union-attr]
    logged = [entry.event for entry in await other.read_events(run.run_id)]
    assert [e["type"] for e in logged] == [e.type for e in events]
