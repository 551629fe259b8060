"""The live GenAI scopes: one ``invoke_agent``, ``chat`` or ``execute_tool`` span each.

`spanflow.tracing.genai` opens the agent scope; the agent scope opens the model and tool scopes
under it. Entering a scope makes its span and the call's `TracingContext` current, so a run or
agent started inside (a workflow used as a tool) is nested in this call. Every method runs
under the one guard: tracing never fails an agent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from spanflow.tracing._current import as_current, make_current, restore
from spanflow.tracing._guard import internal_errors
from spanflow.tracing.attributes import error_type
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.context import TracingContext
from spanflow.tracing.ids import format_span_id, format_trace_id
from spanflow.tracing.semconv import GenAIMessage, output_message
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.tracing.genai import (
        AgentEnd,
        AgentScope,
        AgentScopeStatus,
        ChatEnd,
        ChatScope,
        ChatStart,
        ScopeStatus,
        ToolScope,
        ToolStart,
    )

__all__ = [
    "NOOP_AGENT_SCOPE",
    "AgentTrace",
    "OtelAgentScope",
    "QuietAgentScope",
    "genai_messages",
    "usage_attributes",
]


class _NoopScope:
    """Tracing off: every method does nothing."""

    __slots__ = ()
    trace_id = None
    span_id = None

    def enter(self) -> object:
        return None

    def exit(self, token: object) -> None:
        pass

    def current(self) -> AbstractContextManager[None]:
        return nullcontext()

    def chat(self, start: ChatStart) -> ChatScope:
        return self

    def tool(self, start: ToolStart) -> ToolScope:
        return self

    def first_chunk(self) -> None:
        pass

    def end(self, *args: Any, **kwargs: Any) -> None:
        pass


NOOP_AGENT_SCOPE: AgentScope = _NoopScope()


class QuietAgentScope(_NoopScope):
    """A sampled-out agent call: records nothing, but its non-recording span and its
    `TracingContext` stay current around its model and tool calls, so what they start joins
    its trace unsampled and hides what it hides (as `QuietScope` does for runs)."""

    __slots__ = ("_context", "_span")

    def __init__(self, context: TracingContext, span: trace.Span) -> None:
        self._context = context
        self._span = span

    def enter(self) -> object:
        return make_current(self._span, self._context)

    def exit(self, token: object) -> None:
        restore(token)

    def current(self) -> AbstractContextManager[None]:
        return as_current(self._span, self._context)


@dataclass(slots=True, eq=False, kw_only=True)
class AgentTrace:
    """What every span of one agent call shares."""

    tracer: trace.Tracer
    clock: Callable[[], float]
    common: dict[str, Any]
    """Attributes on every span of the call (ids, and by default tags and metadata)."""
    context: TracingContext
    """The call's tracing facts (its settings among them), current while any of its spans is."""
    # Derived once from the context, read on every span:
    config: TracingConfig = field(init=False)
    capture_input: bool = field(init=False)
    capture_output: bool = field(init=False)

    def __post_init__(self) -> None:
        context = self.context
        config = self.config = context.config
        self.capture_input = config.capture_input and not context.hide_input
        self.capture_output = config.capture_output and not context.hide_output

    def json(self, value: Any) -> str:
        return self.config.attribute_json(value)

    def child(
        self, name: str, kind: SpanKind, attributes: dict[str, Any], parent: trace.Span
    ) -> trace.Span:
        ctx = trace.set_span_in_context(parent)
        return self.tracer.start_span(name, ctx, kind, attributes)


class _OtelSpanScope:
    """Shared behaviour of the live scopes: make current, finish with a status."""

    __slots__ = ("_run", "_span")

    def __init__(self, run: AgentTrace, span: trace.Span) -> None:
        self._run = run
        self._span = span

    @property
    def span(self) -> trace.Span:
        """The scope's span (for the tracing package's own additions, such as a network's
        events and phase spans)."""
        return self._span

    @property
    def agent_trace(self) -> AgentTrace:
        """What every span of the scope's agent call shares."""
        return self._run

    def enter(self) -> object:
        return make_current(self._span, self._run.context)

    def exit(self, token: object) -> None:
        restore(token)

    def current(self) -> AbstractContextManager[None]:
        return as_current(self._span, self._run.context)

    def _finish(
        self, status_key: str, status: ScopeStatus | AgentScopeStatus, error: BaseException | None
    ) -> None:
        span = self._span
        span.set_attribute(status_key, status)
        if status == "failed":
            config = self._run.config
            span.set_status(Status(StatusCode.ERROR, config.error_message(error)))
            if error is not None:
                span.set_attribute("error.type", error_type(error))
                span.add_event("exception", config.exception_attributes(error))


