"""Spans opened by user code nest under the step that runs it, and keep their names.

The step span is live and current while the step runs, so ``ctx.tracing.span(...)``, plain
OpenTelemetry code and auto-instrumented libraries (a database or HTTP client) all open their
spans under it, in async and sync steps alike.
"""

from __future__ import annotations

from opentelemetry import trace
from spanflow_otel.testing import SpanCapture

from spanflow import (
    ConditionContext,
    StepContext,
    TracingConfig,
    TracingOptions,
    create_step,
    create_workflow,
    step,
)

from .span_helpers import expected, run, span_named, traced, tree

library = trace.get_tracer("a.database.client")
"""A tracer as an instrumented library holds it: got once, at import time."""


@step
async def fetch_prices(ctx: StepContext[str]) -> float:
    with (
        ctx.tracing.span("fetch prices", attributes={"market": ctx.input_data}),
        library.start_as_current_span("SELECT prices"),
    ):
        return 9.5


async def test_ctx_tracing_span_opens_a_named_child_of_the_step_span(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="pricing").then(fetch_prices).commit()

    await run(workflow, "EU", options=TracingOptions(tags=["beta"]))

    shown = ("market", "spanflow.run.id", "spanflow.workflow.id", "spanflow.tag.*")
    assert tree(span_capture, *shown, events=False) == expected("""
        invoke_workflow pricing [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.tag.beta=True, spanflow.workflow.id='pricing'}
          workflow_step fetch_prices [INTERNAL] UNSET {spanflow.run.id='run-1', spanflow.tag.beta=True, spanflow.workflow.id='pricing'}
            fetch prices [INTERNAL] UNSET {market='EU', spanflow.run.id='run-1', spanflow.tag.beta=True, spanflow.workflow.id='pricing'}
              SELECT prices [INTERNAL] UNSET
    """)  # noqa: E501


async def test_current_span_is_the_step_span(span_capture: SpanCapture) -> None:
    @step
    async def annotate(ctx: StepContext[str]) -> str:
        ctx.tracing.current_span.set_attribute("order.id", ctx.input_data)
        ctx.tracing.current_span.add_event("cache miss", {"key": ctx.input_data})
        return ctx.input_data

    workflow = create_workflow(id="orders").then(annotate).commit()

    await run(workflow, "o-17")

    assert tree(span_capture, "order.id", "key", "spanflow.event.id") == expected("""
        invoke_workflow orders [INTERNAL] UNSET
          • workflow-start
          • workflow-finish
          workflow_step annotate [INTERNAL] UNSET {order.id='o-17'}
            • workflow-step-start {spanflow.event.id='annotate'}
            • cache miss {key='o-17'}
            • workflow-step-result {spanflow.event.id='annotate'}
    """)


async def test_plain_opentelemetry_code_in_an_async_step_nests_under_the_step(
    span_capture: SpanCapture,
) -> None:
    @step
    async def call_api(ctx: StepContext[None]) -> str:
        with library.start_as_current_span("GET /rates"):
            assert trace.get_current_span().is_recording()
        return "ok"

    workflow = create_workflow(id="rates").then(call_api).commit()

    await run(workflow)

    assert tree(span_capture, events=False) == expected("""
        invoke_workflow rates [INTERNAL] UNSET
          workflow_step call_api [INTERNAL] UNSET
            GET /rates [INTERNAL] UNSET
    """)


async def test_plain_opentelemetry_code_in_a_sync_step_nests_under_the_step(
    span_capture: SpanCapture,
) -> None:
    def call_api(ctx: StepContext[None]) -> str:  # runs in a worker thread
        with library.start_as_current_span("GET /rates"):
            return "ok"

    workflow = create_workflow(id="rates").then(create_step(id="call_api", execute=call_api))

    await run(workflow.commit())

    assert tree(span_capture, events=False) == expected("""
        invoke_workflow rates [INTERNAL] UNSET
          workflow_step call_api [INTERNAL] UNSET
            GET /rates [INTERNAL] UNSET
    """)


async def test_user_spans_of_concurrent_steps_nest_under_their_own_step(
    span_capture: SpanCapture,
) -> None:
    @step
    async def eu(ctx: StepContext[None]) -> str:
        with ctx.tracing.span("query eu"):
            return "eu"

    @step
    async def us(ctx: StepContext[None]) -> str:
        with ctx.tracing.span("query us"):
            return "us"

    workflow = create_workflow(id="regions").parallel([eu, us]).commit()

    await run(workflow)

    assert tree(span_capture, events=False) == expected("""
        invoke_workflow regions [INTERNAL] UNSET
          parallel 2 branches [INTERNAL] UNSET
            workflow_step eu [INTERNAL] UNSET
              query eu [INTERNAL] UNSET
            workflow_step us [INTERNAL] UNSET
              query us [INTERNAL] UNSET
    """)


async def test_user_spans_of_foreach_iterations_and_nested_workflows_nest_under_their_step(
    span_capture: SpanCapture,
) -> None:
    inner = create_workflow(id="quote").then(fetch_prices).commit()
    workflow = create_workflow(id="quotes").foreach(inner, concurrency=2).commit()

    await run(workflow, ["EU", "US"])

    assert tree(span_capture, "market", "spanflow.foreach.index", events=False) == expected("""
        invoke_workflow quotes [INTERNAL] UNSET
          loop foreach [INTERNAL] UNSET
            workflow_step quote [INTERNAL] UNSET {spanflow.foreach.index=0}
              invoke_workflow quote [INTERNAL] UNSET
                workflow_step fetch_prices [INTERNAL] UNSET
                  fetch prices [INTERNAL] UNSET {market='EU'}
                    SELECT prices [INTERNAL] UNSET
            workflow_step quote [INTERNAL] UNSET {spanflow.foreach.index=1}
              invoke_workflow quote [INTERNAL] UNSET
                workflow_step fetch_prices [INTERNAL] UNSET
                  fetch prices [INTERNAL] UNSET {market='US'}
                    SELECT prices [INTERNAL] UNSET
    """)


