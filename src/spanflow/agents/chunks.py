"""Agent stream chunks: typed in Python, Mastra-shaped on the wire.

Each chunk is an `AgentChunk` whose `payload` is one of the payload dataclasses below, so Python
code can ``match`` on it. `to_dict()` gives Mastra's wire form
``{"type", "runId", "from": "AGENT", "payload"}`` with camelCase payload keys (``agents.md``
§3), built only when asked.

A run streams ``start``; per model call ``step-start``, the text as ``text-start`` /
``text-delta`` / ``text-end``, one ``tool-call`` per requested call, then a ``tool-result`` or
``tool-error`` per call as each finishes, and ``step-finish``; finally ``finish``. A failed run
ends with ``error`` instead of ``finish``, an aborted one with ``abort``, one a processor
stopped with ``tripwire`` (``{reason, retry, metadata?, processorId}``). A call with
``structured_output=`` also streams ``object`` chunks (the partial object so far, as its
JSON text arrives) and, before ``finish``, one ``object-result`` with the validated object;
as in Mastra, these two carry ``object`` at the top level instead of a ``payload``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from spanflow._schema import to_wire
from spanflow.tracing.redaction import redact_error_message
from spanflow.usage import Usage
from spanflow.workflows.results import TripwireInfo

__all__ = [
    "AbortPayload",
    "AgentChunk",
    "AgentChunkPayload",
    "ChunkType",
    "ErrorPayload",
    "FinishPayload",
    "ObjectPayload",
    "ObjectResultPayload",
    "StartPayload",
    "StepFinishPayload",
    "StepStartPayload",
    "TextDeltaPayload",
    "TextEndPayload",
    "TextStartPayload",
    "ToolCallPayload",
    "ToolErrorPayload",
    "ToolResultPayload",
    "TripwirePayload",
    "error_summary",
]

ChunkType = Literal[
    "start",
    "step-start",
    "text-start",
    "text-delta",
    "text-end",
    "tool-call",
    "tool-result",
    "tool-error",
    "step-finish",
    "finish",
    "error",
    "abort",
    "object",
    "object-result",
    "tripwire",
]


def error_summary(error: BaseException) -> dict[str, str]:
    """``{name, message}`` of an error, as chunks carry it (no stack: it goes to the span); the
    message redacted and cut as everywhere else."""
    return {"name": type(error).__name__, "message": redact_error_message(str(error))}


@dataclass(slots=True)
class StartPayload:
    """``start``: the agent call began."""

    agent_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"agentId": self.agent_id}


@dataclass(slots=True)
class StepStartPayload:
    """``step-start``: a model call (one step of the loop) begins."""

    message_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"messageId": self.message_id, "request": {}, "warnings": []}


@dataclass(slots=True)
class TextStartPayload:
    """``text-start``: a run of text deltas begins."""

    id: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id}


@dataclass(slots=True)
class TextDeltaPayload:
    """``text-delta``: a piece of text."""

    id: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text}


@dataclass(slots=True)
class TextEndPayload:
    """``text-end``: the run of text deltas with this id is complete."""

    id: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id}


@dataclass(slots=True)
class ToolCallPayload:
    """``tool-call``: the model asked for a tool call."""

    tool_call_id: str
    tool_name: str
    args: Any
    """The parsed arguments, or the raw text when it was not valid JSON."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "toolCallId": self.tool_call_id,
            "toolName": self.tool_name,
            "args": to_wire(self.args),
        }


@dataclass(slots=True)
class ToolResultPayload:
    """``tool-result``: a tool call succeeded."""

    tool_call_id: str
    tool_name: str
    args: Any
    result: Any
    is_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "toolCallId": self.tool_call_id,
            "toolName": self.tool_name,
            "args": to_wire(self.args),
            "result": to_wire(self.result),
            "isError": self.is_error,
        }


@dataclass(slots=True)
class ToolErrorPayload:
    """``tool-error``: a tool call failed (unknown tool, bad arguments, or the tool raised);
    the model is told and the loop goes on."""

    tool_call_id: str
    tool_name: str
    args: Any
    error: BaseException

    def to_dict(self) -> dict[str, Any]:
        return {
            "toolCallId": self.tool_call_id,
            "toolName": self.tool_name,
            "args": to_wire(self.args),
            "error": error_summary(self.error),
        }


@dataclass(slots=True)
class StepFinishPayload:
    """``step-finish``: a model call and its tool calls are done."""

    message_id: str
    reason: str
    is_continued: bool
    """Whether another step follows (tool results go back to the model)."""
    text: str
    tool_calls: list[ToolCallPayload]
    usage: Usage
    """This step's usage."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "stepResult": {"reason": self.reason, "isContinued": self.is_continued},
            "output": {
                "text": self.text,
                "toolCalls": [call.to_dict() for call in self.tool_calls],
                "usage": self.usage.to_dict(),
            },
        }


@dataclass(slots=True)
class FinishPayload:
    """``finish``: the agent call completed."""

    reason: str
    usage: Usage
    """The usage summed over every step."""

    def to_dict(self) -> dict[str, Any]:
        # Mastra nests the usage under ``output``; @mastra/client-js reads ``payload.usage``.
        usage = self.usage.to_dict()
        return {"stepResult": {"reason": self.reason}, "output": {"usage": usage}, "usage": usage}


@dataclass(slots=True)
class ErrorPayload:
    """``error``: the agent call failed (the model could not be called, say); the last chunk."""

    error: BaseException

    def to_dict(self) -> dict[str, Any]:
        return {"error": error_summary(self.error)}


@dataclass(slots=True)
class AbortPayload:
    """``abort``: the agent call was aborted; the last chunk."""

    def to_dict(self) -> dict[str, Any]:
        return {}


@dataclass(slots=True)
class ObjectPayload:
    """``object``: the structured answer as far as it has streamed (a partial object)."""

    object: Any

    def to_dict(self) -> dict[str, Any]:
        return {"object": to_wire(self.object)}


@dataclass(slots=True)
class ObjectResultPayload:
    """``object-result``: the validated structured answer."""

    object: Any

    def to_dict(self) -> dict[str, Any]:
        return {"object": to_wire(self.object)}


@dataclass(slots=True)
class TripwirePayload:
    """``tripwire``: a processor stopped the call (``ctx.abort``); the last chunk."""

    tripwire: TripwireInfo

    def to_dict(self) -> dict[str, Any]:
        return self.tripwire.to_dict()


AgentChunkPayload = (
    StartPayload
    | StepStartPayload
    | TextStartPayload
    | TextDeltaPayload
    | TextEndPayload
    | ToolCallPayload
    | ToolResultPayload
    | ToolErrorPayload
    | StepFinishPayload
    | FinishPayload
    | ErrorPayload
    | AbortPayload
    | ObjectPayload
    | ObjectResultPayload
    | TripwirePayload
)


@dataclass(slots=True)
class AgentChunk:
    """One chunk of an agent stream."""

    type: ChunkType
    run_id: str
    payload: AgentChunkPayload
    from_: Literal["AGENT"] = field(default="AGENT")

    def to_dict(self) -> dict[str, Any]:
        """Mastra's wire form: ``{"type", "runId", "from", "payload"}`` (``object`` in place of
        ``payload`` for ``object`` and ``object-result``)."""
        if isinstance(self.payload, ObjectPayload | ObjectResultPayload):
            return {
                "type": self.type,
                "runId": self.run_id,
                "from": self.from_,
                "object": to_wire(self.payload.object),
            }
        return {
            "type": self.type,
            "runId": self.run_id,
            "from": self.from_,
            "payload": self.payload.to_dict(),
        }
