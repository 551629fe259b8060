"""``POST /api/agents/:agentId/network``: the network's chunks as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from spanflow import Spanflow
from spanflow.server import create_app
from spanflow.storage.memory import MemoryStorage
from tests.agents.test_network import TASK, network_agent, three_primitives
from tests.server.test_agent_routes import sse_frames


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Spanflow(agents=[network_agent(*three_primitives())], storage=MemoryStorage())
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_the_network_streams_its_chunks_as_server_sent_events(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/agents/router/network",
        json={
            "messages": [{"role": "user", "content": [{"type": "text", "text": TASK}]}],
            "maxSteps": 6,
            "runId": "net-1",
            "memory": {"thread": "th-1", "resource": "res-1"},
        },
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = sse_frames(response.content)
    assert {(c["from"], c["runId"]) for c in chunks} == {("NETWORK", "net-1")}
    assert chunks[0]["type"] == "routing-agent-start"
    assert chunks[0]["payload"]["inputData"]["threadId"] == "th-1"
    finish = chunks[-1]
    assert finish["type"] == "network-execution-event-finish"
    assert finish["payload"]["result"] == "Tokyo is sunny; go to the park at 14:00."
    assert finish["payload"]["threadResourceId"] == "res-1"


async def test_an_unknown_agent_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/agents/nope/network", json={"messages": "hi"})
    assert response.status_code == 404
