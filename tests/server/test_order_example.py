"""The order-fulfilment example served over HTTP: its workflow (suspending for approval, then
resumed with the manager's decision) and its confirmation-writer agent.

The registry is built the way ``examples/order_fulfilment.py`` would build its ``app`` for
``spanflow serve examples.order_fulfilment:app`` (a workflow of its own, its writer agent
registered too), on an in-memory store.
"""

from __future__ import annotations

import json

from spanflow import Spanflow
from spanflow.cli.demo import load_order_example
from spanflow.server import create_app
from spanflow.storage import MemoryStorage
from tests.server.conftest import asgi_client

load_order_example()
from examples.order_fulfilment import (  # noqa: E402 - importable only after the line above
    SIMULATED_LATENCY,
    build_order_workflow,
    confirmation_writer,
    sample_order,
)


def example_app() -> Spanflow:
    writer = confirmation_writer()
    return Spanflow(
        workflows=[build_order_workflow(writer)], agents=[writer], storage=MemoryStorage()
    )


async def test_the_order_workflow_suspends_and_resumes_over_http() -> None:
    async with asgi_client(create_app(example_app())) as client:
        wf = "/api/workflows/order-fulfilment"
        run_id = (await client.post(f"{wf}/create-run")).json()["runId"]
        first = await client.post(
            f"{wf}/stream?runId={run_id}",
            json={"inputData": sample_order(), "requestContext": {SIMULATED_LATENCY: 0}},
        )
        events = [json.loads(part) for part in first.content.split(b"\x1e")[:-1]]
        assert events[-1]["payload"]["workflowStatus"] == "suspended"
        assert any(e["type"] == "workflow-step-progress" for e in events)  # the foreach

        second = await client.post(
            f"{wf}/resume-async?runId={run_id}",
            json={
                "resumeData": {"approved": True, "approver": "Grace Hopper"},
                "requestContext": {SIMULATED_LATENCY: 0},
            },
        )
        result = second.json()
        assert result["status"] == "success", result
        assert result["result"]["order_id"] == "ORD-20417"
        assert "write-confirmation" in result["steps"]


async def test_the_confirmation_writer_is_served_as_an_agent() -> None:
    async with asgi_client(create_app(example_app())) as client:
        agents = (await client.get("/api/agents")).json()
        assert list(agents) == ["confirmation-writer"]
        assert "lookup_delivery_window" in agents["confirmation-writer"]["tools"]
        workflows = (await client.get("/api/workflows")).json()
        assert list(workflows) == ["order-fulfilment"]
        assert [e["type"] for e in workflows["order-fulfilment"]["stepGraph"]][:3] == [
            "step",
            "parallel",
            "conditional",
        ]
