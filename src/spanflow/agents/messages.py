"""Messages: the conversation an agent sends to its model, and what the model answers.

Four small frozen dataclasses (`SystemMessage`, `UserMessage`, `AssistantMessage`,
`ToolMessage`) and the `ToolCall` an assistant message carries. Callers may pass a plain
string, message objects, or dicts in the familiar chat shape
(``{"role": "user", "content": "hi"}``); `coerce_messages` validates those with pydantic at the
edge and names the offending item when one is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pydantic

from spanflow.errors import InvalidInputError
from spanflow.tracing.semconv import output_message, text_part, tool_response_message

__all__ = [
    "AssistantMessage",
    "Message",
    "MessagesInput",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
    "coerce_messages",
    "message_from_dict",
]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for."""

    id: str
    """The call id the model chose; the tool result refers to it."""
    name: str
    """The tool's name as the model knows it."""
    arguments: str
    """The arguments exactly as the model produced them: JSON text (possibly malformed)."""

    def parse_arguments(self) -> Any:
        """The arguments as Python data (``{}`` for empty text).

        Raises:
            ValueError: The text is not valid JSON.
        """
        if not self.arguments.strip():
            return {}
        return json.loads(self.arguments)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class SystemMessage:
    """Instructions for the model."""

    content: str
    role: Literal["system"] = "system"

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}

    def to_model_message(self) -> dict[str, Any]:
        """The AI SDK's ``ModelMessage`` (what Mastra's results carry)."""
        return self.to_dict()

    def to_genai(self) -> dict[str, Any]:
        """The GenAI conventions' shape (tracing puts it in ``gen_ai.system_instructions``)."""
        return {"role": self.role, "parts": [text_part(self.content)]}


@dataclass(frozen=True, slots=True)
class UserMessage:
    """What the user said."""

    content: str
    role: Literal["user"] = "user"

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}

    def to_model_message(self) -> dict[str, Any]:
        """The AI SDK's ``ModelMessage`` (what Mastra's results carry)."""
        return self.to_dict()

    def to_genai(self) -> dict[str, Any]:
        """The GenAI conventions' shape, for ``gen_ai.input.messages``."""
        return {"role": self.role, "parts": [text_part(self.content)]}


@dataclass(frozen=True, slots=True)
class AssistantMessage:
    """What the model answered: text, tool calls, or both."""

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    role: Literal["assistant"] = "assistant"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return out

    def to_model_message(self) -> dict[str, Any]:
        """The AI SDK's ``ModelMessage``: text and ``tool-call`` parts."""
        parts: list[dict[str, Any]] = (
            [{"type": "text", "text": self.content}] if self.content else []
        )
        parts += [
            {"type": "tool-call", "toolCallId": c.id, "toolName": c.name, "input": _input(c)}
            for c in self.tool_calls
        ]
        return {"role": self.role, "content": parts}

    def to_genai(self) -> dict[str, Any]:
        """The GenAI conventions' shape, for ``gen_ai.input.messages``."""
        return output_message(self.content, self.tool_calls)


@dataclass(frozen=True, slots=True)
class ToolMessage:
    """The outcome of one tool call, fed back to the model."""

    tool_call_id: str
    tool_name: str
    content: str
    """The result as text (JSON for structured results) or the error message."""
    is_error: bool = False
    role: Literal["tool"] = "tool"

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "tool_call_id": self.tool_call_id,
            "tool_name": self.tool_name,
            "content": self.content,
            "is_error": self.is_error,
        }

    def to_model_message(self) -> dict[str, Any]:
        """The AI SDK's ``ModelMessage``: one ``tool-result`` part (its output as text, or as
        ``error-text`` for a failed call)."""
        output = {"type": "error-text" if self.is_error else "text", "value": self.content}
        part = {
            "type": "tool-result",
            "toolCallId": self.tool_call_id,
            "toolName": self.tool_name,
            "output": output,
        }
        return {"role": self.role, "content": [part]}

    def to_genai(self) -> dict[str, Any]:
        """The GenAI conventions' shape, for ``gen_ai.input.messages``."""
        return tool_response_message(self.tool_call_id, self.content)


Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage


