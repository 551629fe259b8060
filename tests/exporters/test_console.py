"""The console exporter prints a run's span tree once, when the run's root span ends."""

from __future__ import annotations

import io

import pytest
import spanflow_otel as so
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    set_span_in_context,
)
from spanflow_otel.console import format_duration

from .helpers import MakeTelemetry

MS = 1_000_000


def console(max_value_length: int = 40) -> tuple[Tracer, io.StringIO]:
    stream = io.StringIO()
    options = so.ConsoleOptions(stream=stream, max_value_length=max_value_length)
    exporter = so.SpanTreeConsoleExporter(options)
    provider = TracerProvider(id_generator=so.SequentialIdGenerator(), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("t"), stream


def test_the_tree_is_printed_when_the_root_ends_with_inherited_attributes_shown_once() -> None:
    tracer, stream = console()
    common = {"spanflow.run.id": "r-1", "spanflow.workflow.id": "order"}
    run = tracer.start_span("invoke_workflow order", attributes=common, start_time=0)
    run_context = set_span_in_context(run)
    fetch = tracer.start_span(
        "workflow_step fetch",
        context=run_context,
        attributes={**common, "spanflow.step.id": "fetch", "spanflow.input": "{...}"},
        start_time=1 * MS,
    )
    http = tracer.start_span("GET /prices", context=set_span_in_context(fetch), start_time=2 * MS)
    http.end(end_time=182 * MS)
    fetch.end(end_time=211 * MS)
    pay = tracer.start_span(
        "workflow_step pay",
        context=run_context,
        attributes={**common, "spanflow.step.id": "pay", "error.type": "CardError"},
        start_time=212 * MS,
    )
    pay.set_status(Status(StatusCode.ERROR, "card declined"))
    pay.end(end_time=1_192 * MS)
    assert stream.getvalue() == ""

    run.end(end_time=1_200 * MS)
    assert stream.getvalue() == (
        "── trace 00000000000000000000000000000001 ──\n"
        "invoke_workflow order  1.20s  {run.id=r-1, workflow.id=order}\n"
        "├─ workflow_step fetch  210ms  {step.id=fetch}\n"
        "│  └─ GET /prices  180ms\n"
        "└─ workflow_step pay  980ms  ERROR: card declined  {error.type=CardError, step.id=pay}\n"
    )


def test_a_span_with_a_remote_parent_is_printed_as_the_root_of_its_run() -> None:
    tracer, stream = console(max_value_length=8)
    remote = SpanContext(0xAB, 0xCD, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    run = tracer.start_span(
        "invoke_workflow w",
        context=set_span_in_context(NonRecordingSpan(remote)),
        attributes={"spanflow.metadata.note": "a rather long value"},
        start_time=0,
    )
    run.end(end_time=850_000)
    assert stream.getvalue() == (
        "── trace 000000000000000000000000000000ab (parent span 00000000000000cd) ──\n"
        "invoke_workflow w  850µs  {metadata.note=a rathe…}\n"
    )


def test_two_runs_in_one_trace_are_printed_separately() -> None:
    tracer, stream = console()
    remote = SpanContext(0xAB, 0xCD, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    incoming = set_span_in_context(NonRecordingSpan(remote))
    first = tracer.start_span("first", context=incoming, start_time=0)
    second = tracer.start_span("second", context=incoming, start_time=0)
    tracer.start_span("second's step", context=set_span_in_context(second), start_time=0).end(
        end_time=MS
    )
    first.end(end_time=2 * MS)
    assert "second's step" not in stream.getvalue()
    second.end(end_time=3 * MS)
    assert stream.getvalue().count("── trace") == 2
    assert stream.getvalue().endswith("second  3.0ms\n└─ second's step  1.0ms\n")


def test_configure_wires_the_console_to_stderr_by_default(
    capsys: pytest.CaptureFixture[str], make_telemetry: MakeTelemetry
) -> None:
    telemetry = make_telemetry(export=None, console=True)
    telemetry.tracer("t").start_span("hello").end()
    assert "── trace " in capsys.readouterr().err


def test_durations_are_human_sized() -> None:
    assert [
        format_duration(n) for n in (850_000, 12_300_000, 210 * MS, 1_200 * MS, 123 * 10**9)
    ] == [
        "850µs",
        "12.3ms",
        "210ms",
        "1.20s",
        "2m03s",
    ]