class OtelAgentScope(_OtelSpanScope):
    """The ``invoke_agent`` span of one call, and the factory of its model and tool spans."""

    __slots__ = ()

    @property
    def trace_id(self) -> str | None:
        return format_trace_id(self._span.get_span_context().trace_id)

    @property
    def span_id(self) -> str | None:
        return format_span_id(self._span.get_span_context().span_id)

    def chat(self, start: ChatStart) -> ChatScope:
        with internal_errors("could not open the chat span"):
            return _OtelChatScope.open(self._run, self._span, start)
        return _NoopScope()

    def tool(self, start: ToolStart) -> ToolScope:
        with internal_errors("could not open the tool span"):
            run = self._run
            attributes = dict(run.common)
            attributes["gen_ai.operation.name"] = "execute_tool"
            attributes["gen_ai.tool.name"] = start.tool_name
            attributes["gen_ai.tool.call.id"] = start.call_id
            attributes["gen_ai.tool.type"] = "function"
            if start.description:
                attributes["gen_ai.tool.description"] = start.description
            if run.capture_input:
                attributes["gen_ai.tool.call.arguments"] = run.json(start.arguments)
            span = run.child(
                f"execute_tool {start.tool_name}", SpanKind.INTERNAL, attributes, self._span
            )
            return _OtelToolScope(run, span)
        return _NoopScope()

    def end(self, end: AgentEnd) -> None:
        span = self._span
        with internal_errors("could not finish the agent span"):
            run = self._run
            span.set_attribute("spanflow.agent.steps", end.steps)
            if end.input_messages is not None and run.capture_input:
                span.set_attribute(
                    "gen_ai.input.messages", run.json(genai_messages(end.input_messages))
                )
            if end.finish_reason is not None:
                span.set_attribute("gen_ai.response.finish_reasons", (end.finish_reason,))
            for key, value in usage_attributes("spanflow.usage", end.usage).items():
                span.set_attribute(key, value)
            if end.status == "success" and run.capture_output:
                message = output_message(end.text, (), end.finish_reason)
                span.set_attribute("gen_ai.output.messages", run.json([message]))
            if end.status == "tripwire":  # on purpose, not an error: the span status stays unset
                if end.tripwire_reason is not None:
                    span.set_attribute("spanflow.agent.tripwire.reason", end.tripwire_reason)
                if end.tripwire_processor is not None:
                    span.set_attribute("spanflow.agent.tripwire.processor", end.tripwire_processor)
            self._finish("spanflow.agent.status", end.status, end.error)
        with internal_errors("could not end the agent span"):
            span.end()


