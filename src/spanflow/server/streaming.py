"""The two stream wire formats, and a response that lets go of a client that left.

- Workflow streams (`workflow_records`): ``json(event.to_dict()) + "\\x1e"`` per event, compact
  JSON with non-ASCII kept as UTF-8 (what ``JSON.stringify`` writes), no newline, nothing after
  the last record; ``Content-Type: text/plain``.
- Agent and network streams (`sse_chunks`): Server-Sent Events, ``data: <json>\\n\\n`` per
  chunk and ``data: [DONE]\\n\\n`` last (after an ``error`` chunk if the stream raised);
  ``Content-Type: text/event-stream``, ``Cache-Control: no-cache``, ``X-Accel-Buffering: no``
  (so nginx does not buffer them).

Each event is written as soon as the engine emits it: the generator awaits the next event and
hands its bytes to the server at once (uvicorn writes a chunk per body message).

`EventStreamResponse` watches for the client's disconnect while it streams, whatever the ASGI
version (Starlette's own response only notices a gone client at its next write, which for a
run sleeping for an hour is an hour later): on disconnect it stops the generator and returns,
freeing the connection. Only the reading stops: the run is its own asyncio task, started by
the engine, and keeps running, storing its events for ``observe``. A stream that goes
``idle_stream_timeout`` seconds without an event is ended the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from spanflow.agents.chunks import error_summary
from spanflow.server.errors import LOGGER
from spanflow.workflows.events import WorkflowEvent

__all__ = [
    "RECORD_SEPARATOR",
    "SSE_HEADERS",
    "EventStreamResponse",
    "StreamSlots",
    "sse_chunks",
    "to_json",
    "workflow_records",
]

RECORD_SEPARATOR: Final = b"\x1e"
SSE_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def to_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as ``JSON.stringify`` writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def workflow_records(
    first: WorkflowEvent | None, rest: AsyncIterator[WorkflowEvent]
) -> AsyncIterator[bytes]:
    """The record-separated stream: `first` (already read), then the rest as they come."""
    if first is not None:
        yield to_json(first.to_dict()) + RECORD_SEPARATOR
    try:
        async for event in rest:
            yield to_json(event.to_dict()) + RECORD_SEPARATOR
    except Exception:
        # The headers are sent: the status cannot say it any more. The engine failed the run
        # (and stored it failed where it could); the body just ends.
        LOGGER.exception("a workflow stream ended with an error")


class _Chunk(Protocol):
    """What the SSE stream sends: an agent's or a network's chunk."""

    @property
    def run_id(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


async def sse_chunks(
    chunks: AsyncIterator[_Chunk], *, origin: str = "AGENT", run_id: str | None = None
) -> AsyncIterator[bytes]:
    """The Server-Sent Events stream of an agent call or network, ending in ``data: [DONE]``.

    A stream that raises midway (the agent and network streams turn their own failures into
    an ``error`` chunk; this is for what they could not) sends Mastra's ``error`` chunk, ``{type:
    "error", runId, from: origin, payload: {error: {name, message}}}``, before ``[DONE]``: the
    headers are sent, so the status cannot say it, and a client must not take the end for a
    success. `run_id` names the call until a chunk has named it.
    """
    last_run = run_id
    try:
        async for chunk in chunks:
            last_run = chunk.run_id
            yield b"data: " + to_json(chunk.to_dict()) + b"\n\n"
    except Exception as exc:
        LOGGER.exception("an %s stream ended with an error", origin.lower())
        error = {
            "type": "error",
            "runId": last_run,
            "from": origin,
            "payload": {"error": error_summary(exc)},
        }
        yield b"data: " + to_json(error) + b"\n\n"
    yield b"data: [DONE]\n\n"


class StreamSlots:
    """How many streams are open, against the configured bound (``None``: unbounded), and how
    long one may go without an event before it is closed (``idle_timeout``; ``None``: never)."""

    def __init__(self, limit: int | None, idle_timeout: float | None = None) -> None:
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.open = 0

    @property
    def full(self) -> bool:
        """Whether a new stream would go past the bound."""
        return self.limit is not None and self.open >= self.limit


class EventStreamResponse(StreamingResponse):
    """A streaming response that stops when the client disconnects (see the module docstring).

    Counts itself in `slots` while it streams.
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        media_type: str,
        headers: dict[str, str],
        slots: StreamSlots,
    ) -> None:
        idle = slots.idle_timeout
        bounded = content if idle is None else _idle_bounded(content, idle)
        super().__init__(bounded, media_type=media_type, headers=headers)
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._slots.open += 1
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            self._slots.open -= 1
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


async def _idle_bounded(content: AsyncIterator[bytes], idle: float) -> AsyncIterator[bytes]:
    """`content`, ended when it yields nothing for `idle` seconds (the run goes on: a client
    that still wants it observes it again from the events it got)."""
    try:
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await anext(content)
            except StopAsyncIteration:
                return
            except TimeoutError:
                LOGGER.info("closed a stream idle for %s s", idle)
                return
            yield chunk
    finally:
        close = getattr(content, "aclose", None)
        if close is not None:
            await close()
