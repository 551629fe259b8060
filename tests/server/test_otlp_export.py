"""A served request's spans as they arrive at an OTLP collector: the SERVER span in the caller's
trace, the run span under it, the steps under that, all from the registry's own tracer provider
(the ASGI instrumentation uses it too, not the global one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import spanflow_otel as so

from spanflow import Spanflow
from spanflow.server import create_app
from spanflow.storage import MemoryStorage
from spanflow.tracing import TracingConfig
from tests.server.apps import approval_workflow
from tests.server.conftest import asgi_client
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER_KIND = 2


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as started:
        yield started


async def test_the_span_tree_of_a_request_arrives_over_otlp(receiver: OtlpReceiver) -> None:
    telemetry = so.configure(
        so.ServiceOptions(name="orders-api"),
        export=so.ExportOptions(endpoint=receiver.http_endpoint, protocol="http/protobuf"),
        shutdown=so.ShutdownOptions(atexit=False, sigterm=False),
        set_global=False,
    )
    registry = Spanflow(
        workflows=[approval_workflow()],
        storage=MemoryStorage(),
        tracing=TracingConfig(tracer_provider=telemetry.provider),
    )
    async with asgi_client(create_app(registry, auth_token="t")) as client:
        response = await client.post(
            "/api/workflows/approval/start-async?runId=r-1",
            json={"inputData": {"order": "o-1", "amount": 3}},
            headers={
                "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                "authorization": "Bearer t",
            },
        )
    assert response.json()["status"] == "suspended"
    assert telemetry.shutdown(timeout=5.0)

    spans = receiver.wait_for_spans(4)
    by_name = {span.name: span for span in spans}
    server = by_name["POST /api/workflows/{workflowId}/start-async"]
    run = by_name["invoke_workflow approval"]
    assert server.kind == SERVER_KIND
    assert server.trace_id.hex() == CALLER_TRACE
    assert server.parent_span_id.hex() == CALLER_SPAN
    assert server.resource["service.name"] == "orders-api"
    assert run.parent_span_id == server.span_id
    for step in ("check", "approve"):
        assert by_name[f"workflow_step {step}"].parent_span_id == run.span_id
    assert response.headers["traceparent"] == f"00-{CALLER_TRACE}-{run.span_id.hex()}-01"
    for span in spans:
        assert not any("Bearer" in str(value) for value in span.attributes.values())
