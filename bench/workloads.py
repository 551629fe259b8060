"""The workflows the scenarios run, and the tracing set-ups they run them under.

Every workflow uses pydantic schemas and trivial async steps (``{v} -> {v+1}``), so what is
measured is the engine. A tracing set-up is handed to a workflow explicitly
(``workflow.instrumentation = ...``); nothing here touches OpenTelemetry's global tracer
provider, so set-ups never fight over it and "no SDK" really is a process without one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel
from spanflow_otel import BatchOptions, ExportOptions, ShutdownOptions, Telemetry, configure

from spanflow import StepContext, TracingConfig, Workflow, create_step, create_workflow
from spanflow.storage.memory import MemoryStorage
from spanflow.tracing.instrumentation import Instrumentation
from spanflow.tracing.otel import OtelInstrumentation

__all__ = [
    "TRACINGS",
    "Tracing",
    "Value",
    "chain",
    "foreach_workflow",
    "napping_workflow",
    "run_start",
    "run_stream",
    "tracing",
]


class Value(BaseModel):
    v: int


async def _increment(ctx: StepContext[Value]) -> Value:
    return Value(v=ctx.input_data.v + 1)


async def _nap(ctx: StepContext[Value]) -> Value:
    await asyncio.sleep(0.010)
    return Value(v=ctx.input_data.v + 1)


def _step(step_id: str, execute: Any = _increment) -> Any:
    return create_step(id=step_id, input_schema=Value, output_schema=Value, execute=execute)


def chain(length: int, workflow_id: str = "") -> Workflow:
    """``length`` sequential increment steps: ``{v: 0}`` ends as ``{v: length}``."""
    workflow = create_workflow(
        id=workflow_id or f"chain-{length}", input_schema=Value, output_schema=Value
    )
    for i in range(length):
        workflow.then(_step(f"s{i}"))
    return workflow.commit()


def napping_workflow() -> Workflow:
    """Three steps, the middle one sleeping 10 ms (scenario 7)."""
    workflow = create_workflow(id="napping", input_schema=Value, output_schema=Value)
    workflow.then(_step("before")).then(_step("nap", _nap)).then(_step("after"))
    return workflow.commit()


def foreach_workflow(concurrency: int) -> Workflow:
    """A foreach of the increment step over a list of values (scenario 6)."""
    workflow = create_workflow(id="fan-out", input_schema=list[Value], output_schema=list[Value])
    workflow.foreach(_step("each"), concurrency=concurrency)
    return workflow.commit()


async def run_start(workflow: Workflow, input_data: Any) -> Any:
    """One run with ``start()``; returns its result value (raises if it did not succeed)."""
    run = await workflow.create_run()
    result = await run.start(input_data=input_data)
    if result.status != "success":
        raise RuntimeError(f"run ended {result.status}: {result.error!r}")
    return result.result


async def run_stream(workflow: Workflow, input_data: Any) -> Any:
    """One run with ``stream()``, consuming every event; returns its result value."""
    run = await workflow.create_run()
    out = run.stream(input_data=input_data)
    async for _event in out:
        pass
    result = await out.result
    if result.status != "success":
        raise RuntimeError(f"run ended {result.status}: {result.error!r}")
    return result.result


class SpanCounter(SpanProcessor):
    """Counts spans as they end: how many were created, whatever the exporter did."""

    def __init__(self) -> None:
        self.ended = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1  # on_end runs in the thread that ends the span: one thread here


class DiscardingExporter(SpanExporter):
    """Accepts every span and keeps none: tracing fully on, with no export cost or backlog."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass(eq=False)
class Tracing:
    """One tracing set-up: what to give a workflow, and how to flush and close it."""

    name: str
    instrumentation: Instrumentation
    provider: TracerProvider | None = None
    memory: InMemorySpanExporter | None = None
    telemetry: Telemetry | None = None
    counter: SpanCounter | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def apply(self, workflow: Workflow) -> Workflow:
        """Trace `workflow` with this set-up, and give it a fresh run store."""
        workflow.instrumentation = self.instrumentation
        workflow.storage = MemoryStorage()
        return workflow

    def flush(self) -> None:
        """Deliver every finished span (OTLP) or forget them (in-memory)."""
        if self.telemetry is not None and not self.telemetry.force_flush(timeout=60):
            raise RuntimeError(f"{self.name}: flushing spans took more than 60 s")
        if self.memory is not None:
            self.memory.clear()

    def close(self) -> None:
        if self.telemetry is not None:
            self.telemetry.shutdown(timeout=60)
        elif self.provider is not None:
            self.provider.shutdown()


TRACINGS = ("nosdk", "disabled", "memory", "otlp", "otlp-thread")
"""The set-ups: no SDK configured (how a user without tracing runs), tracing disabled in
`TracingConfig`, an SDK provider exporting synchronously to memory, the plugin's `configure()`
exporting over OTLP/HTTP to the loopback receiver (its exporter in a child process, the
default), and the same with the exporter in a thread of this process
(``BatchOptions(export_in="thread")``, the SDK's batch processor). ``discard`` (an SDK provider
whose exporter drops every span) is for long runs, where memory would keep them all."""


def tracing(
    name: str,
    *,
    endpoint: str | None = None,
    batch: BatchOptions | None = None,
    count_spans: bool = False,
) -> Tracing:
    """Build the set-up called `name` (one of `TRACINGS`)."""
    if name == "nosdk":
        return Tracing(name, OtelInstrumentation())  # the global provider, never configured
    if name == "disabled":
        return Tracing(name, OtelInstrumentation(TracingConfig(enabled=False)))
    counter = SpanCounter() if count_spans else None
    if name in ("memory", "discard"):
        provider = TracerProvider(shutdown_on_exit=False)
        if counter is not None:
            provider.add_span_processor(counter)
        memory = InMemorySpanExporter() if name == "memory" else None
        provider.add_span_processor(SimpleSpanProcessor(memory or DiscardingExporter()))
        instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=provider))
        return Tracing(name, instrumentation, provider, memory=memory, counter=counter)
    if name in ("otlp", "otlp-thread"):
        if endpoint is None:
            raise ValueError("the otlp set-ups need the receiver's endpoint")
        batch = batch or BatchOptions()
        if name == "otlp-thread":
            batch = dataclasses.replace(batch, export_in="thread")
        telemetry = configure(
            "spanflow-bench",
            export=ExportOptions(endpoint=endpoint, protocol="http/protobuf", timeout=30),
            batch=batch,
            shutdown=ShutdownOptions(flush_timeout=60, atexit=False, sigterm=False),
            span_processors=[counter] if counter is not None else (),
            set_global=False,
        )
        instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=telemetry.provider))
        return Tracing(
            name, instrumentation, telemetry.provider, telemetry=telemetry, counter=counter
        )
    raise ValueError(f"unknown tracing set-up {name!r}; expected one of {TRACINGS} or discard")
