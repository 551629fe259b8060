"""Span status: failures are errors with their exception; suspend, bail and cancel are not.

A failure sets status ERROR with the message and ``error.type`` (the exception's qualified class
name), and records an ``exception`` event with type, message and stack trace where it happened
and on the run span; the blocks it passes through only get the status. Suspension, bail and
cancellation leave the status UNSET and say what happened in ``spanflow.*.status``.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture

from spanflow import ConditionContext, StepContext, create_step, create_workflow, step

from .span_helpers import expected, run, span_named, tree

ERRORS = ("spanflow.*.status", "error.type", "exception.type", "exception.message")


class PaymentDeclinedError(Exception):
    """A user's own exception type: its ``error.type`` is qualified by its module."""


@step
async def charge(ctx: StepContext[int]) -> int:
    raise PaymentDeclinedError(f"card declined for {ctx.input_data} EUR")


@step
async def double(ctx: StepContext[int]) -> int:
    return ctx.input_data * 2


async def test_a_failed_step_is_an_error_on_the_step_and_the_run(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="checkout").then(double).then(charge).commit()

    result = await run(workflow, 21)

    assert result.status == "failed"
    error_type = f"{__name__}.PaymentDeclinedError"
    assert tree(span_capture, *ERRORS) == expected(f"""
        invoke_workflow checkout [INTERNAL] ERROR: card declined for 42 EUR {{error.type='{error_type}', spanflow.run.status='failed'}}
          • workflow-start
          • workflow-finish
          • exception {{exception.message='card declined for 42 EUR', exception.type='{error_type}'}}
          workflow_step double [INTERNAL] UNSET {{spanflow.step.status='success'}}
            • workflow-step-start {{spanflow.event.status='running'}}
            • workflow-step-result {{spanflow.event.status='success'}}
          workflow_step charge [INTERNAL] ERROR: card declined for 42 EUR {{error.type='{error_type}', spanflow.step.status='failed'}}
            • workflow-step-start {{spanflow.event.status='running'}}
            • workflow-step-result {{spanflow.event.status='failed'}}
            • exception {{exception.message='card declined for 42 EUR', exception.type='{error_type}'}}
    """)  # noqa: E501


async def test_the_exception_event_carries_the_stack_trace_of_the_failure(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="checkout").then(charge).commit()

    await run(workflow, 1)

    for name in ("workflow_step charge", "invoke_workflow checkout"):
        (exception,) = [e for e in span_named(span_capture, name).events if e.name == "exception"]
        stack = str((exception.attributes or {})["exception.stacktrace"])
        assert stack.startswith("Traceback (most recent call last):")
        assert 'raise PaymentDeclinedError(f"card declined for {ctx.input_data} EUR")' in stack
        assert stack.rstrip().endswith("PaymentDeclinedError: card declined for 1 EUR")


async def test_builtin_exceptions_have_an_unqualified_error_type(span_capture: SpanCapture) -> None:
    async def parse(ctx: StepContext[str]) -> int:
        return int(ctx.input_data)

    workflow = create_workflow(id="parse").then(create_step(id="parse", execute=parse)).commit()

    await run(workflow, "forty-two")

    assert tree(span_capture, *ERRORS, events=False) == expected("""
        invoke_workflow parse [INTERNAL] ERROR: invalid literal for int() with base 10: 'forty-two' {error.type='ValueError', spanflow.run.status='failed'}
          workflow_step parse [INTERNAL] ERROR: invalid literal for int() with base 10: 'forty-two' {error.type='ValueError', spanflow.step.status='failed'}
    """)  # noqa: E501


async def test_invalid_step_input_fails_the_step_with_spanflows_error_type(
    span_capture: SpanCapture,
) -> None:
    class Order(BaseModel):
        quantity: int

    async def ship(ctx: StepContext[Order]) -> int:
        return ctx.input_data.quantity

    workflow = create_workflow(id="shipping")
    workflow = workflow.then(create_step(id="ship", execute=ship, input_schema=Order)).commit()

    await run(workflow, {"quantity": "many"})

    step_span = span_named(span_capture, "workflow_step ship")
    assert (step_span.attributes or {})["error.type"] == "spanflow.errors.InvalidInputError"
    assert step_span.status.description is not None
    assert "input of step 'ship'" in step_span.status.description


