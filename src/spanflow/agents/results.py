"""What an agent call produced: `AgentResult`, its `AgentStepResult`s and tool call records.

In Python the records keep the original objects (parsed arguments, tool results, exceptions);
`to_dict()` gives a camelCase wire form like the chunks'. `AgentResult.to_dict` is Mastra's
``FullOutput`` (what ``POST /agents/:id/generate`` answers): ``text``, ``usage``, ``steps``,
``finishReason``, ``toolCalls`` and ``toolResults`` (as Mastra's chunk objects,
``{type, runId, from, payload}``), ``object`` (the validated structured answer of a
``structured_output=`` call, else ``null``), ``traceId``/``spanId`` (``null`` when
untraced), ``runId``, and ``messages`` (the messages this call added, as the AI SDK's
``ModelMessage``s; ``response.messages`` too, where @mastra/client-js looks for them), plus
spanflow's ``status``, ``maxStepsReached``, ``error`` and, when a processor stopped the
call, Mastra's ``tripwire`` (``{reason, retry, metadata?, processorId}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from spanflow._schema import to_wire
from spanflow.agents.chunks import error_summary
from spanflow.agents.messages import Message
from spanflow.usage import Usage
from spanflow.workflows.results import TripwireInfo

__all__ = ["AgentResult", "AgentStatus", "AgentStepResult", "ToolCallRecord", "ToolResultRecord"]

AgentStatus = Literal["success", "failed", "aborted", "tripwire"]
"""``tripwire``: a processor stopped the call on purpose (``ctx.abort``); not a failure."""


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A tool call the model made."""

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


@dataclass(frozen=True, slots=True)
class ToolResultRecord:
    """The outcome of one tool call: a result, or the error the model was told about."""

    tool_call_id: str
    tool_name: str
    args: Any
    result: Any = None
    error: BaseException | None = None

    @property
    def is_error(self) -> bool:
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "toolCallId": self.tool_call_id,
            "toolName": self.tool_name,
            "args": to_wire(self.args),
            "isError": self.is_error,
        }
        if self.error is not None:
            out["error"] = error_summary(self.error)
        else:
            out["result"] = to_wire(self.result)
        return out


@dataclass(slots=True)
class AgentStepResult:
    """One step of the loop: a model call and the tool calls it asked for."""

    index: int
    """1-based."""
    text: str
    finish_reason: str
    usage: Usage
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    tool_results: list[ToolResultRecord] = field(default_factory=list)
    is_continued: bool = False
    """Whether the tool results went back to the model in another step."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "text": self.text,
            "finishReason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "toolCalls": [c.to_dict() for c in self.tool_calls],
            "toolResults": [r.to_dict() for r in self.tool_results],
            "isContinued": self.is_continued,
        }


@dataclass(slots=True)
class AgentResult:
    """The outcome of `Agent.generate` (and of an `AgentStream`'s ``result``)."""

    status: AgentStatus
    run_id: str
    text: str = ""
    """The text of the last step."""
    finish_reason: str = "unknown"
    """The last step's reason (``stop``, ``tool-calls``, ``length``...), ``error`` when the
    call failed, ``abort`` when it was aborted."""
    usage: Usage = field(default_factory=Usage)
    """Summed over every model call, failed ones included when they reported usage."""
    steps: list[AgentStepResult] = field(default_factory=list)
    response_messages: list[Message] = field(default_factory=list)
    """The assistant and tool messages this call added to the conversation."""
    error: BaseException | None = None
    """What failed the call (status ``failed``): a `ModelError` for a model failure."""
    max_steps_reached: bool = False
    """The loop stopped at ``max_steps`` although the model had asked for tools."""
    trace_id: str | None = None
    """The ``invoke_agent`` span's trace id (32 hex), ``None`` when not traced."""
    span_id: str | None = None
    """The ``invoke_agent`` span's id (16 hex), ``None`` when not traced."""
    object: Any = None
    """The structured answer of a ``structured_output=`` call: an instance of the pydantic
    model, or the parsed JSON for a JSON Schema; ``None`` otherwise or when the call failed."""
    tripwire: TripwireInfo | None = None
    """Why a processor stopped the call (status ``tripwire``)."""

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        """Every tool call of every step, in order."""
        return [call for step in self.steps for call in step.tool_calls]

    @property
    def tool_results(self) -> list[ToolResultRecord]:
        """Every tool outcome of every step, in call order."""
        return [result for step in self.steps for result in step.tool_results]

    def to_dict(self) -> dict[str, Any]:
        """Mastra's ``FullOutput`` shape (see the module docstring)."""
        messages = [m.to_model_message() for m in self.response_messages]
        out: dict[str, Any] = {
            "text": self.text,
            "usage": self.usage.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "finishReason": self.finish_reason,
            "toolCalls": [self._chunk("tool-call", c.to_dict()) for c in self.tool_calls],
            "toolResults": [self._tool_result(r) for r in self.tool_results],
            "object": to_wire(self.object),
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "runId": self.run_id,
            "messages": messages,
            "response": {"messages": messages},
            "status": self.status,
            "maxStepsReached": self.max_steps_reached,
        }
        if self.error is not None:
            out["error"] = error_summary(self.error)
        if self.tripwire is not None:
            out["tripwire"] = self.tripwire.to_dict()
        return out

    def _chunk(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, "runId": self.run_id, "from": "AGENT", "payload": payload}

    def _tool_result(self, record: ToolResultRecord) -> dict[str, Any]:
        payload = record.to_dict()
        return self._chunk("tool-error" if record.is_error else "tool-result", payload)
