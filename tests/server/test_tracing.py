"""Tracing at the boundary: each request is a SERVER span in the caller's trace, the run its child.

The `span_capture` fixture routes the global tracer provider (which the registry's workflows
and the ASGI instrumentation use) to an in-memory capture with ids 1, 2, 3...
"""

from __future__ import annotations

import httpx
from spanflow_otel.testing import SpanCapture, dump_spans

from tests.tracing.span_helpers import expected, keys

ORDER = {"order": "o-1", "amount": 1200}
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def trace_tree(capture: SpanCapture, trace_id: str, *patterns: str) -> str:
    spans = [s for s in capture.spans if s.context and f"{s.context.trace_id:032x}" == trace_id]
    return dump_spans(spans, attributes=keys(*patterns), include_events=False)


def span_id_of(capture: SpanCapture, name: str) -> str:
    (span,) = [s for s in capture.spans if s.name == name]
    assert span.context is not None
    return f"{span.context.span_id:016x}"


async def test_a_traceparent_header_puts_the_run_under_the_server_span(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    await client.post("/api/workflows/approval/create-run?runId=r-1")
    response = await client.post(
        "/api/workflows/approval/stream?runId=r-1",
        json={"inputData": ORDER},
        headers={"traceparent": TRACEPARENT, "authorization": "Bearer not-recorded"},
    )
    assert response.status_code == 200
    route = "/api/workflows/{workflowId}/stream"
    assert trace_tree(span_capture, TRACE_ID, "http.route", "spanflow.run.id") == expected(
        f"""
        POST {route} [SERVER] UNSET (parent={PARENT_ID}) {{http.route='{route}'}}
          invoke_workflow approval [INTERNAL] UNSET {{spanflow.run.id='r-1'}}
            workflow_step check [INTERNAL] UNSET {{spanflow.run.id='r-1'}}
            workflow_step approve [INTERNAL] UNSET {{spanflow.run.id='r-1'}}
        """
    )
    run_span = span_id_of(span_capture, "invoke_workflow approval")
    assert response.headers["traceparent"] == f"00-{TRACE_ID}-{run_span}-01"
    for span in span_capture.spans:
        for key, value in (span.attributes or {}).items():
            assert "not-recorded" not in str(value), key


async def test_tracing_options_in_the_body_win_over_the_header(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    body_trace = "1234567890abcdef1234567890abcdef"
    response = await client.post(
        "/api/workflows/approval/start-async?runId=r-2",
        json={
            "inputData": ORDER,
            "tracingOptions": {
                "traceId": body_trace,
                "parentSpanId": "00000000000000aa",
                "tags": ["vip"],
                "metadata": {"user": {"id": "u-42"}},
            },
        },
        headers={"traceparent": TRACEPARENT},
    )
    result = response.json()
    assert result["traceId"] == body_trace
    assert response.headers["traceparent"] == f"00-{body_trace}-{result['spanId']}-01"
    tree = trace_tree(span_capture, body_trace, "spanflow.tag.vip", "spanflow.metadata.user.id")
    assert tree.splitlines()[0] == (
        "invoke_workflow approval [INTERNAL] UNSET (parent=00000000000000aa) "
        "{spanflow.metadata.user.id='u-42', spanflow.tag.vip=True}"
    )
    # The request span stays in the caller's trace.
    assert trace_tree(span_capture, TRACE_ID).splitlines() == [
        f"POST /api/workflows/{{workflowId}}/start-async [SERVER] UNSET (parent={PARENT_ID})"
    ]


async def test_an_agent_call_joins_the_callers_trace(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/api/agents/weather/generate",
        json={"messages": "Weather in Lima?"},
        headers={"traceparent": TRACEPARENT},
    )
    out = response.json()
    assert out["traceId"] == TRACE_ID
    assert response.headers["traceparent"] == f"00-{TRACE_ID}-{out['spanId']}-01"
    lines = trace_tree(span_capture, TRACE_ID).splitlines()
    assert lines[0].startswith("POST /api/agents/{agentId}/generate [SERVER]")
    assert lines[1].startswith("  invoke_agent Weather [INTERNAL]")


async def test_the_run_state_carries_the_runs_trace(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    started = await client.post(
        "/api/workflows/approval/start-async?runId=r-3",
        json={"inputData": ORDER},
        headers={"traceparent": TRACEPARENT},
    )
    state = await client.get("/api/workflows/approval/runs/r-3")
    assert state.json()["traceId"] == TRACE_ID
    assert state.json()["spanId"] == started.json()["spanId"]
    assert state.headers["traceparent"] == started.headers["traceparent"]


async def test_memory_names_the_conversation_and_the_resource_on_the_agent_span(
    span_capture: SpanCapture, client: httpx.AsyncClient
) -> None:
    await client.post(
        "/api/agents/weather/generate",
        json={
            "messages": "Weather in Kyiv?",
            "memory": {"thread": {"id": "t-7"}, "resource": "u-1"},
        },
    )
    (agent,) = [s for s in span_capture.spans if s.name == "invoke_agent Weather"]
    attributes = agent.attributes or {}
    assert attributes["gen_ai.conversation.id"] == "t-7"
    assert attributes["spanflow.resource.id"] == "u-1"