class _OtelChatScope(_OtelSpanScope):
    __slots__ = ("_first", "_started")

    def __init__(self, run: AgentTrace, span: trace.Span) -> None:
        super().__init__(run, span)
        self._started = run.clock()
        self._first: float | None = None

    @classmethod
    def open(cls, run: AgentTrace, parent: trace.Span, start: ChatStart) -> _OtelChatScope:
        attributes = dict(run.common)
        attributes["gen_ai.operation.name"] = "chat"
        attributes["gen_ai.provider.name"] = start.provider
        attributes["gen_ai.request.model"] = start.model_id
        attributes.update(_settings_attributes(start))
        if run.capture_input:
            attributes.update(_chat_input_attributes(run, start))
        span = run.child(f"chat {start.model_id}", SpanKind.CLIENT, attributes, parent)
        return cls(run, span)

    def first_chunk(self) -> None:
        if self._first is None:
            with internal_errors("the tracing clock failed"):
                self._first = self._run.clock()

    def end(self, status: ScopeStatus, result: ChatEnd, error: BaseException | None = None) -> None:
        span = self._span
        with internal_errors("could not finish the chat span"):
            self._record_result(result)
            status_code = getattr(error, "status_code", None)
            if isinstance(status_code, int):
                span.set_attribute("http.response.status_code", status_code)
            self._finish("spanflow.chat.status", status, error)
        with internal_errors("could not end the chat span"):
            span.end()

    def _record_result(self, result: ChatEnd) -> None:
        span, run = self._span, self._run
        if result.response_model:
            span.set_attribute("gen_ai.response.model", result.response_model)
        if result.response_id:
            span.set_attribute("gen_ai.response.id", result.response_id)
        if result.finish_reason is not None:
            span.set_attribute("gen_ai.response.finish_reasons", (result.finish_reason,))
        if result.usage is not None:
            for key, value in usage_attributes("gen_ai.usage", result.usage).items():
                span.set_attribute(key, value)
        if self._first is not None:
            seconds = max(0.0, self._first - self._started)
            span.set_attribute("gen_ai.response.time_to_first_chunk", seconds)
            span.set_attribute("spanflow.time_to_first_token_ms", round(seconds * 1000, 3))
        if run.capture_output and (result.text or result.tool_calls):
            message = output_message(result.text, result.tool_calls, result.finish_reason)
            span.set_attribute("gen_ai.output.messages", run.json([message]))


class _OtelToolScope(_OtelSpanScope):
    __slots__ = ()

    def end(
        self, status: ScopeStatus, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        span = self._span
        with internal_errors("could not finish the tool span"):
            if status == "success" and self._run.capture_output:
                span.set_attribute("gen_ai.tool.call.result", self._run.json(result))
            self._finish("spanflow.tool.status", status, error)
        with internal_errors("could not end the tool span"):
            span.end()


def genai_messages(messages: Sequence[GenAIMessage]) -> list[dict[str, Any]]:
    """``gen_ai.input.messages``: the conversation without its system messages (those go to
    ``gen_ai.system_instructions``)."""
    return [message.to_genai() for message in messages if message.role != "system"]


def _system_parts(messages: Sequence[GenAIMessage]) -> list[dict[str, Any]]:
    return [
        part
        for message in messages
        if message.role == "system"
        for part in message.to_genai()["parts"]
    ]


def _settings_attributes(start: ChatStart) -> dict[str, Any]:
    settings = start.settings
    attributes: dict[str, Any] = {}
    for key, value in (
        ("gen_ai.request.temperature", settings.temperature),
        ("gen_ai.request.max_tokens", settings.max_tokens),
        ("gen_ai.request.top_p", settings.top_p),
        ("gen_ai.request.seed", settings.seed),
    ):
        if value is not None:
            attributes[key] = value
    if settings.stop:
        attributes["gen_ai.request.stop_sequences"] = tuple(settings.stop)
    if start.server_address:
        attributes["server.address"] = start.server_address
    if start.server_port:
        attributes["server.port"] = start.server_port
    return attributes


def _chat_input_attributes(run: AgentTrace, start: ChatStart) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    system = _system_parts(start.messages)
    if system:
        attributes["gen_ai.system_instructions"] = run.json(system)
    attributes["gen_ai.input.messages"] = run.json(genai_messages(start.messages))
    if start.tools:
        attributes["gen_ai.tool.definitions"] = run.json(
            [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                }
                for t in start.tools
            ]
        )
    return attributes


def usage_attributes(prefix: str, usage: Usage) -> dict[str, int]:
    """The span attributes of `usage` under `prefix`: ``gen_ai.usage`` (a model call: the
    convention's names) or a sum's own prefix (``spanflow.usage``: every count)."""
    out = {
        f"{prefix}.input_tokens": usage.input_tokens,
        f"{prefix}.output_tokens": usage.output_tokens,
    }
    if prefix == "gen_ai.usage":
        if usage.cached_input_tokens:
            out["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
        if usage.cache_creation_input_tokens:
            out["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_creation_input_tokens
        if usage.reasoning_tokens:
            out["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
        return out
    out[f"{prefix}.total_tokens"] = usage.total_tokens
    for name in ("reasoning_tokens", "cached_input_tokens", "cache_creation_input_tokens"):
        value = getattr(usage, name)
        if value:
            out[f"{prefix}.{name}"] = value
    return out
