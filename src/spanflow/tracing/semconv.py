"""The OpenTelemetry GenAI conventions' JSON shapes for messages, and what tracing needs of them.

The agents' message types render their own GenAI form (``to_genai()``) with the helpers here,
so that tracing depends on these small protocols rather than on the agent package. Shapes
follow the conventions' ``gen_ai.input.messages`` / ``gen_ai.output.messages`` schema: a
message is ``{"role", "parts": [...]}``, a part is ``{"type": "text", "content"}``,
``{"type": "tool_call", "id", "name", "arguments"}`` or
``{"type": "tool_call_response", "id", "response"}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = [
    "GenAIMessage",
    "GenAIToolCall",
    "json_or_text",
    "output_message",
    "text_part",
    "tool_response_message",
]


class GenAIMessage(Protocol):
    """A conversation message that can render itself in the GenAI conventions' shape."""

    @property
    def role(self) -> str:
        """``system``, ``user``, ``assistant`` or ``tool``."""
        ...

    def to_genai(self) -> dict[str, Any]:
        """``{"role", "parts": [...]}`` (plus ``finish_reason`` for a model's answer)."""
        ...


class GenAIToolCall(Protocol):
    """A tool call a model asked for."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def arguments(self) -> str:
        """The arguments as the model produced them (JSON text, possibly malformed)."""
        ...


def text_part(content: str) -> dict[str, Any]:
    """A text part."""
    return {"type": "text", "content": content}


def output_message(
    text: str, tool_calls: Sequence[GenAIToolCall] = (), finish_reason: str | None = None
) -> dict[str, Any]:
    """A model's answer: its text and tool calls (arguments parsed when they are JSON)."""
    parts: list[dict[str, Any]] = []
    if text:
        parts.append(text_part(text))
    for call in tool_calls:
        parts.append(
            {
                "type": "tool_call",
                "id": call.id,
                "name": call.name,
                "arguments": json_or_text(call.arguments),
            }
        )
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


def tool_response_message(call_id: str, content: str) -> dict[str, Any]:
    """The outcome of one tool call, fed back to the model."""
    part = {"type": "tool_call_response", "id": call_id, "response": json_or_text(content)}
    return {"role": "tool", "parts": [part]}


def json_or_text(text: str) -> Any:
    """Parsed JSON (so redaction sees its keys) when `text` is a JSON object or array."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
