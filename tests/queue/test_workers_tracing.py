"""One trace across the queue: each process writes its own spans, the trace id joins them.

This process (the caller) writes its span and the PRODUCER span of the enqueue (``publish
spanflow.runs``) to its in-memory exporter; the worker writes the run span and the step spans
and exports them to the session's OTLP receiver. Joined, they read: caller > publish >
``invoke_workflow <id>`` > ``workflow_step <id>``. A resume on a worker continues the run's
own trace (child of the stored run span) and links to the span of whoever resumed it.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from spanflow import Spanflow
from spanflow.tracing import TracingOptions
from tests.queue.conftest import WITHIN, CallerTracing, WorkerPool
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.postgres

PUBLISH = "publish spanflow.runs"
WORKER_SERVICE = "spanflow-worker"


async def test_the_trace_reads_caller_publish_run_steps_across_processes(
    registry: Spanflow,
    shared_workers: WorkerPool,
    caller_tracing: CallerTracing,
    receiver: OtlpReceiver,
) -> None:
    tracer = caller_tracing.provider.get_tracer("queue-tests")
    run = await registry.get_workflow("chain").create_run()
    options = TracingOptions(tags=["vip"], metadata={"user": "ada"})

    async with asyncio.timeout(WITHIN):
        with tracer.start_as_current_span("POST /orders") as request:
            result = await run.start({}, tracing_options=options)
        trace_id = request.get_span_context().trace_id
        remote = await spans_of_trace(receiver, trace_id, want=4)

    assert result.status == "success"
    assert result.trace_id == f"{trace_id:032x}"
    local = [s for s in caller_tracing.spans if _trace_of(s) == trace_id]
    (caller,) = [s for s in local if s.name == "POST /orders"]
    (publish,) = [s for s in local if s.name == PUBLISH]
    assert publish.kind == SpanKind.PRODUCER
    assert publish.parent is not None
    assert publish.parent.span_id == _span_of(caller)
    assert not [s.name for s in local if s.name.startswith(("invoke_workflow", "workflow_step"))]

    by_name = {span.name: span for span in remote}
    invoke = by_name["invoke_workflow chain"]
    assert int.from_bytes(invoke.parent_span_id, "big") == _span_of(publish)
    assert invoke.resource["service.name"] == WORKER_SERVICE
    assert result.span_id == invoke.span_id.hex()
    for step in ("one", "two", "three"):
        span = by_name[f"workflow_step {step}"]
        assert span.parent_span_id == invoke.span_id
        assert span.attributes.get("spanflow.tag.vip") is True  # tags travel with the run
        assert span.attributes.get("spanflow.metadata.user") == "ada"


async def test_a_resume_on_a_worker_continues_the_runs_trace_and_links_the_resumer(
    registry: Spanflow,
    shared_workers: WorkerPool,
    caller_tracing: CallerTracing,
    receiver: OtlpReceiver,
) -> None:
    tracer = caller_tracing.provider.get_tracer("queue-tests")
    run = await registry.get_workflow("approval").create_run()

    async with asyncio.timeout(WITHIN):
        with tracer.start_as_current_span("ask") as asking:
            assert (await run.start({})).status == "suspended"
        run_trace = asking.get_span_context().trace_id
        (first,) = [
            s
            for s in await spans_of_trace(receiver, run_trace, want=2)
            if s.name == "invoke_workflow approval"
        ]
        with tracer.start_as_current_span("approve") as approving:
            done = await run.resume({"approved": True})
        remote = await spans_of_trace(receiver, run_trace, want=5)

    assert done.status == "success"
    approver_trace = approving.get_span_context().trace_id
    assert approver_trace != run_trace
    (resumed,) = [s for s in remote if s.name == "invoke_workflow approval" and s != first]
    assert resumed.parent_span_id == first.span_id  # the run's own trace goes on
    (republish,) = [
        s for s in caller_tracing.spans if _trace_of(s) == approver_trace and s.name == PUBLISH
    ]
    assert republish.parent is not None
    assert republish.parent.span_id == approving.get_span_context().span_id
    links = {
        (int.from_bytes(link.trace_id, "big"), int.from_bytes(link.span_id, "big")): link
        for link in resumed.links
    }
    request = links.get((approver_trace, _span_of(republish)))
    assert request is not None, (
        f"the resumed run span links {list(links)}, not the resume's publish"
    )
    assert request.attributes.get("spanflow.link") == "request"
    steps = {s.name: s for s in remote if s.parent_span_id == resumed.span_id}
    assert set(steps) == {"workflow_step ask", "workflow_step after"}


async def spans_of_trace(receiver: OtlpReceiver, trace_id: int, *, want: int) -> list[ReceivedSpan]:
    """The receiver's spans of one trace, once at least `want` arrived (the workers export in
    batches every 100 ms)."""
    wanted = trace_id.to_bytes(16, "big")
    deadline = time.monotonic() + 10.0
    while True:
        spans = [span for span in receiver.spans() if span.trace_id == wanted]
        if len(spans) >= want:
            return spans
        if time.monotonic() > deadline:
            names = sorted(span.name for span in spans)
            raise AssertionError(f"trace {trace_id:032x}: {want} spans wanted, got {names}")
        await asyncio.sleep(0.05)


def _trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    trace_id: int = span.context.trace_id
    return trace_id


def _span_of(span: ReadableSpan) -> int:
    assert span.context is not None
    span_id: int = span.context.span_id
    return span_id