async def test_a_user_span_that_raises_records_the_error_and_fails_the_step(
    span_capture: SpanCapture,
) -> None:
    @step
    async def fetch(ctx: StepContext[None]) -> None:
        with ctx.tracing.span("fetch prices"):
            raise TimeoutError("prices service timed out")

    workflow = create_workflow(id="pricing").then(fetch).commit()

    await run(workflow)

    assert tree(span_capture, "spanflow.step.status", "exception.type") == expected("""
        invoke_workflow pricing [INTERNAL] ERROR: prices service timed out
          • workflow-start
          • workflow-finish
          • exception {exception.type='TimeoutError'}
          workflow_step fetch [INTERNAL] ERROR: prices service timed out {spanflow.step.status='failed'}
            • workflow-step-start
            • workflow-step-result
            • exception {exception.type='TimeoutError'}
            fetch prices [INTERNAL] ERROR: TimeoutError: prices service timed out
              • exception {exception.type='TimeoutError'}
    """)  # noqa: E501


async def test_ctx_tracing_works_when_tracing_is_off(span_capture: SpanCapture) -> None:
    seen: list[bool] = []

    @step
    async def fetch(ctx: StepContext[None]) -> str:
        with ctx.tracing.span("fetch prices") as span:
            seen.append(span.is_recording())
        seen.append(ctx.tracing.current_span.is_recording())
        return "ok"

    workflow = traced(
        create_workflow(id="pricing").then(fetch).commit(), TracingConfig(enabled=False)
    )

    result = await run(workflow)

    assert result.status == "success"
    assert seen == [False, False]
    assert span_capture.spans == ()


def _condition_looks_up_a_rule(ctx: ConditionContext) -> bool:
    with library.start_as_current_span("SELECT rule"):
        return True


async def test_a_span_opened_in_a_branch_condition_nests_under_the_condition_span(
    span_capture: SpanCapture,
) -> None:
    workflow = (
        create_workflow(id="route").branch([(_condition_looks_up_a_rule, fetch_prices)]).commit()
    )

    await run(workflow, "EU")

    assert tree(span_capture, events=False) == expected("""
        invoke_workflow route [INTERNAL] UNSET
          conditional 1 conditions [INTERNAL] UNSET
            condition 0 [INTERNAL] UNSET
              SELECT rule [INTERNAL] UNSET
            workflow_step fetch_prices [INTERNAL] UNSET
              fetch prices [INTERNAL] UNSET
                SELECT prices [INTERNAL] UNSET
    """)


async def test_a_span_opened_in_a_loop_condition_nests_under_the_loop_span(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="poll").dountil(fetch_prices, _condition_looks_up_a_rule).commit()

    await run(workflow, "EU")

    assert tree(span_capture, events=False) == expected("""
        invoke_workflow poll [INTERNAL] UNSET
          loop dountil [INTERNAL] UNSET
            workflow_step fetch_prices [INTERNAL] UNSET
              fetch prices [INTERNAL] UNSET
                SELECT prices [INTERNAL] UNSET
            SELECT rule [INTERNAL] UNSET
    """)


async def test_user_spans_keep_their_own_attribute_on_a_clash(span_capture: SpanCapture) -> None:
    @step
    async def relabel(ctx: StepContext[None]) -> None:
        with ctx.tracing.span("sub-run", attributes={"spanflow.run.id": "mine"}):
            pass

    workflow = create_workflow(id="clash").then(relabel).commit()

    await run(workflow)

    assert (span_named(span_capture, "sub-run").attributes or {})["spanflow.run.id"] == "mine"


def _delay_from_a_lookup(ctx: ConditionContext) -> float:
    with library.start_as_current_span("SELECT delay"):
        return 0


async def test_a_span_opened_in_a_sleep_callable_belongs_to_the_run(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="backoff").sleep(_delay_from_a_lookup).commit()

    await run(workflow)

    # The sleep span is named after the seconds, so it opens after the callable has run.
    assert tree(span_capture, events=False) == expected("""
        invoke_workflow backoff [INTERNAL] UNSET
          SELECT delay [INTERNAL] UNSET
          sleep 0s [INTERNAL] UNSET
    """)


async def test_suspending_inside_a_user_span_is_not_an_error(span_capture: SpanCapture) -> None:
    @step
    async def ask(ctx: StepContext[None]) -> str:
        with ctx.tracing.span("prepare question"):
            if ctx.resume_data is None:
                ctx.suspend("which market?")
        return str(ctx.resume_data)

    workflow = create_workflow(id="questions").then(ask).commit()

    result = await run(workflow)

    assert result.status == "suspended"
    assert tree(span_capture, "spanflow.step.status", events=False) == expected("""
        invoke_workflow questions [INTERNAL] UNSET
          workflow_step ask [INTERNAL] UNSET {spanflow.step.status='suspended'}
            prepare question [INTERNAL] UNSET
    """)
    assert span_named(span_capture, "prepare question").events == ()