def _input(call: ToolCall) -> Any:
    """A tool call's arguments as the object they encode (as the model sent them if they are
    not JSON)."""
    try:
        return json.loads(call.arguments)
    except (TypeError, ValueError):
        return call.arguments


"""Any message of a conversation."""

MessagesInput = str | Message | Mapping[str, Any] | Sequence[Message | Mapping[str, Any] | str]
"""What the agent calls accept: a prompt, one message, or a list of messages (objects, dicts
in the chat shape, or strings, which are user messages)."""


# -- the edge: dicts in the chat shape, validated by pydantic ----------------------------------


class _Wire(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")


class _ToolCallIn(_Wire):
    id: str
    name: str
    arguments: str | dict[str, Any] = ""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _openai_shape(cls, value: Any) -> Any:
        # Accept OpenAI's {"id", "type": "function", "function": {"name", "arguments"}} too.
        if isinstance(value, Mapping) and isinstance(value.get("function"), Mapping):
            function = value["function"]
            return {
                "id": value.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments", ""),
            }
        return value


class _SystemIn(_Wire):
    role: Literal["system"]
    content: str


class _UserIn(_Wire):
    role: Literal["user"]
    content: str


class _AssistantIn(_Wire):
    role: Literal["assistant"]
    content: str | None = None
    tool_calls: list[_ToolCallIn] = pydantic.Field(default_factory=list)


class _ToolIn(_Wire):
    role: Literal["tool"]
    tool_call_id: str
    content: str
    tool_name: str = ""
    is_error: bool = False


_MessageIn = Annotated[
    _SystemIn | _UserIn | _AssistantIn | _ToolIn, pydantic.Field(discriminator="role")
]
_ROLES = ("system", "user", "assistant", "tool")
_MESSAGE_ADAPTER: pydantic.TypeAdapter[_SystemIn | _UserIn | _AssistantIn | _ToolIn] = (
    pydantic.TypeAdapter(_MessageIn)
)


def message_from_dict(data: Mapping[str, Any], *, what: str = "message") -> Message:
    """Build a message from a dict in the chat shape (``{"role": ..., "content": ...}``).

    Raises:
        InvalidInputError: naming `what` and the field that is wrong.
    """
    role = data.get("role")
    if role not in _ROLES:
        raise InvalidInputError(
            f"invalid {what}: field 'role' must be 'system', 'user', 'assistant' or 'tool', "
            f"got {role!r}"
        )
    try:
        parsed = _MESSAGE_ADAPTER.validate_python(dict(data))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
            if err["loc"]
            else err["msg"]
            for err in exc.errors(include_url=False)
        )
        raise InvalidInputError(f"invalid {what}: {problems}") from None
    if isinstance(parsed, _SystemIn):
        return SystemMessage(parsed.content)
    if isinstance(parsed, _UserIn):
        return UserMessage(parsed.content)
    if isinstance(parsed, _ToolIn):
        return ToolMessage(parsed.tool_call_id, parsed.tool_name, parsed.content, parsed.is_error)
    calls = tuple(
        ToolCall(
            call.id,
            call.name,
            call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments),
        )
        for call in parsed.tool_calls
    )
    return AssistantMessage(parsed.content or "", calls)


_MESSAGE_TYPES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage)


def coerce_messages(messages: MessagesInput) -> list[Message]:
    """Turn what a caller passed into a list of messages.

    Raises:
        InvalidInputError: The input is neither a string, a message, a dict nor a list of
            those; or an item is wrong (the error names its index and field).
    """
    value: object = messages  # untyped callers pass anything
    if isinstance(value, str):
        return [UserMessage(value)]
    if isinstance(value, _MESSAGE_TYPES):
        return [value]
    if isinstance(value, Mapping):
        return [message_from_dict(value)]
    if not isinstance(value, Sequence) or isinstance(value, bytes | bytearray):
        raise InvalidInputError(
            f"messages must be a string, a message, or a list of messages, "
            f"got {type(value).__name__}"
        )
    out: list[Message] = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            out.append(UserMessage(item))
        elif isinstance(item, _MESSAGE_TYPES):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(message_from_dict(item, what=f"messages[{index}]"))
        else:
            raise InvalidInputError(
                f"invalid messages[{index}]: expected a message or a dict with 'role' and "
                f"'content', got {type(item).__name__}"
            )
    return out
