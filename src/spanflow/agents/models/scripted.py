"""`ScriptedModel`: deterministic replies for tests, examples and demos (no network, no key).

Replies come from a list (one per model call, in order) or from a function of the
`ModelRequest` (sync or async), so a reply can depend on the conversation: answer a tool
result, echo the prompt, call a tool only when asked. A reply is a string (plain text) or a
`ScriptedReply` (text, tool calls, finish reason, usage, an error to raise, a delay, or an
``object`` for structured output, streamed as its JSON text).

Text is streamed word by word. Usage, unless a reply gives its own, is counted in words:
input tokens are the words of every message sent, output tokens the words of the reply text
plus one per tool call, so sums are easy to predict in tests.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanflow.agents.errors import AgentDefinitionError, ModelError
from spanflow.agents.messages import AssistantMessage, Message, ToolMessage, UserMessage
from spanflow.agents.models.base import (
    FinishReason,
    ModelChunk,
    ModelFinish,
    ModelRequest,
    ModelToolCall,
    ModelUsage,
    TextDelta,
)
from spanflow.usage import Usage

__all__ = [
    "ScriptFunction",
    "ScriptedModel",
    "ScriptedReply",
    "ScriptedToolCall",
    "last_tool_results",
    "last_user_text",
]

_WORD = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    """A tool call the scripted model makes."""

    name: str
    args: Mapping[str, Any] | str = field(default_factory=dict)
    """The arguments; a string is sent verbatim (use it to script malformed JSON)."""
    id: str | None = None
    """The call id; by default ``call_<model call number>_<position>``, e.g. ``call_1_2``."""


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One scripted model answer."""

    text: str = ""
    tool_calls: Sequence[ScriptedToolCall] = ()
    finish_reason: FinishReason | None = None
    """Default: ``tool-calls`` when the reply calls tools, else ``stop``."""
    usage: Usage | None = None
    """Default: counted in words (see the module docstring)."""
    error: BaseException | None = None
    """Raised after the text has been streamed (a failing or dropped connection)."""
    delay: float = 0.0
    """Seconds to wait before the first chunk (for abort and timeout tests)."""
    response_model: str | None = None
    """Reported as ``gen_ai.response.model``; default: the model id."""
    object: Any = None
    """A structured answer: streamed as its JSON text (after `text`, if both are given)."""

    @property
    def full_text(self) -> str:
        """What the reply streams: its text, then its object as JSON."""
        if self.object is None:
            return self.text
        return self.text + json.dumps(self.object)


Reply = str | ScriptedReply
ScriptFunction = Callable[[ModelRequest], Reply | Awaitable[Reply]]
"""A function that chooses the reply to each request."""


class ScriptedModel:
    """A model whose answers are scripted. Safe to share between agents and runs.

    Args:
        replies: A list of replies, one per model call (a call past the end fails with a
            `ModelError` saying so), or a function of the request returning the reply.
        model_id: The model name on spans (``chat <model_id>``).
        structured_outputs: Whether it has a native response format (``supports_response_format``):
            by default it does, so a ``structured_output=`` call sends its schema in
            ``request.response_format``; ``False`` makes the agent ask in the system prompt.
    """

    provider = "spanflow.scripted"

    def __init__(
        self,
        replies: Sequence[Reply] | ScriptFunction,
        *,
        model_id: str = "scripted",
        structured_outputs: bool = True,
    ) -> None:
        if isinstance(replies, str):
            raise AgentDefinitionError(
                "ScriptedModel needs a list of replies or a function, not a single string: "
                "write ScriptedModel([...])"
            )
        if not callable(replies):
            for index, reply in enumerate(replies):
                if not isinstance(reply, str | ScriptedReply):
                    raise AgentDefinitionError(
                        f"ScriptedModel replies[{index}] must be a str or ScriptedReply, "
                        f"got {type(reply).__name__}"
                    )
        self._script = replies
        self._model_id = model_id
        self._structured_outputs = bool(structured_outputs)
        self.requests: list[ModelRequest] = []
        """Every request received, in order (for assertions)."""

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def supports_response_format(self) -> bool:
        return self._structured_outputs

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        self.requests.append(request)
        call_number = len(self.requests)
        reply = await self._reply(request, call_number)
        if isinstance(reply, str):
            reply = ScriptedReply(text=reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        for piece in _WORD.findall(reply.full_text):
            yield TextDelta(piece)
            await asyncio.sleep(0)  # let consumers see a real stream, chunk by chunk
        if reply.error is not None:
            raise reply.error
        step = _assistant_turns(request.messages) + 1
        for position, call in enumerate(reply.tool_calls, start=1):
            arguments = call.args if isinstance(call.args, str) else json.dumps(dict(call.args))
            yield ModelToolCall(call.id or f"call_{step}_{position}", call.name, arguments)
        yield ModelUsage(reply.usage or _word_usage(request.messages, reply))
        reason: FinishReason = reply.finish_reason or ("tool-calls" if reply.tool_calls else "stop")
        yield ModelFinish(reason, reply.response_model or self._model_id, f"scripted-{call_number}")

    async def _reply(self, request: ModelRequest, call_number: int) -> Reply:
        script = self._script
        if callable(script):
            produced = script(request)
            if inspect.isawaitable(produced):
                produced = await produced
            if not isinstance(produced, str | ScriptedReply):
                raise ModelError(
                    f"the ScriptedModel function returned {type(produced).__name__}; "
                    f"it must return a str or ScriptedReply",
                    provider=self.provider,
                    kind="script",
                )
            return produced
        if call_number > len(script):
            raise ModelError(
                f"ScriptedModel has no reply for call {call_number}: only {len(script)} "
                f"replies were scripted",
                provider=self.provider,
                kind="script",
            )
        return script[call_number - 1]

    def __repr__(self) -> str:
        return f"<ScriptedModel {self._model_id!r}>"


def last_user_text(request: ModelRequest) -> str:
    """The content of the last user message of `request` ('' if there is none)."""
    for message in reversed(request.messages):
        if isinstance(message, UserMessage):
            return message.content
    return ""


def last_tool_results(request: ModelRequest) -> list[ToolMessage]:
    """The tool messages after the last assistant message (the results the model awaits)."""
    results: list[ToolMessage] = []
    for message in reversed(request.messages):
        if isinstance(message, ToolMessage):
            results.append(message)
        else:
            break
    results.reverse()
    return results


def _assistant_turns(messages: Sequence[Message]) -> int:
    return sum(isinstance(m, AssistantMessage) for m in messages)


def _words(text: str) -> int:
    return len(text.split())


def _word_usage(messages: Sequence[Message], reply: ScriptedReply) -> Usage:
    input_tokens = sum(_words(m.content) for m in messages)
    output_tokens = _words(reply.full_text) + len(reply.tool_calls)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