async def test_a_failed_parallel_branch_marks_the_parallel_span_without_a_second_exception(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="fan_out").parallel([double, charge]).commit()

    await run(workflow, 5)

    error_type = f"{__name__}.PaymentDeclinedError"
    assert tree(span_capture, *ERRORS) == expected(f"""
        invoke_workflow fan_out [INTERNAL] ERROR: card declined for 5 EUR {{error.type='{error_type}', spanflow.run.status='failed'}}
          • workflow-start
          • workflow-finish
          • exception {{exception.message='card declined for 5 EUR', exception.type='{error_type}'}}
          parallel 2 branches [INTERNAL] ERROR: card declined for 5 EUR {{error.type='{error_type}', spanflow.parallel.status='failed'}}
            workflow_step double [INTERNAL] UNSET {{spanflow.step.status='success'}}
              • workflow-step-start {{spanflow.event.status='running'}}
              • workflow-step-result {{spanflow.event.status='success'}}
            workflow_step charge [INTERNAL] ERROR: card declined for 5 EUR {{error.type='{error_type}', spanflow.step.status='failed'}}
              • workflow-step-start {{spanflow.event.status='running'}}
              • workflow-step-result {{spanflow.event.status='failed'}}
              • exception {{exception.message='card declined for 5 EUR', exception.type='{error_type}'}}
    """)  # noqa: E501


async def test_a_condition_that_raises_is_a_failed_condition_span_in_a_successful_run(
    span_capture: SpanCapture,
) -> None:
    def broken(ctx: ConditionContext) -> bool:
        raise KeyError("region")

    workflow = (
        create_workflow(id="route").branch([(broken, charge), (lambda ctx: True, double)]).commit()
    )

    result = await run(workflow, 5)

    assert result.status == "success"
    assert tree(span_capture, *ERRORS, "spanflow.condition.result", events=False) == expected("""
        invoke_workflow route [INTERNAL] UNSET {spanflow.run.status='success'}
          conditional 2 conditions [INTERNAL] UNSET {spanflow.conditional.status='success'}
            condition 0 [INTERNAL] ERROR: 'region' {error.type='KeyError', spanflow.condition.result=False, spanflow.condition.status='failed'}
            condition 1 [INTERNAL] UNSET {spanflow.condition.result=True, spanflow.condition.status='success'}
            workflow_step double [INTERNAL] UNSET {spanflow.step.status='success'}
    """)  # noqa: E501
    condition = span_named(span_capture, "condition 0")
    assert [event.name for event in condition.events] == ["exception"]


async def test_a_failure_inside_a_nested_workflow_is_an_error_all_the_way_up(
    span_capture: SpanCapture,
) -> None:
    inner = create_workflow(id="payment").then(charge).commit()
    workflow = create_workflow(id="order").then(double).then(inner).commit()

    await run(workflow, 5)

    assert tree(span_capture, "spanflow.*.status", "error.type", events=False) == expected(f"""
        invoke_workflow order [INTERNAL] ERROR: card declined for 10 EUR {{error.type='{__name__}.PaymentDeclinedError', spanflow.run.status='failed'}}
          workflow_step double [INTERNAL] UNSET {{spanflow.step.status='success'}}
          workflow_step payment [INTERNAL] ERROR: card declined for 10 EUR {{error.type='{__name__}.PaymentDeclinedError', spanflow.step.status='failed'}}
            invoke_workflow payment [INTERNAL] ERROR: card declined for 10 EUR {{error.type='{__name__}.PaymentDeclinedError', spanflow.run.status='failed'}}
              workflow_step charge [INTERNAL] ERROR: card declined for 10 EUR {{error.type='{__name__}.PaymentDeclinedError', spanflow.step.status='failed'}}
    """)  # noqa: E501


