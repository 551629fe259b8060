"""Stream events are recorded on the span they belong to (or as correlated log records).

``workflow-start``/``-finish`` go on the run span; ``workflow-step-start``, ``-result``,
``-suspended``, ``-waiting`` and ``-output`` on the step span; ``workflow-step-progress`` on the
foreach loop span. Each carries the payload's scalar fields as ``spanflow.event.*`` and the
redacted payload JSON as ``spanflow.event.payload``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from spanflow_otel.testing import SpanCapture

from spanflow import (
    StepContext,
    TracingConfig,
    WorkflowEvent,
    create_workflow,
    step,
)

from .span_helpers import expected, run, span_named, traced, tree

# Timestamps and call ids change on every run; the tests below check them separately.
EVENT_FACTS = (
    "spanflow.event.id",
    "spanflow.event.status",
    "spanflow.event.workflow_status",
    "spanflow.event.current_index",
    "spanflow.event.completed_count",
    "spanflow.event.total_count",
    "spanflow.event.iteration_status",
)


@step
async def pack(ctx: StepContext[list[str]]) -> list[str]:
    await ctx.writer.write({"packed": len(ctx.input_data)})
    await ctx.writer.custom({"type": "data-progress", "status": "half way"})
    return ctx.input_data


@step
async def label(ctx: StepContext[str]) -> str:
    return f"label:{ctx.input_data}"


@step
async def approve(ctx: StepContext[list[str]]) -> list[str]:
    if ctx.resume_data is None:
        ctx.suspend({"items": len(ctx.input_data)})
    return ctx.input_data


def shipping() -> Any:
    return create_workflow(id="shipping").then(pack).sleep(0).foreach(label).then(approve).commit()


async def test_each_stream_event_is_an_event_of_the_span_it_belongs_to(
    span_capture: SpanCapture,
) -> None:
    await run(shipping(), ["a", "b"])

    assert tree(span_capture, *EVENT_FACTS) == expected("""
        invoke_workflow shipping [INTERNAL] UNSET
          • workflow-start
          • workflow-finish {spanflow.event.workflow_status='suspended'}
          workflow_step pack [INTERNAL] UNSET
            • workflow-step-start {spanflow.event.id='pack', spanflow.event.status='running'}
            • workflow-step-output
            • data-progress {spanflow.event.status='half way'}
            • workflow-step-result {spanflow.event.id='pack', spanflow.event.status='success'}
          sleep 0s [INTERNAL] UNSET
            • workflow-step-waiting {spanflow.event.id='sleep_1', spanflow.event.status='waiting'}
            • workflow-step-result {spanflow.event.id='sleep_1', spanflow.event.status='success'}
          loop foreach [INTERNAL] UNSET
            • workflow-step-start {spanflow.event.id='label', spanflow.event.status='running'}
            • workflow-step-progress {spanflow.event.completed_count=1, spanflow.event.current_index=0, spanflow.event.id='label', spanflow.event.iteration_status='success', spanflow.event.total_count=2}
            • workflow-step-progress {spanflow.event.completed_count=2, spanflow.event.current_index=1, spanflow.event.id='label', spanflow.event.iteration_status='success', spanflow.event.total_count=2}
            • workflow-step-result {spanflow.event.id='label', spanflow.event.status='success'}
            workflow_step label [INTERNAL] UNSET
            workflow_step label [INTERNAL] UNSET
          workflow_step approve [INTERNAL] UNSET
            • workflow-step-start {spanflow.event.id='approve', spanflow.event.status='running'}
            • workflow-step-suspended {spanflow.event.id='approve', spanflow.event.status='suspended'}
    """)  # noqa: E501


async def test_a_nested_workflow_records_its_events_on_its_own_run_and_step_spans(
    span_capture: SpanCapture,
) -> None:
    inner = create_workflow(id="inner").then(label).commit()
    outer = create_workflow(id="outer").then(inner).commit()

    await run(outer, "x")

    assert tree(span_capture, "spanflow.event.id", "spanflow.event.workflow_id") == expected("""
        invoke_workflow outer [INTERNAL] UNSET
          • workflow-start {spanflow.event.workflow_id='outer'}
          • workflow-finish
          workflow_step inner [INTERNAL] UNSET
            • workflow-step-start {spanflow.event.id='inner'}
            • workflow-step-result {spanflow.event.id='inner'}
            invoke_workflow inner [INTERNAL] UNSET
              • workflow-start {spanflow.event.workflow_id='inner'}
              • workflow-finish
              workflow_step label [INTERNAL] UNSET
                • workflow-step-start {spanflow.event.id='inner.label'}
                • workflow-step-result {spanflow.event.id='inner.label'}
    """)


async def test_event_attributes_are_the_payloads_scalar_fields_and_its_json(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="labels").then(label).commit()
    stream = (await workflow.create_run(run_id="run-1")).stream("parcel")
    streamed = [event async for event in stream]

    result_event = _streamed(streamed, "workflow-step-result").to_dict()["payload"]
    (recorded,) = [
        event
        for event in span_named(span_capture, "workflow_step label").events
        if event.name == "workflow-step-result"
    ]
    attributes = dict(recorded.attributes or {})
    assert json.loads(str(attributes.pop("spanflow.event.payload"))) == result_event
    assert attributes == {
        "spanflow.event.id": "label",
        "spanflow.event.step_name": "label",
        "spanflow.event.step_call_id": result_event["stepCallId"],
        "spanflow.event.status": "success",
        "spanflow.event.started_at": result_event["startedAt"],
        "spanflow.event.ended_at": result_event["endedAt"],
    }


async def test_every_streamed_event_is_recorded_with_the_same_payload(
    span_capture: SpanCapture,
) -> None:
    stream = (await shipping().create_run(run_id="run-1")).stream(["a", "b"])
    streamed = [event async for event in stream]

    recorded = [
        (event.name, json.loads(str((event.attributes or {})["spanflow.event.payload"])))
        for span in span_capture.spans
        for event in span.events
    ]
    assert sorted(recorded, key=repr) == sorted(
        [(event.type, event.to_dict().get("payload", event.to_dict())) for event in streamed],
        key=repr,
    )


@step
async def answer(ctx: StepContext[str]) -> str:
    """Writes chunks the way an agent step forwards its stream."""
    for chunk in (
        {"type": "text-start", "from": "AGENT", "payload": {"id": "t1"}},
        *(
            {"type": "text-delta", "from": "AGENT", "payload": {"id": "t1", "text": w}}
            for w in "abc"
        ),
        {"type": "text-end", "from": "AGENT", "payload": {"id": "t1"}},
    ):
        await ctx.writer.write(chunk)
    return "abc"


async def test_text_deltas_are_streamed_but_not_recorded_one_by_one(
    span_capture: SpanCapture,
) -> None:
    workflow = create_workflow(id="chat").then(answer).commit()

    stream = (await workflow.create_run(run_id="run-1")).stream("hi")
    streamed = [e.payload.to_dict()["output"]["type"] async for e in stream if e.from_ == "USER"]

    assert streamed == ["text-start", "text-delta", "text-delta", "text-delta", "text-end"]
    recorded = [
        json.loads(str((event.attributes or {})["spanflow.event.payload"]))["output"]["type"]
        for event in span_named(span_capture, "workflow_step answer").events
        if event.name == "workflow-step-output"
    ]
    assert recorded == ["text-start", "text-end"]


async def test_event_payloads_can_be_left_out(span_capture: SpanCapture) -> None:
    workflow = traced(
        create_workflow(id="labels").then(label).commit(), TracingConfig(event_payloads=False)
    )

    await run(workflow, "parcel")

    for span in span_capture.spans:
        for event in span.events:
            assert "spanflow.event.payload" not in (event.attributes or {})
    start = span_named(span_capture, "workflow_step label").events[0]
    assert (start.attributes or {}).get("spanflow.event.status") == "running"


@pytest.fixture
def log_records() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    """A logger provider recording log records in memory (never installed globally)."""
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def test_events_can_be_log_records_correlated_to_their_span_instead(
    span_capture: SpanCapture, log_records: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = log_records
    workflow = create_workflow(id="labels").then(label).commit()
    traced(workflow, TracingConfig(events="logs", logger_provider=provider))

    await run(workflow, "parcel")

    assert tree(span_capture) == expected("""
        invoke_workflow labels [INTERNAL] UNSET
          workflow_step label [INTERNAL] UNSET
    """)
    names = {
        span.context.span_id: span.name for span in span_capture.spans if span.context is not None
    }
    assert [_describe(record, names) for record in exporter.get_finished_logs()] == [
        ("workflow-start", "invoke_workflow labels", None),
        ("workflow-step-start", "workflow_step label", "running"),
        ("workflow-step-result", "workflow_step label", "success"),
        ("workflow-finish", "invoke_workflow labels", None),
    ]
    (trace_id,) = {span.context.trace_id for span in span_capture.spans if span.context}
    assert {record.log_record.trace_id for record in exporter.get_finished_logs()} == {trace_id}
    for record in exporter.get_finished_logs():
        assert "spanflow.event.payload" in (record.log_record.attributes or {})


async def test_events_can_be_turned_off(
    span_capture: SpanCapture, log_records: tuple[LoggerProvider, InMemoryLogRecordExporter]
) -> None:
    provider, exporter = log_records
    workflow = create_workflow(id="labels").then(label).commit()
    traced(workflow, TracingConfig(events="none", logger_provider=provider))

    await run(workflow, "parcel")

    assert tree(span_capture) == expected("""
        invoke_workflow labels [INTERNAL] UNSET
          workflow_step label [INTERNAL] UNSET
    """)
    assert exporter.get_finished_logs() == ()


def _describe(
    record: ReadableLogRecord, span_names: dict[int, str]
) -> tuple[str | None, str, object]:
    log = record.log_record
    assert log.span_id is not None
    attributes = log.attributes or {}
    return log.event_name, span_names[log.span_id], attributes.get("spanflow.event.status")


def _streamed(events: list[WorkflowEvent], event_type: str) -> WorkflowEvent:
    (event,) = [event for event in events if event.type == event_type]
    return event
