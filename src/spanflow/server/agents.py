"""The agent routes: ``GET /agents``, ``GET /agents/:agentId``, ``POST .../generate``,
``POST .../stream`` and ``POST .../network`` (Server-Sent Events).

Both calls run the agent with `Agent.stream`, in the agent's own asyncio task: ``generate``
awaits its result through `asyncio.shield`, so a client that hangs up never cancels the call.
``generate`` answers the result in Mastra's ``FullOutput`` shape (`AgentResult.to_dict`);
``stream`` sends every chunk as ``data: <json>`` and ends with ``data: [DONE]``. Both carry a
``traceparent`` response header naming the ``invoke_agent`` span.

The body is Mastra's: ``messages`` (a prompt, or ``{role, content}`` messages whose content is
a string or a list of ``{type: "text", text}`` parts), ``requestContext``, ``tracingOptions``,
``memory: {thread, resource}`` (which conversation and user the call is for: spanflow records
them on the spans, ``gen_ai.conversation.id`` and ``spanflow.resource.id``; it keeps no
conversation history, so earlier messages are whatever the client sends), ``maxSteps`` and
``runId``. ``structuredOutput`` is refused with a 400: spanflow agents answer in text.

``network`` runs the agent's network (`spanflow.agents.network.network`) with the same body
(``maxSteps`` is the most iterations, default 1) and streams its network chunks as SSE like
``stream``; its ``traceparent`` names the network's ``invoke_agent`` span. Its ``memory`` is
the network's thread (``resource``, or ``resourceId``, is required, and the agent must have a
``Memory``: a 400 otherwise), where the network keeps the task and each result. A network
that fails ends with its ``error`` chunk, then ``[DONE]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spanflow.agents.agent import Agent, AgentStream
from spanflow.agents.network import NetworkStream
from spanflow.agents.network import network as run_network
from spanflow.registry import Spanflow
from spanflow.server.bodies import AgentBody, read_body, tracing_options
from spanflow.server.descriptions import agent_info
from spanflow.server.errors import ApiError
from spanflow.server.streaming import (
    SSE_HEADERS,
    EventStreamResponse,
    StreamSlots,
    sse_chunks,
)
from spanflow.tracing.http import traceparent_header

__all__ = ["AgentRoutes", "chat_messages"]


@dataclass(slots=True)
class AgentRoutes:
    """The handlers of the agent routes."""

    spanflow: Spanflow
    max_body_bytes: int
    slots: StreamSlots

    async def list_agents(self, request: Request) -> Response:
        """``GET /agents``: ``{id: info}``."""
        return JSONResponse({aid: agent_info(a) for aid, a in self.spanflow.agents.items()})

    async def get_agent(self, request: Request) -> Response:
        """``GET /agents/:agentId``."""
        return JSONResponse(agent_info(self.spanflow.get_agent(request.path_params["agentId"])))

    async def generate(self, request: Request) -> Response:
        """``POST /agents/:agentId/generate``: the whole result (``FullOutput``)."""
        stream = await self._call(request)
        result = await asyncio.shield(stream.result)
        return JSONResponse(result.to_dict(), headers=_trace_headers(stream))

    async def stream(self, request: Request) -> Response:
        """``POST /agents/:agentId/stream``: the chunks as Server-Sent Events."""
        if self.slots.full:
            raise ApiError(503, f"too many open streams (the limit is {self.slots.limit})")
        stream = await self._call(request)
        return EventStreamResponse(
            sse_chunks(aiter(stream), run_id=stream.run_id),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **_trace_headers(stream)},
            slots=self.slots,
        )

    async def network(self, request: Request) -> Response:
        """``POST /agents/:agentId/network``: the network's chunks as Server-Sent Events."""
        if self.slots.full:
            raise ApiError(503, f"too many open streams (the limit is {self.slots.limit})")
        agent, body = await self._agent_and_body(request)
        memory = body.memory
        stream = run_network(
            agent,
            chat_messages(body.messages),
            # The network's memory rule is the agent's: a thread needs its resource and an agent
            # with a Memory (else a 400 naming the problem), never a silent default.
            memory=(
                {"thread": memory.thread_id(), "resource": memory.resource or body.resourceId}
                if memory is not None
                else None
            ),
            max_steps=body.maxSteps or 1,
            request_context=body.requestContext,
            tracing_options=tracing_options(body.tracingOptions),
            run_id=body.runId,
        )
        return EventStreamResponse(
            sse_chunks(aiter(stream), origin="NETWORK", run_id=stream.run_id),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **_trace_headers(stream)},
            slots=self.slots,
        )

    async def _agent_and_body(self, request: Request) -> tuple[Agent, AgentBody]:
        agent = self.spanflow.get_agent(request.path_params["agentId"])
        if not isinstance(agent, Agent):
            raise ApiError(
                400, f"agent {agent.id!r} is not a spanflow Agent; it cannot be called here"
            )
        body = await read_body(request, AgentBody, self.max_body_bytes)
        if body.structuredOutput is not None:
            raise ApiError(
                400,
                "invalid body: field 'structuredOutput': spanflow agents answer in text; "
                "structured output is not supported",
            )
        return agent, body

    async def _call(self, request: Request) -> AgentStream:
        agent, body = await self._agent_and_body(request)
        memory = body.memory
        return agent.stream(
            chat_messages(body.messages),
            request_context=body.requestContext,
            tracing_options=tracing_options(body.tracingOptions),
            thread_id=memory.thread_id() if memory is not None else None,
            resource_id=(memory.resource if memory is not None else None) or body.resourceId,
            run_id=body.runId,
            max_steps=body.maxSteps,
        )


def chat_messages(messages: Any) -> Any:
    """Mastra's messages as the agent takes them: text parts joined into a string.

    Anything else is passed on for the agent to check (its errors name the message and field).

    Raises:
        ApiError: 400 for a content part that is not text (images and files are not supported).
    """
    if not isinstance(messages, list):
        return messages
    out: list[Any] = []
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            message = {**message, "content": _text_of(content, index)}
        out.append(message)
    return out


def _text_of(parts: list[Any], index: int) -> str:
    texts: list[str] = []
    for number, part in enumerate(parts):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and part.get("type") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise ApiError(
                    400,
                    f"invalid body: field 'messages.{index}.content.{number}.text': "
                    "must be a string",
                )
            texts.append(text)
        else:
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise ApiError(
                400,
                f"invalid body: field 'messages.{index}.content.{number}': only text parts are "
                f"supported, got {kind!r}",
            )
    return "".join(texts)


def _trace_headers(stream: AgentStream | NetworkStream) -> dict[str, str]:
    value = traceparent_header(stream.trace_id, stream.span_id)
    return {"traceparent": value} if value is not None else {}
