"""The id generators put a root span in the trace the engine requested, and only then."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import spanflow_otel as so
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import TraceFlags

from spanflow.tracing._requested import REQUESTED_TRACE_ID
from tests.support.otlp_receiver import OtlpReceiver

from .helpers import MakeTelemetry

REQUESTED = 0x4BF92F3577B34DA6A3CE929D0E0E4736


@contextmanager
def requested(trace_id: int | None) -> Iterator[None]:
    token = REQUESTED_TRACE_ID.set(trace_id)
    try:
        yield
    finally:
        REQUESTED_TRACE_ID.reset(token)


def provider_with(generator: IdGenerator) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=generator, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.mark.parametrize("generator", [so.RequestedTraceIdGenerator(), so.SequentialIdGenerator()])
def test_a_requested_trace_id_makes_a_root_span_of_that_trace(generator: IdGenerator) -> None:
    provider, exporter = provider_with(generator)
    tracer = provider.get_tracer("t")
    with requested(REQUESTED):
        run = tracer.start_span("invoke_workflow w")
    with tracer.start_as_current_span("child", context=None):
        pass
    run.end()

    finished = {span.name: span for span in exporter.get_finished_spans()}
    assert finished["invoke_workflow w"].context.trace_id == REQUESTED
    assert finished["invoke_workflow w"].parent is None
    assert finished["child"].context.trace_id != REQUESTED


def test_a_requested_trace_id_is_not_flagged_as_random() -> None:
    provider, _ = provider_with(so.RequestedTraceIdGenerator())
    with requested(0xABC):
        flags = provider.get_tracer("t").start_span("run").get_span_context().trace_flags
    assert not flags & TraceFlags.RANDOM_TRACE_ID
    other = provider.get_tracer("t").start_span("other").get_span_context().trace_flags
    assert other & TraceFlags.RANDOM_TRACE_ID


def test_a_span_with_a_parent_keeps_its_parents_trace_even_when_an_id_is_requested() -> None:
    provider, _ = provider_with(so.RequestedTraceIdGenerator())
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("parent") as parent, requested(REQUESTED):
        child = tracer.start_span("child")
    assert child.get_span_context().trace_id == parent.get_span_context().trace_id != REQUESTED


@pytest.mark.parametrize("invalid", [0, -1, 1 << 128])
def test_an_invalid_requested_id_is_ignored(invalid: int) -> None:
    generator = so.RequestedTraceIdGenerator()
    with requested(invalid):
        assert 0 < generator.generate_trace_id() < 1 << 128
        assert generator.generate_trace_id() != invalid


def test_sequential_ids_count_from_one_and_skip_nothing_for_a_requested_trace() -> None:
    generator = so.SequentialIdGenerator()
    assert [generator.generate_trace_id(), generator.generate_trace_id()] == [1, 2]
    with requested(REQUESTED):
        assert generator.generate_trace_id() == REQUESTED
    assert generator.generate_trace_id() == 3
    assert [generator.generate_span_id(), generator.generate_span_id()] == [1, 2]
    generator.reset()
    assert (generator.generate_trace_id(), generator.generate_span_id()) == (1, 1)


def test_configure_honours_the_requested_trace_id_on_the_wire(
    receiver: OtlpReceiver, make_telemetry: MakeTelemetry
) -> None:
    telemetry = make_telemetry(export=so.ExportOptions(endpoint=receiver.http_endpoint))
    with requested(REQUESTED):
        telemetry.tracer("t").start_span("invoke_workflow w").end()
    telemetry.force_flush()

    [span] = receiver.wait_for_spans(1)
    assert span.trace_id == bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
    assert span.parent_span_id == b""
