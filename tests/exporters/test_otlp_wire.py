"""Spans exported by `configure()` arrive intact over OTLP/HTTP and OTLP/gRPC."""

from __future__ import annotations

import pytest
import spanflow_otel as so
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.support.otlp_receiver import OtlpReceiver

from .helpers import MakeTelemetry

PROTOCOLS: list[so.OtlpProtocol] = ["http/protobuf", "grpc"]


def endpoint_for(receiver: OtlpReceiver, protocol: so.OtlpProtocol) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_run_tree_arrives_with_ids_attributes_events_and_links(
    receiver: OtlpReceiver, make_telemetry: MakeTelemetry, protocol: so.OtlpProtocol
) -> None:
    telemetry = make_telemetry(
        so.ServiceOptions(name="shop", version="1.2.3", environment="test"),
        export=so.ExportOptions(endpoint=endpoint_for(receiver, protocol), protocol=protocol),
    )
    tracer = telemetry.tracer("spanflow")
    with tracer.start_as_current_span(
        "invoke_workflow order",
        attributes={"spanflow.run.id": "r-1", "spanflow.tags": ("a", "b")},
    ) as run:
        run.add_event("workflow-start", {"spanflow.event.status": "running"})
        with tracer.start_as_current_span(
            "workflow_step pay",
            kind=SpanKind.CLIENT,
            links=[Link(run.get_span_context(), {"spanflow.link": "run"})],
            attributes={"spanflow.step.attempt": 2, "spanflow.retry": True, "ratio": 0.5},
        ) as step:
            step.set_status(Status(StatusCode.ERROR, "card declined"))
    telemetry.force_flush()

    spans = {span.name: span for span in receiver.wait_for_spans(2)}
    run_span, step_span = spans["invoke_workflow order"], spans["workflow_step pay"]
    assert len(run_span.trace_id) == 16
    assert len(run_span.span_id) == 8
    assert run_span.parent_span_id == b""
    assert step_span.trace_id == run_span.trace_id
    assert step_span.parent_span_id == run_span.span_id
    assert run_span.trace_id == run.get_span_context().trace_id.to_bytes(16, "big")
    assert run_span.attributes == {"spanflow.run.id": "r-1", "spanflow.tags": ["a", "b"]}
    assert [(e.name, e.attributes) for e in run_span.events] == [
        ("workflow-start", {"spanflow.event.status": "running"})
    ]
    assert step_span.attributes == {
        "spanflow.step.attempt": 2,
        "spanflow.retry": True,
        "ratio": 0.5,
    }
    assert step_span.kind == 3  # CLIENT
    assert (step_span.status_code, step_span.status_message) == (2, "card declined")
    [link] = step_span.links
    assert (link.trace_id, link.span_id, link.attributes) == (
        run_span.trace_id,
        run_span.span_id,
        {"spanflow.link": "run"},
    )
    assert step_span.scope == "spanflow"
    assert {
        key: run_span.resource[key]
        for key in ("service.name", "service.version", "deployment.environment.name")
    } == {"service.name": "shop", "service.version": "1.2.3", "deployment.environment.name": "test"}
    assert run_span.transport == ("grpc" if protocol == "grpc" else "http")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_resource_merges_otel_resource_attributes_with_explicit_values_winning(
    receiver: OtlpReceiver,
    make_telemetry: MakeTelemetry,
    monkeypatch: pytest.MonkeyPatch,
    protocol: so.OtlpProtocol,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=payments,service.version=0.0.1")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    telemetry = make_telemetry(
        so.ServiceOptions(version="2.0.0"),
        export=so.ExportOptions(endpoint=endpoint_for(receiver, protocol), protocol=protocol),
    )
    telemetry.tracer("t").start_span("one").end()
    telemetry.force_flush()

    [span] = receiver.wait_for_spans(1)
    assert span.resource["team"] == "payments"
    assert span.resource["service.name"] == "from-env"
    assert span.resource["service.version"] == "2.0.0"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_headers_are_sent_with_every_export(
    receiver: OtlpReceiver, make_telemetry: MakeTelemetry, protocol: so.OtlpProtocol
) -> None:
    telemetry = make_telemetry(
        export=so.presets.otlp(
            endpoint_for(receiver, protocol), headers={"X-Api-Key": "k-1"}, protocol=protocol
        )
    )
    telemetry.tracer("t").start_span("one").end()
    telemetry.force_flush()

    receiver.wait_for_spans(1)
    assert receiver.requests[0].headers["x-api-key"] == "k-1"


def test_one_configure_can_export_to_two_destinations(
    receiver: OtlpReceiver, make_telemetry: MakeTelemetry
) -> None:
    telemetry = make_telemetry(
        export=[
            so.ExportOptions(endpoint=receiver.http_endpoint),
            so.ExportOptions(endpoint=receiver.grpc_endpoint, protocol="grpc"),
        ]
    )
    telemetry.tracer("t").start_span("twice").end()
    telemetry.force_flush()

    assert sorted(span.transport for span in receiver.wait_for_spans(2)) == ["grpc", "http"]