async def test_a_suspended_run_is_not_an_error(span_capture: SpanCapture) -> None:
    @step
    async def approve(ctx: StepContext[int]) -> int:
        ctx.suspend({"reason": "needs a manager"})

    workflow = create_workflow(id="expense").then(double).then(approve).commit()

    result = await run(workflow, 500)

    assert result.status == "suspended"
    assert tree(span_capture, "spanflow.*.status", events=False) == expected("""
        invoke_workflow expense [INTERNAL] UNSET {spanflow.run.status='suspended'}
          workflow_step double [INTERNAL] UNSET {spanflow.step.status='success'}
          workflow_step approve [INTERNAL] UNSET {spanflow.step.status='suspended'}
    """)


async def test_a_bail_ends_the_run_successfully_and_is_not_an_error(
    span_capture: SpanCapture,
) -> None:
    @step
    async def cached(ctx: StepContext[int]) -> int:
        ctx.bail(99)

    workflow = create_workflow(id="lookup").then(cached).then(double).commit()

    result = await run(workflow, 1)

    assert (result.status, result.result) == ("success", 99)
    bailed = tree(span_capture, "spanflow.*.status", "spanflow.*.bailed", events=False)
    assert bailed == expected("""
        invoke_workflow lookup [INTERNAL] UNSET {spanflow.run.status='success'}
          workflow_step cached [INTERNAL] UNSET {spanflow.run.bailed=True, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_a_canceled_run_is_not_an_error(span_capture: SpanCapture) -> None:
    started = asyncio.Event()

    @step
    async def wait_forever(ctx: StepContext[None]) -> None:
        started.set()
        await asyncio.Event().wait()

    workflow = create_workflow(id="long").then(wait_forever).then(double).commit()
    canceled = await workflow.create_run(run_id="run-1")
    task = asyncio.ensure_future(canceled.start())
    await started.wait()

    await canceled.cancel()

    assert (await task).status == "canceled"
    assert tree(span_capture, "spanflow.*.status") == expected("""
        invoke_workflow long [INTERNAL] UNSET {spanflow.run.status='canceled'}
          • workflow-start
          • workflow-canceled
          • workflow-finish
          workflow_step wait_forever [INTERNAL] UNSET {spanflow.step.status='canceled'}
            • workflow-step-start {spanflow.event.status='running'}
            • workflow-step-result {spanflow.event.status='canceled'}
    """)


async def test_a_run_aborted_from_inside_a_step_is_canceled_not_failed(
    span_capture: SpanCapture,
) -> None:
    @step
    async def stop_here(ctx: StepContext[int]) -> int:
        ctx.abort()
        return ctx.input_data

    workflow = create_workflow(id="stoppable").then(stop_here).then(double).commit()

    result = await run(workflow, 1)

    assert result.status == "canceled"
    assert tree(span_capture, "spanflow.*.status", events=False) == expected("""
        invoke_workflow stoppable [INTERNAL] UNSET {spanflow.run.status='canceled'}
          workflow_step stop_here [INTERNAL] UNSET {spanflow.step.status='success'}
    """)


@pytest.mark.span_capture(fake_clock=False)  # real timestamps: when things happened matters
async def test_the_run_spans_exception_is_stamped_when_the_step_failed_not_when_the_run_ended(
    span_capture: SpanCapture,
) -> None:
    @step
    async def slow_sibling(ctx: StepContext[int]) -> int:
        await asyncio.sleep(0.05)
        return ctx.input_data

    workflow = create_workflow(id="fan_out").parallel([charge, slow_sibling]).commit()

    await run(workflow, 5)

    def exception_time(name: str) -> int:
        (event,) = [e for e in span_named(span_capture, name).events if e.name == "exception"]
        return event.timestamp or 0

    failed_at = exception_time("workflow_step charge")
    run_span = span_named(span_capture, "invoke_workflow fan_out")
    assert exception_time("invoke_workflow fan_out") == failed_at
    assert (run_span.end_time or 0) - failed_at >= 40_000_000  # the run ended 50 ms later
