"""Every control-flow construct is a live span tree: run, steps, blocks, loops, nested runs.

The trees show names, nesting, kinds, statuses and the key attributes of §2 of the tracing
spec; stream events have their own tests (``test_span_events.py``), so they are left out here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from spanflow_otel.testing import SpanCapture

from spanflow import (
    ConditionContext,
    NonRetryableError,
    RetryConfig,
    StepContext,
    TracingOptions,
    create_step,
    create_workflow,
    step,
)

from .span_helpers import CONTROL_FLOW, expected, run, tree


@step
async def double(ctx: StepContext[int]) -> int:
    return ctx.input_data * 2


@step
async def increment(ctx: StepContext[int]) -> int:
    return ctx.input_data + 1


@step
async def describe(ctx: StepContext[int]) -> str:
    return f"{ctx.input_data}!"


def control_flow(capture: SpanCapture) -> str:
    return tree(capture, *CONTROL_FLOW, events=False)


async def test_a_run_is_a_root_span_with_one_child_span_per_step(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="sequence").then(double).then(increment).commit()

    result = await run(workflow, 5)

    assert result.result == 11
    assert control_flow(span_capture) == expected("""
        invoke_workflow sequence [INTERNAL] UNSET {spanflow.run.status='success'}
          workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
          workflow_step increment [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_run_and_step_spans_carry_ids_input_and_output(span_capture: SpanCapture) -> None:
    workflow = create_workflow(id="sequence").then(double).commit()

    started = await workflow.create_run(run_id="run-1", resource_id="user-7")
    await started.start(5)

    assert tree(span_capture, "spanflow.*.id", "spanflow.input", "spanflow.output") == expected("""
        invoke_workflow sequence [INTERNAL] UNSET {spanflow.input='5', spanflow.output='10', spanflow.resource.id='user-7', spanflow.run.id='run-1', spanflow.workflow.id='sequence'}
          • workflow-start
          • workflow-finish
          workflow_step double [INTERNAL] UNSET {spanflow.input='5', spanflow.output='10', spanflow.run.id='run-1', spanflow.step.id='double', spanflow.workflow.id='sequence'}
            • workflow-step-start {spanflow.event.id='double'}
            • workflow-step-result {spanflow.event.id='double'}
    """)  # noqa: E501


async def test_a_mapping_step_is_a_step_span(span_capture: SpanCapture) -> None:
    async def to_text(ctx: StepContext[int]) -> str:
        return f"n={ctx.input_data}"

    workflow = create_workflow(id="mapping").then(double).map(to_text, id="to_text").commit()

    await run(workflow, 2)

    assert control_flow(span_capture) == expected("""
        invoke_workflow mapping [INTERNAL] UNSET {spanflow.run.status='success'}
          workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
          workflow_step to_text [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_parallel_steps_are_children_of_one_parallel_span(span_capture: SpanCapture) -> None:
    # Branch spans start in declaration order (each starts before its step first awaits), and
    # the tree orders siblings by start time, so the order below is deterministic.
    workflow = create_workflow(id="fan_out").parallel([double, increment]).commit()

    result = await run(workflow, 5)

    assert result.result == {"double": 10, "increment": 6}
    assert control_flow(span_capture) == expected("""
        invoke_workflow fan_out [INTERNAL] UNSET {spanflow.run.status='success'}
          parallel 2 branches [INTERNAL] UNSET {spanflow.parallel.status='success', spanflow.parallel.steps=['double', 'increment']}
            workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
            workflow_step increment [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_a_branch_has_a_span_per_condition_and_runs_the_selected_steps_under_it(
    span_capture: SpanCapture,
) -> None:
    def is_big(ctx: ConditionContext) -> bool:
        return bool(ctx.input_data > 10)

    def is_small(ctx: ConditionContext) -> bool:
        return bool(ctx.input_data <= 10)

    workflow = (
        create_workflow(id="route").branch([(is_big, double), (is_small, increment)]).commit()
    )

    result = await run(workflow, 3)

    assert result.result == {"increment": 4}
    assert control_flow(span_capture) == expected("""
        invoke_workflow route [INTERNAL] UNSET {spanflow.run.status='success'}
          conditional 2 conditions [INTERNAL] UNSET {spanflow.branch.selected_steps=['increment'], spanflow.conditional.status='success'}
            condition 0 [INTERNAL] UNSET {spanflow.condition.index=0, spanflow.condition.result=False, spanflow.condition.status='success'}
            condition 1 [INTERNAL] UNSET {spanflow.condition.index=1, spanflow.condition.result=True, spanflow.condition.status='success'}
            workflow_step increment [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_a_branch_with_no_true_condition_selects_no_steps(span_capture: SpanCapture) -> None:
    workflow = create_workflow(id="route").branch([(lambda ctx: False, double)]).commit()

    await run(workflow, 3)

    assert control_flow(span_capture) == expected("""
        invoke_workflow route [INTERNAL] UNSET {spanflow.run.status='success'}
          conditional 1 conditions [INTERNAL] UNSET {spanflow.branch.selected_steps=[], spanflow.conditional.status='success'}
            condition 0 [INTERNAL] UNSET {spanflow.condition.index=0, spanflow.condition.result=False, spanflow.condition.status='success'}
    """)  # noqa: E501


async def test_foreach_is_a_loop_span_with_one_step_span_per_item(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="each").foreach(double, concurrency=2).commit()

    result = await run(workflow, [1, 2, 3])

    assert result.result == [2, 4, 6]
    assert control_flow(span_capture) == expected("""
        invoke_workflow each [INTERNAL] UNSET {spanflow.run.status='success'}
          loop foreach [INTERNAL] UNSET {spanflow.loop.concurrency=2, spanflow.loop.iterations=3, spanflow.loop.status='success', spanflow.loop.type='foreach'}
            workflow_step double [INTERNAL] UNSET {spanflow.foreach.index=0, spanflow.step.attempt=1, spanflow.step.status='success'}
            workflow_step double [INTERNAL] UNSET {spanflow.foreach.index=1, spanflow.step.attempt=1, spanflow.step.status='success'}
            workflow_step double [INTERNAL] UNSET {spanflow.foreach.index=2, spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_dountil_is_a_loop_span_with_one_step_span_per_iteration(
    span_capture: SpanCapture,
) -> None:
    workflow = (
        create_workflow(id="grow").dountil(double, lambda ctx: bool(ctx.input_data >= 8)).commit()
    )

    result = await run(workflow, 1)

    assert result.result == 8
    assert control_flow(span_capture) == expected("""
        invoke_workflow grow [INTERNAL] UNSET {spanflow.run.status='success'}
          loop dountil [INTERNAL] UNSET {spanflow.loop.iterations=3, spanflow.loop.status='success', spanflow.loop.type='dountil'}
            workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
            workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
            workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_dowhile_is_a_loop_span_too(span_capture: SpanCapture) -> None:
    workflow = (
        create_workflow(id="count")
        .dowhile(increment, lambda ctx: bool(ctx.input_data < 2))
        .commit()
    )

    await run(workflow, 0)

    assert control_flow(span_capture) == expected("""
        invoke_workflow count [INTERNAL] UNSET {spanflow.run.status='success'}
          loop dowhile [INTERNAL] UNSET {spanflow.loop.iterations=2, spanflow.loop.status='success', spanflow.loop.type='dowhile'}
            workflow_step increment [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
            workflow_step increment [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_sleep_and_sleep_until_are_sleep_spans(span_capture: SpanCapture) -> None:
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    workflow = create_workflow(id="nap").sleep(0).sleep_until(long_ago).then(double).commit()

    await run(workflow, 1)

    assert control_flow(span_capture) == expected("""
        invoke_workflow nap [INTERNAL] UNSET {spanflow.run.status='success'}
          sleep 0s [INTERNAL] UNSET {spanflow.sleep.seconds=0.0, spanflow.sleep.status='success'}
          sleep 0s [INTERNAL] UNSET {spanflow.sleep.seconds=0.0, spanflow.sleep.status='success'}
          workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_a_nested_workflow_is_a_step_span_then_the_inner_run_span_then_its_steps(
    span_capture: SpanCapture,
) -> None:
    inner = create_workflow(id="inner").then(double).then(increment).commit()
    outer = create_workflow(id="outer").then(inner).then(describe).commit()

    result = await run(outer, 4)

    assert result.result == "9!"
    assert tree(
        span_capture, *CONTROL_FLOW, "spanflow.workflow.id", "spanflow.run.id", events=False
    ) == expected("""
        invoke_workflow outer [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.run.status='success', spanflow.workflow.id='outer'}
          workflow_step inner [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.step.attempt=1, spanflow.step.status='success', spanflow.workflow.id='outer'}
            invoke_workflow inner [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.run.status='success', spanflow.workflow.id='inner', spanflow.workflow.nested=True}
              workflow_step double [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.step.attempt=1, spanflow.step.status='success', spanflow.workflow.id='inner'}
              workflow_step increment [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.step.attempt=1, spanflow.step.status='success', spanflow.workflow.id='inner'}
          workflow_step describe [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.step.attempt=1, spanflow.step.status='success', spanflow.workflow.id='outer'}
    """)  # noqa: E501


async def test_constructs_nest_inside_each_other(span_capture: SpanCapture) -> None:
    inner = create_workflow(id="inner").parallel([double, increment]).commit()
    workflow = create_workflow(id="outer").foreach(inner).commit()

    await run(workflow, [1, 2])

    assert control_flow(span_capture) == expected("""
        invoke_workflow outer [INTERNAL] UNSET {spanflow.run.status='success'}
          loop foreach [INTERNAL] UNSET {spanflow.loop.concurrency=1, spanflow.loop.iterations=2, spanflow.loop.status='success', spanflow.loop.type='foreach'}
            workflow_step inner [INTERNAL] UNSET {spanflow.foreach.index=0, spanflow.step.attempt=1, spanflow.step.status='success'}
              invoke_workflow inner [INTERNAL] UNSET {spanflow.run.status='success', spanflow.workflow.nested=True}
                parallel 2 branches [INTERNAL] UNSET {spanflow.parallel.status='success', spanflow.parallel.steps=['double', 'increment']}
                  workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
                  workflow_step increment [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
            workflow_step inner [INTERNAL] UNSET {spanflow.foreach.index=1, spanflow.step.attempt=1, spanflow.step.status='success'}
              invoke_workflow inner [INTERNAL] UNSET {spanflow.run.status='success', spanflow.workflow.nested=True}
                parallel 2 branches [INTERNAL] UNSET {spanflow.parallel.status='success', spanflow.parallel.steps=['double', 'increment']}
                  workflow_step double [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
                  workflow_step increment [INTERNAL] UNSET {spanflow.step.attempt=1, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_each_retry_attempt_is_its_own_span(span_capture: SpanCapture) -> None:
    attempts: list[int] = []

    async def flaky(ctx: StepContext[int]) -> int:
        attempts.append(ctx.retry_count)
        if len(attempts) < 3:
            raise ConnectionError(f"attempt {len(attempts)} failed")
        return ctx.input_data

    workflow = create_workflow(id="retrying", retry_config=RetryConfig(attempts=2))
    workflow = workflow.then(create_step(id="fetch", execute=flaky)).commit()

    result = await run(workflow, 7)

    assert result.status == "success"
    assert tree(span_capture, *CONTROL_FLOW, "error.type", events=False) == expected("""
        invoke_workflow retrying [INTERNAL] UNSET {spanflow.run.status='success'}
          workflow_step fetch [INTERNAL] ERROR: attempt 1 failed {error.type='ConnectionError', spanflow.step.attempt=1, spanflow.step.status='failed'}
          workflow_step fetch [INTERNAL] ERROR: attempt 2 failed {error.type='ConnectionError', spanflow.step.attempt=2, spanflow.step.status='failed'}
          workflow_step fetch [INTERNAL] UNSET {spanflow.step.attempt=3, spanflow.step.status='success'}
    """)  # noqa: E501


async def test_a_non_retryable_error_ends_the_attempts_at_once(span_capture: SpanCapture) -> None:
    async def refuse(ctx: StepContext[int]) -> int:
        raise NonRetryableError("card declined")

    workflow = create_workflow(id="charge", retry_config=RetryConfig(attempts=3))
    workflow = workflow.then(create_step(id="charge", execute=refuse)).commit()

    await run(workflow, 1)

    assert tree(span_capture, *CONTROL_FLOW, "error.type", events=False) == expected("""
        invoke_workflow charge [INTERNAL] ERROR: card declined {error.type='spanflow.errors.NonRetryableError', spanflow.run.status='failed'}
          workflow_step charge [INTERNAL] ERROR: card declined {error.type='spanflow.errors.NonRetryableError', spanflow.step.attempt=1, spanflow.step.status='failed'}
    """)  # noqa: E501


async def test_concurrent_runs_keep_their_spans_apart(span_capture: SpanCapture) -> None:
    # Run "a" waits inside its step until run "b" has run its step: the runs interleave.
    b_done = asyncio.Event()

    @step
    async def hand_over(ctx: StepContext[str]) -> str:
        if ctx.input_data == "a":
            await b_done.wait()
        else:
            b_done.set()
        with ctx.tracing.span(f"work for {ctx.input_data}"):
            return ctx.input_data

    workflow = create_workflow(id="interleaved").then(hand_over).commit()

    await asyncio.gather(
        run(workflow, "a", run_id="run-a", options=TracingOptions(tags=["a"])),
        run(workflow, "b", run_id="run-b", options=TracingOptions(tags=["b"])),
    )

    assert tree(span_capture, "spanflow.run.id", "spanflow.tags", events=False) == expected("""
        invoke_workflow interleaved [INTERNAL] UNSET {spanflow.run.id='run-a', spanflow.tags=['a']}
          workflow_step hand_over [INTERNAL] UNSET {spanflow.run.id='run-a', spanflow.tags=['a']}
            work for a [INTERNAL] UNSET {spanflow.run.id='run-a', spanflow.tags=['a']}
        invoke_workflow interleaved [INTERNAL] UNSET {spanflow.run.id='run-b', spanflow.tags=['b']}
          workflow_step hand_over [INTERNAL] UNSET {spanflow.run.id='run-b', spanflow.tags=['b']}
            work for b [INTERNAL] UNSET {spanflow.run.id='run-b', spanflow.tags=['b']}
    """)
