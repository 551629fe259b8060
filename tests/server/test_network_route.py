"""``POST /api/agents/:agentId/network``: the network's chunks as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from spanflow import Spanflow
from spanflow.agents import Agent
from spanflow.agents.memory import Memory
from spanflow.agents.network import NetworkChunk, NetworkStream
from spanflow.server import create_app
from spanflow.storage import SqliteStorage
from spanflow.storage.memory import MemoryStorage
from tests.agents.test_network import TASK, booking, network_agent, route, three_primitives
from tests.server.test_agent_routes import sse_frames


def app_of(agent: Agent) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=create_app(Spanflow(agents=[agent], storage=MemoryStorage()))
    )
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    agent = network_agent(*three_primitives())
    agent.memory = Memory(MemoryStorage())
    async with app_of(agent) as http:
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


async def test_memory_on_an_agent_without_one_is_a_400_naming_it() -> None:
    async with app_of(network_agent(*three_primitives())) as http:
        response = await http.post(
            "/api/agents/router/network",
            json={"messages": TASK, "memory": {"thread": "th-1", "resource": "res-1"}},
        )
    assert response.status_code == 400
    assert "agent 'router' has no memory" in response.text


async def test_a_stream_that_raises_midway_sends_an_error_chunk_before_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(self: NetworkStream) -> AsyncIterator[NetworkChunk]:
        yield NetworkChunk("routing-agent-start", self.run_id, {})
        raise RuntimeError("the buffer broke")

    monkeypatch.setattr(NetworkStream, "__aiter__", broken)
    async with app_of(network_agent(*three_primitives())) as http:
        response = await http.post(
            "/api/agents/router/network", json={"messages": TASK, "runId": "net-2"}
        )
    chunks = sse_frames(response.content)  # still ends in [DONE]
    assert [c["type"] for c in chunks] == ["routing-agent-start", "error"]
    assert chunks[-1] == {
        "type": "error",
        "runId": "net-2",
        "from": "NETWORK",
        "payload": {"error": {"name": "RuntimeError", "message": "the buffer broke"}},
    }


async def test_a_run_the_network_suspended_keeps_and_shows_only_the_callers_context(
    tmp_path: Path,
) -> None:
    store = SqliteStorage(tmp_path / "runs.db")
    workflow = booking(store)
    agent = network_agent(
        route("bookWf", "workflow", '{"city":"Tokyo"}', "book it"),
        workflows={"bookWf": workflow},
    )
    transport = httpx.ASGITransport(
        app=create_app(Spanflow(agents=[agent], workflows=[workflow], storage=store))
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post(
            "/api/agents/router/network",
            json={"messages": "Book Tokyo", "maxSteps": 3, "requestContext": {"tenant": "acme"}},
        )
        suspended = sse_frames(response.content)[-1]
        assert suspended["type"] == "workflow-execution-suspended"
        run_id = suspended["payload"]["runId"]
        shown = [
            await http.get(f"/api/workflows/book-wf/runs/{run_id}"),
            await http.get("/api/workflows/book-wf/runs"),
        ]

    assert [r.status_code for r in shown] == [200, 200]
    assert all("spanflow.network" not in r.text for r in shown)  # no network state shown
    stored = await workflow.get_run(run_id)
    assert stored is not None
    assert stored.snapshot["requestContext"] == {"tenant": "acme"}
