"""Suspend and resume: the resumed run continues the trace of the run it resumes.

The snapshot stores the run span's context with the run's tags, metadata and hide flags. A
resume without tracing options becomes a child of the original run span; with explicit options
the explicit parent wins and the resumed run span links to the original one. Either way the
resumed run keeps what the original run was tagged with, and hides what it hid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from spanflow_otel.testing import SpanCapture

from spanflow import (
    StepContext,
    TracingOptions,
    TracingOptionsError,
    Workflow,
    create_workflow,
    step,
)
from spanflow.storage import SqliteStorage

from .span_helpers import attribute, expected, spans_named, tree

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


@step
async def submit(ctx: StepContext[int]) -> int:
    return ctx.input_data


@step
async def approve(ctx: StepContext[int]) -> dict[str, Any]:
    if ctx.resume_data is None:
        ctx.suspend({"amount": ctx.input_data})
    return {"amount": ctx.input_data, "approved_by": ctx.resume_data}


def expense(storage: Any = None) -> Workflow:
    return create_workflow(id="expense", storage=storage).then(submit).then(approve).commit()


def run_spans(capture: SpanCapture) -> list[ReadableSpan]:
    """The run spans, in the order their runs started."""
    runs = spans_named(capture, "invoke_workflow expense")
    return sorted(runs, key=lambda span: span.start_time or 0)


def ids_of(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


async def test_a_resumed_run_is_a_child_of_the_original_run_span_in_the_same_trace(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    suspended = await started.start(120)

    resumed = await started.resume("manager")

    assert (suspended.status, resumed.status) == ("suspended", "success")
    shown = ("spanflow.*.status", "spanflow.run.resumed", "spanflow.resume_data")
    assert tree(span_capture, *shown, events=False) == expected("""
        invoke_workflow expense [INTERNAL] UNSET {spanflow.run.status='suspended'}
          workflow_step submit [INTERNAL] UNSET {spanflow.step.status='success'}
          workflow_step approve [INTERNAL] UNSET {spanflow.step.status='suspended'}
          invoke_workflow expense [INTERNAL] UNSET {spanflow.resume_data='"manager"', spanflow.run.resumed=True, spanflow.run.status='success'}
            workflow_step approve [INTERNAL] UNSET {spanflow.step.status='success'}
    """)  # noqa: E501
    original, continued = run_spans(span_capture)
    assert (suspended.trace_id, suspended.span_id) == ids_of(original)
    assert (resumed.trace_id, resumed.span_id) == ids_of(continued)
    assert resumed.trace_id == suspended.trace_id


async def test_each_resume_continues_from_the_run_span_before_it(span_capture: SpanCapture) -> None:
    @step
    async def second_approval(ctx: StepContext[dict[str, Any]]) -> str:
        if ctx.resume_data is None:
            ctx.suspend("finance")
        return f"{ctx.input_data['approved_by']} and {ctx.resume_data}"

    workflow = (
        create_workflow(id="expense").then(submit).then(approve).then(second_approval).commit()
    )
    started = await workflow.create_run(run_id="run-1")
    await started.start(5_000)

    await started.resume("manager")
    result = await started.resume("cfo", step="second_approval")

    assert result.result == "manager and cfo"
    assert tree(span_capture, "spanflow.run.status", events=False) == expected("""
        invoke_workflow expense [INTERNAL] UNSET {spanflow.run.status='suspended'}
          workflow_step submit [INTERNAL] UNSET
          workflow_step approve [INTERNAL] UNSET
          invoke_workflow expense [INTERNAL] UNSET {spanflow.run.status='suspended'}
            workflow_step approve [INTERNAL] UNSET
            workflow_step second_approval [INTERNAL] UNSET
            invoke_workflow expense [INTERNAL] UNSET {spanflow.run.status='success'}
              workflow_step second_approval [INTERNAL] UNSET
    """)


async def test_explicit_options_on_resume_win_and_link_to_the_original_run_span(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    await started.start(120)

    options = TracingOptions(trace_id=TRACE_ID, parent_span_id=SPAN_ID)
    resumed = await started.resume("manager", tracing_options=options)

    assert tree(span_capture, "spanflow.link", events=False) == expected(f"""
        invoke_workflow expense [INTERNAL] UNSET
          workflow_step submit [INTERNAL] UNSET
          workflow_step approve [INTERNAL] UNSET
        invoke_workflow expense [INTERNAL] UNSET (parent={SPAN_ID})
          ↔ link to invoke_workflow expense {{spanflow.link='resumed_from'}}
          workflow_step approve [INTERNAL] UNSET
    """)
    original, continued = run_spans(span_capture)
    (link,) = continued.links
    assert (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") == ids_of(original)
    assert resumed.trace_id == TRACE_ID
    assert (resumed.trace_id, resumed.span_id) == ids_of(continued)


async def test_a_trace_id_alone_on_resume_roots_the_resumed_run_there_with_a_link(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    await started.start(120)

    resumed = await started.resume("manager", tracing_options=TracingOptions(trace_id=TRACE_ID))

    _, continued = run_spans(span_capture)
    assert continued.parent is None
    assert resumed.trace_id == TRACE_ID
    assert [attribute(continued, "spanflow.run.resumed")] == [True]
    assert len(continued.links) == 1


async def test_a_resume_inside_a_web_request_continues_the_runs_trace_and_links_the_request(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    suspended = await started.start(120)

    with span_capture.tracer().start_as_current_span("POST /expenses/run-1/approve"):
        resumed = await started.resume("manager")

    assert resumed.trace_id == suspended.trace_id
    assert tree(span_capture, events=False) == expected("""
        invoke_workflow expense [INTERNAL] UNSET
          workflow_step submit [INTERNAL] UNSET
          workflow_step approve [INTERNAL] UNSET
          invoke_workflow expense [INTERNAL] UNSET
            ↔ link to POST /expenses/run-1/approve
            workflow_step approve [INTERNAL] UNSET
        POST /expenses/run-1/approve [INTERNAL] UNSET
    """)


async def test_a_resumed_run_keeps_the_original_tags_and_metadata_and_adds_new_ones(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    first = TracingOptions(tags=["finance"], metadata={"user": {"id": "u-42"}})
    await started.start(120, tracing_options=first)

    again = TracingOptions(tags=["approved"], metadata={"approver": "m-7"})
    await started.resume("manager", tracing_options=again)

    assert tree(span_capture, "spanflow.tag*", "spanflow.metadata.*", events=False) == expected("""
        invoke_workflow expense [INTERNAL] UNSET {spanflow.metadata.user.id='u-42', spanflow.tag.finance=True, spanflow.tags=['finance']}
          workflow_step submit [INTERNAL] UNSET {spanflow.metadata.user.id='u-42', spanflow.tag.finance=True, spanflow.tags=['finance']}
          workflow_step approve [INTERNAL] UNSET {spanflow.metadata.user.id='u-42', spanflow.tag.finance=True, spanflow.tags=['finance']}
          invoke_workflow expense [INTERNAL] UNSET {spanflow.metadata.approver='m-7', spanflow.metadata.user.id='u-42', spanflow.tag.approved=True, spanflow.tag.finance=True, spanflow.tags=['finance', 'approved']}
            workflow_step approve [INTERNAL] UNSET {spanflow.metadata.approver='m-7', spanflow.metadata.user.id='u-42', spanflow.tag.approved=True, spanflow.tag.finance=True, spanflow.tags=['finance', 'approved']}
    """)  # noqa: E501


async def test_a_resumed_run_keeps_the_original_tags_without_options(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    await started.start(120, tracing_options=TracingOptions(tags=["finance"]))

    await started.resume("manager")

    for span in span_capture.spans:
        assert attribute(span, "spanflow.tags") == ["finance"], span.name


async def test_a_resumed_run_keeps_hiding_what_the_original_run_hid(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    hidden = TracingOptions(hide_input=True, hide_output=True)
    await started.start(120, tracing_options=hidden)

    await started.resume("manager")

    for span in span_capture.spans:
        recorded = {key for key in span.attributes or {} if key.startswith("spanflow.")}
        assert not recorded & {"spanflow.input", "spanflow.output", "spanflow.resume_data"}
        for event in span.events:
            assert "spanflow.event.payload" not in (event.attributes or {})


async def test_resume_stream_exposes_the_ids_of_the_resumed_run_span(
    span_capture: SpanCapture,
) -> None:
    started = await expense().create_run(run_id="run-1")
    await started.start(120)

    stream = started.resume_stream("manager")
    result = await stream.result

    _, continued = run_spans(span_capture)
    assert (stream.trace_id, stream.span_id) == ids_of(continued)
    assert (result.trace_id, result.span_id) == ids_of(continued)


async def test_a_run_restored_from_storage_resumes_into_the_same_trace(
    span_capture: SpanCapture, tmp_path: Path
) -> None:
    async with SqliteStorage(tmp_path / "runs.db") as storage:
        suspended = await (await expense(storage).create_run(run_id="run-1")).start(120)

        # Another process: the same workflow definition, a fresh object, the same database.
        restored = await expense(storage).create_run(run_id="run-1")
        resumed = await restored.resume("manager")

    assert resumed.trace_id == suspended.trace_id
    original, continued = run_spans(span_capture)
    assert continued.parent is not None
    assert ids_of(original) == (
        f"{continued.parent.trace_id:032x}",
        f"{continued.parent.span_id:016x}",
    )


async def test_a_suspended_nested_workflow_resumes_under_its_step_span(
    span_capture: SpanCapture,
) -> None:
    inner = create_workflow(id="approval").then(approve).commit()
    workflow = create_workflow(id="expense").then(submit).then(inner).commit()
    started = await workflow.create_run(run_id="run-1")
    await started.start(120)

    await started.resume("manager", step="approval.approve")

    assert tree(span_capture, "spanflow.*.status", events=False) == expected("""
        invoke_workflow expense [INTERNAL] UNSET {spanflow.run.status='suspended'}
          workflow_step submit [INTERNAL] UNSET {spanflow.step.status='success'}
          workflow_step approval [INTERNAL] UNSET {spanflow.step.status='suspended'}
            invoke_workflow approval [INTERNAL] UNSET {spanflow.run.status='suspended'}
              workflow_step approve [INTERNAL] UNSET {spanflow.step.status='suspended'}
          invoke_workflow expense [INTERNAL] UNSET {spanflow.run.status='success'}
            workflow_step approval [INTERNAL] UNSET {spanflow.step.status='success'}
              invoke_workflow approval [INTERNAL] UNSET {spanflow.run.status='success'}
                workflow_step approve [INTERNAL] UNSET {spanflow.step.status='success'}
    """)


async def test_strict_options_on_resume_raise_before_anything_runs(
    span_capture: SpanCapture,
) -> None:
    workflow = expense()
    started = await workflow.create_run(run_id="run-1")
    await started.start(120)
    spans_before = len(span_capture.spans)

    with pytest.raises(TracingOptionsError, match="traceparent"):
        await started.resume(
            "manager", tracing_options=TracingOptions(traceparent="garbage", strict=True)
        )

    assert len(span_capture.spans) == spans_before
    stored = await workflow.storage.get_run("run-1")
    assert stored is not None
    assert stored.status == "suspended"
