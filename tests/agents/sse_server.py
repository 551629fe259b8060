"""A fake OpenAI-compatible chat-completions server on a loopback port, for the model tests.

It speaks just enough HTTP/1.1 for the official ``openai`` client: ``POST
/v1/chat/completions`` answered with server-sent events (``data: {chunk}`` lines, chunked
transfer encoding, a final ``data: [DONE]``). Each request takes the next scripted `Reply`:

- `StreamReply`: chat-completion chunks (build them with `completion_chunks`: text deltas,
  tool-call deltas split across chunks, a finish reason, and a usage chunk with empty
  ``choices`` as ``stream_options.include_usage`` asks), optionally hanging after some of them;
- `ErrorReply`: an HTTP error status with an OpenAI-style JSON error body;
- `HangReply`: read the request and never answer (for timeouts).

The server runs on the test's own event loop (``asyncio.start_server``), records every request
body, and closes all connections on `close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ErrorReply",
    "FakeOpenAIServer",
    "HangReply",
    "Reply",
    "StreamReply",
    "completion_chunks",
]


@dataclass(frozen=True, slots=True)
class StreamReply:
    """A 200 streaming answer."""

    chunks: Sequence[dict[str, Any]]
    hang_after: int | None = None
    """Send this many chunks, then stop sending (without closing) until the server closes."""
    done: bool = True
    """End with ``data: [DONE]``."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An HTTP error with a JSON body ``{"error": {"message", "type", "code"}}``."""

    status: int
    message: str
    type: str = "server_error"
    code: str | None = None


@dataclass(frozen=True, slots=True)
class HangReply:
    """Never answer."""


Reply = StreamReply | ErrorReply | HangReply

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests"}


def completion_chunks(
    *,
    text: str = "",
    tool_calls: Sequence[tuple[str, str, str]] = (),
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = (11, 7),
    model: str = "gpt-fake-2024",
    completion_id: str = "chatcmpl-fake",
    split_text: int = 2,
) -> list[dict[str, Any]]:
    """The chunks of one streamed completion.

    Args:
        text: Sent as deltas of `split_text` words each.
        tool_calls: ``(id, name, arguments_json)`` each; every call is sent as three deltas
            (id, type and name with empty arguments; then the arguments in two halves), and
            the calls are interleaved by index, as OpenAI does for parallel calls.
        finish_reason: Default ``tool_calls`` when there are tool calls, else ``stop``.
        usage: ``(prompt_tokens, completion_tokens)`` for the final usage chunk; ``None`` for
            none.
    """

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    words = text.split(" ")
    for start in range(0, len(words) if text else 0, split_text):
        piece = " ".join(words[start : start + split_text])
        if start + split_text < len(words):
            piece += " "
        chunks.append(chunk({"content": piece}))
    for index, (call_id, name, _) in enumerate(tool_calls):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        )
    halves = [(a[: len(a) // 2], a[len(a) // 2 :]) for _, _, a in tool_calls]
    for half in (0, 1):
        for index, parts in enumerate(halves):
            chunks.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": parts[half]}}]})
            )
    reason = finish_reason or ("tool_calls" if tool_calls else "stop")
    chunks.append(chunk({}, reason))
    if usage is not None:
        prompt, completion = usage
        chunks.append(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "prompt_tokens_details": {"cached_tokens": 3},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            }
        )
    return chunks


@dataclass(eq=False)
class FakeOpenAIServer:
    """The server. ``async with FakeOpenAIServer() as server: server.base_url ...``."""

    replies: deque[Reply] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    """The JSON body of every request received."""
    headers: list[dict[str, str]] = field(default_factory=list)
    """The headers of every request received (lowercase names)."""
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def add(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        self.replies.extend(replies)

    async def start(self) -> FakeOpenAIServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeOpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while not self._closing.is_set():
                if not await self._one_request(reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.headers.append(headers)
        self.requests.append(json.loads(body) if body else {})
        reply = self.replies.popleft() if self.replies else ErrorReply(500, "no reply scripted")
        if isinstance(reply, HangReply):
            await self._closing.wait()
            return False
        if isinstance(reply, ErrorReply):
            error: dict[str, Any] = {"message": reply.message, "type": reply.type}
            error["code"] = reply.code
            payload = json.dumps({"error": error}).encode()
            reason = _REASONS.get(reply.status, "Error")
            writer.write(
                f"HTTP/1.1 {reply.status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for sent, chunk in enumerate(reply.chunks):
            if reply.hang_after is not None and sent >= reply.hang_after:
                await writer.drain()
                await self._closing.wait()
                return False
            await self._send(writer, f"data: {json.dumps(chunk)}\n\n")
        if reply.done:
            await self._send(writer, "data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, event: str) -> None:
        data = event.encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()
