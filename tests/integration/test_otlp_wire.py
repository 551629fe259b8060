"""A real spanflow run, exported by the tracing plugin, as it arrives at an OTLP collector.

The order-fulfilment example runs under `spanflow_otel.configure()` exporting to the in-process
OTLP receiver, over HTTP/protobuf and over gRPC; the tests read the decoded requests: ids as
bytes of the right length, the tree, attributes with flattened metadata and tags, stream events
as span events, errors, the link of a resumed run, and the resource.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import spanflow_otel as so

from spanflow import TracingOptions, Workflow
from spanflow.cli.demo import load_order_example
from spanflow.storage import MemoryStorage
from spanflow.tracing import OtelInstrumentation, TracingConfig
from spanflow.workflows.results import WorkflowResult
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver

load_order_example()

from examples.order_fulfilment import (  # noqa: E402 - importable only after the line above
    SIMULATED_LATENCY,
    ManagerDecision,
    build_order_workflow,
    sample_order,
)

PROTOCOLS: list[so.OtlpProtocol] = ["http/protobuf", "grpc"]
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
FIRST_HALF_SPANS = 20
"""The run up to its suspension: run, 11 steps, 7 foreach iterations, parallel, branch, 2
conditions, loop... (see the demo's span tree)."""
NO_DELAY = {SIMULATED_LATENCY: 0}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as started:
        yield started


@pytest.fixture(params=PROTOCOLS)
def telemetry(request: pytest.FixtureRequest, receiver: OtlpReceiver) -> Iterator[so.Telemetry]:
    protocol: so.OtlpProtocol = request.param
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    configured = so.configure(
        so.ServiceOptions(name="shop", version="1.4.2", environment="test"),
        export=so.ExportOptions(endpoint=endpoint, protocol=protocol),
        shutdown=so.ShutdownOptions(atexit=False, sigterm=False),
        set_global=False,
    )
    yield configured
    configured.shutdown(timeout=2.0)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


def traced_workflow(telemetry: so.Telemetry, storage: MemoryStorage) -> Workflow:
    """A fresh order workflow (as another process would build it) on the shared store."""
    workflow = build_order_workflow()
    workflow.storage = storage
    workflow.instrumentation = OtelInstrumentation(
        TracingConfig(tracer_provider=telemetry.provider)
    )
    return workflow


async def first_half(telemetry: so.Telemetry, storage: MemoryStorage) -> WorkflowResult:
    run = await traced_workflow(telemetry, storage).create_run(resource_id="shop-eu")
    result = await run.start(
        sample_order(),
        request_context=NO_DELAY,
        tracing_options=TracingOptions(
            trace_id=CALLER_TRACE,
            parent_span_id=CALLER_SPAN,
            metadata={"user": {"id": "u-42", "plan": "pro"}, "attempt": 2},
            tags=["vip", "checkout"],
        ),
    )
    assert result.status == "suspended"
    return result


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    named: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def event_names(span: ReceivedSpan) -> list[str]:
    return [event.name for event in span.events]


async def test_a_run_arrives_as_one_tree_under_the_callers_span(
    telemetry: so.Telemetry, storage: MemoryStorage, receiver: OtlpReceiver
) -> None:
    result = await first_half(telemetry, storage)
    assert telemetry.force_flush()

    spans = receiver.wait_for_spans(FIRST_HALF_SPANS)
    assert len(spans) == FIRST_HALF_SPANS
    named = by_name(spans)
    [run] = named["invoke_workflow order-fulfilment"]
    for span in spans:
        assert isinstance(span.trace_id, bytes)
        assert len(span.trace_id) == 16
        assert isinstance(span.span_id, bytes)
        assert len(span.span_id) == 8
        assert span.trace_id == bytes.fromhex(CALLER_TRACE)
        assert span.kind == 1  # INTERNAL
        assert span.end_time_unix_nano >= span.start_time_unix_nano > 0
    assert run.parent_span_id == bytes.fromhex(CALLER_SPAN)
    assert run.span_id.hex() == result.span_id
    ids = {span.span_id for span in spans}
    assert all(span.parent_span_id in ids for span in spans if span is not run)
    [loop] = named["loop foreach"]
    assert [s.parent_span_id for s in named["workflow_step pack-item"]] == [loop.span_id] * 7
    [parallel] = named["parallel 2 branches"]
    assert named["workflow_step check-fraud"][0].parent_span_id == parallel.span_id
    assert named["workflow_step validate-order"][0].parent_span_id == run.span_id


async def test_metadata_and_tags_are_flat_searchable_attributes_on_every_span(
    telemetry: so.Telemetry, storage: MemoryStorage, receiver: OtlpReceiver
) -> None:
    result = await first_half(telemetry, storage)
    telemetry.force_flush()

    spans = receiver.wait_for_spans(FIRST_HALF_SPANS)
    for span in spans:
        assert span.attributes["spanflow.run.id"] == result.run_id
        assert span.attributes["spanflow.workflow.id"] == "order-fulfilment"
        assert span.attributes["spanflow.metadata.user.id"] == "u-42"
        assert span.attributes["spanflow.metadata.user.plan"] == "pro"
        assert span.attributes["spanflow.metadata.attempt"] == 2
        assert span.attributes["spanflow.tag.vip"] is True
        assert span.attributes["spanflow.tag.checkout"] is True
        assert span.attributes["spanflow.tags"] == ["vip", "checkout"]
        assert not any(isinstance(value, dict) for value in span.attributes.values())
    [run] = by_name(spans)["invoke_workflow order-fulfilment"]
    assert run.attributes["spanflow.resource.id"] == "shop-eu"
    assert run.attributes["spanflow.run.status"] == "suspended"
    assert '"order_id":"ORD-20417"' in run.attributes["spanflow.input"]
    [approval] = by_name(spans)["workflow_step manager-approval"]
    assert approval.attributes["spanflow.step.status"] == "suspended"


async def test_stream_events_arrive_as_span_events(
    telemetry: so.Telemetry, storage: MemoryStorage, receiver: OtlpReceiver
) -> None:
    await first_half(telemetry, storage)
    telemetry.force_flush()

    named = by_name(receiver.wait_for_spans(FIRST_HALF_SPANS))
    [run] = named["invoke_workflow order-fulfilment"]
    assert event_names(run)[0] == "workflow-start"
    assert event_names(run)[-1] == "workflow-finish"
    [validate] = named["workflow_step validate-order"]
    assert event_names(validate) == [
        "workflow-step-start",
        "workflow-step-output",
        "workflow-step-result",
    ]
    assert all(event.time_unix_nano >= validate.start_time_unix_nano for event in validate.events)
    [loop] = named["loop foreach"]
    progress = [event for event in loop.events if event.name == "workflow-step-progress"]
    assert len(progress) == 7
    assert sorted(event.attributes["spanflow.event.completed_count"] for event in progress) == list(
        range(1, 8)
    )
    [approval] = named["workflow_step manager-approval"]
    assert "workflow-step-suspended" in event_names(approval)


async def test_the_resource_says_who_sent_the_spans(
    telemetry: so.Telemetry, storage: MemoryStorage, receiver: OtlpReceiver
) -> None:
    await first_half(telemetry, storage)
    telemetry.force_flush()

    spans = receiver.wait_for_spans(FIRST_HALF_SPANS)
    resources = {tuple(sorted(span.resource.items())) for span in spans}
    assert len(resources) == 1
    resource: dict[str, Any] = spans[0].resource
    assert resource["service.name"] == "shop"
    assert resource["service.version"] == "1.4.2"
    assert resource["deployment.environment.name"] == "test"
    assert resource["telemetry.sdk.name"] == "opentelemetry"
    assert {span.scope for span in spans} == {"spanflow"}


async def test_a_resume_without_options_continues_the_trace_under_the_first_run_span(
    telemetry: so.Telemetry, storage: MemoryStorage, receiver: OtlpReceiver
) -> None:
    first = await first_half(telemetry, storage)
    telemetry.force_flush()
    receiver.wait_for_spans(FIRST_HALF_SPANS)
    receiver.clear()

    run = await traced_workflow(telemetry, storage).create_run(run_id=first.run_id)
    done = await run.resume(ManagerDecision(approved=True, approver="Grace Hopper"))
    telemetry.force_flush()

    assert done.status == "success"
    named = by_name(receiver.wait_for_spans(4))
    [resumed] = named["invoke_workflow order-fulfilment"]
    assert resumed.trace_id == bytes.fromhex(CALLER_TRACE)
    assert resumed.parent_span_id == bytes.fromhex(first.span_id or "")
    assert resumed.links == ()
    assert resumed.attributes["spanflow.run.resumed"] is True
    assert resumed.attributes["spanflow.metadata.user.id"] == "u-42"
    assert resumed.attributes["spanflow.tag.vip"] is True
    assert done.trace_id == CALLER_TRACE


async def test_a_resume_with_explicit_options_joins_that_trace_and_links_the_first_run(
    telemetry: so.Telemetry, storage: MemoryStorage, receiver: OtlpReceiver
) -> None:
    first = await first_half(telemetry, storage)
    telemetry.force_flush()
    receiver.wait_for_spans(FIRST_HALF_SPANS)
    receiver.clear()
    approval_trace, approval_span = "a" * 32, "b" * 16

    run = await traced_workflow(telemetry, storage).create_run(run_id=first.run_id)
    done = await run.resume(
        ManagerDecision(approved=True, approver="Grace Hopper"),
        tracing_options=TracingOptions(
            trace_id=approval_trace, parent_span_id=approval_span, tags=["approved"]
        ),
    )
    telemetry.force_flush()

    named = by_name(receiver.wait_for_spans(4))
    [resumed] = named["invoke_workflow order-fulfilment"]
    assert resumed.trace_id == bytes.fromhex(approval_trace)
    assert resumed.parent_span_id == bytes.fromhex(approval_span)
    [link] = resumed.links
    assert (link.trace_id, link.span_id) == (
        bytes.fromhex(CALLER_TRACE),
        bytes.fromhex(first.span_id or ""),
    )
    assert link.attributes == {"spanflow.link": "resumed_from"}
    assert resumed.attributes["spanflow.tag.approved"] is True
    assert resumed.attributes["spanflow.tag.vip"] is True  # the first half's tags stay
    assert done.trace_id == approval_trace


async def test_a_failed_run_arrives_with_error_status_type_and_stack_trace(
    telemetry: so.Telemetry, storage: MemoryStorage, receiver: OtlpReceiver
) -> None:
    first = await first_half(telemetry, storage)
    telemetry.force_flush()
    receiver.wait_for_spans(FIRST_HALF_SPANS)
    receiver.clear()

    run = await traced_workflow(telemetry, storage).create_run(run_id=first.run_id)
    done = await run.resume(ManagerDecision(approved=False, approver="Grace Hopper", note="no"))
    telemetry.force_flush()

    assert done.status == "failed"
    named = by_name(receiver.wait_for_spans(2))
    [approval] = named["workflow_step manager-approval"]
    assert approval.status_code == 2  # ERROR
    assert "declined by Grace Hopper" in approval.status_message
    assert approval.attributes["error.type"].endswith("OrderRejectedError")
    [exception] = [event for event in approval.events if event.name == "exception"]
    assert exception.attributes["exception.type"].endswith("OrderRejectedError")
    assert "Traceback" in exception.attributes["exception.stacktrace"]
    [resumed] = named["invoke_workflow order-fulfilment"]
    assert resumed.status_code == 2
    assert resumed.attributes["spanflow.run.status"] == "failed"
