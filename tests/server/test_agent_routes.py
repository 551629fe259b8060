"""The agent routes: descriptions, ``generate`` in Mastra's FullOutput shape, ``stream`` as SSE."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.server.apps import CELSIUS


def sse_frames(body: bytes) -> list[Any]:
    """The chunks of an SSE body, checking its framing: ``data: <json>\\n\\n`` frames, the last
    one ``data: [DONE]``, nothing else."""
    assert body.endswith(b"data: [DONE]\n\n")
    frames = body.split(b"\n\n")
    assert frames[-1] == b""
    assert all(frame.startswith(b"data: ") and b"\n" not in frame for frame in frames[:-1])
    return [json.loads(frame[6:]) for frame in frames[:-2]]


async def test_agents_are_described(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/api/agents")).json()
    assert list(listing) == ["weather"]
    info = (await client.get("/api/agents/weather")).json()
    assert info["name"] == "Weather"
    assert info["instructions"] == "Answer briefly."
    assert info["tools"]["get_weather"]["inputSchema"]["properties"]["city"]["type"] == "string"
    assert info["modelId"] == "scripted"
    unknown = await client.get("/api/agents/nope")
    assert unknown.status_code == 404
    assert "no agent 'nope'" in unknown.json()["error"]


async def test_generate_answers_the_full_output(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/agents/weather/generate",
        json={"messages": "What is the weather in Paris?", "runId": "call-1", "perStep": False},
    )
    assert response.status_code == 200
    out = response.json()
    assert out["text"] == f"It is {CELSIUS} degrees in Paris."
    assert out["finishReason"] == "stop"
    assert out["runId"] == "call-1"
    assert out["object"] is None
    assert {"text", "usage", "steps", "toolCalls", "toolResults", "traceId", "spanId"} <= set(out)
    (call,) = out["toolCalls"]
    assert call["type"] == "tool-call"
    assert call["from"] == "AGENT"
    assert call["runId"] == "call-1"
    assert call["payload"]["toolName"] == "get_weather"
    assert call["payload"]["args"] == {"city": "Paris"}
    (result,) = out["toolResults"]
    assert result["type"] == "tool-result"
    assert result["payload"]["toolCallId"] == call["payload"]["toolCallId"]
    assert result["payload"]["result"] == {"city": "Paris", "celsius": CELSIUS}
    assert len(out["steps"]) == 2
    # The messages this call added, as the AI SDK's ModelMessages (Mastra's form).
    assert [m["role"] for m in out["messages"]] == ["assistant", "tool", "assistant"]
    (asked,) = out["messages"][0]["content"]
    assert asked == {
        "type": "tool-call",
        "toolCallId": call["payload"]["toolCallId"],
        "toolName": "get_weather",
        "input": {"city": "Paris"},
    }
    (answered,) = out["messages"][1]["content"]
    assert (answered["type"], answered["toolName"]) == ("tool-result", "get_weather")
    assert answered["output"]["type"] == "text"
    assert out["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": out["text"]}],
    }
    assert out["response"] == {"messages": out["messages"]}
    assert set(out["usage"]) >= {"inputTokens", "outputTokens", "totalTokens"}


async def test_messages_with_text_parts_are_accepted(client: httpx.AsyncClient) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]}]
    response = await client.post("/api/agents/weather/generate", json={"messages": messages})
    assert response.json()["text"] == f"It is {CELSIUS} degrees in Oslo."
    image = [{"role": "user", "content": [{"type": "image", "image": "..."}]}]
    refused = await client.post("/api/agents/weather/generate", json={"messages": image})
    assert refused.status_code == 400
    assert "messages.0.content.0" in refused.json()["error"]


async def test_stream_sends_server_sent_events_ending_in_done(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/agents/weather/stream", json={"messages": [{"role": "user", "content": "in Rome"}]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    chunks = sse_frames(response.content)
    types = [chunk["type"] for chunk in chunks]
    assert types[0] == "start"
    assert types[-1] == "finish"
    call = types.index("tool-call")
    assert types.index("tool-result") > call
    assert "text-delta" in types[call:]
    text = "".join(c["payload"]["text"] for c in chunks if c["type"] == "text-delta")
    assert text == f"It is {CELSIUS} degrees in Rome."
    assert all(chunk["from"] == "AGENT" for chunk in chunks)


async def test_bad_agent_bodies_are_400s(client: httpx.AsyncClient) -> None:
    missing = await client.post("/api/agents/weather/generate", json={})
    assert missing.status_code == 400
    assert "field 'messages'" in missing.json()["error"]
    structured = await client.post(
        "/api/agents/weather/generate",
        json={"messages": "hi", "structuredOutput": {"schema": {"type": "object"}}},
    )
    assert structured.status_code == 400
    assert "structuredOutput" in structured.json()["error"]
    steps = await client.post(
        "/api/agents/weather/generate", json={"messages": "hi", "maxSteps": 0}
    )
    assert steps.status_code == 400
    assert "field 'maxSteps'" in steps.json()["error"]
    role = await client.post(
        "/api/agents/weather/generate", json={"messages": [{"role": "robot", "content": "x"}]}
    )
    assert role.status_code == 400
    assert "role" in role.json()["error"]
