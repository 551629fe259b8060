"""The agent side of the tracing seam: GenAI spans for agent calls, model calls and tool calls.

The agent loop calls this module, and only this module talks to OpenTelemetry for agents. It
opens live, current spans following the OpenTelemetry GenAI conventions:

- ``invoke_agent <name>`` (INTERNAL) per agent call: ``gen_ai.operation.name``,
  ``gen_ai.agent.name`` / ``.id``, ``gen_ai.conversation.id`` (the thread id), and the usage
  of all its model calls summed under ``spanflow.usage.*``. Not ``gen_ai.usage.*``: backends
  that sum those over a trace would count every token twice.
- ``chat <model>`` (CLIENT) per model call: provider, request model and parameters, response
  model, finish reasons, ``gen_ai.usage.input_tokens`` / ``output_tokens``, the input and
  output messages as JSON, and the time to the first chunk. Text deltas are not recorded one
  by one; the output messages hold the final text.
- ``execute_tool <tool>`` (INTERNAL) per tool call: tool name, call id, arguments and result.
  The span is current while the tool runs, so the tool's own spans (and a workflow used as a
  tool) nest under it.

Like workflow spans, every agent span carries the tags and metadata of the call
(``spanflow.tag.*``, ``spanflow.metadata.*``, request-context keys; limited to the agent span
by ``TracingConfig.metadata_on_every_span=False``) plus ``spanflow.agent.id``. Messages,
arguments and results are redacted and truncated (`TracingConfig`), and hidden by
``hide_input`` / ``hide_output``.

Parent of the agent span (``tracing.md`` §3). A call made while a spanflow span is current (a
workflow step, a tool of another agent) is *nested*: it is a child of that span, its own trace
ids are ignored (logged at debug level), it inherits the enclosing run's ``spanflow.run.id``,
``spanflow.workflow.id``, tags and metadata, and merges its own over them. The rule used to
recognise "a spanflow span is current": the current span is recording and carries
``spanflow.run.id`` or ``spanflow.agent.id``; if the provider's spans do not expose their
attributes, any recording span counts. Otherwise the call is *top-level*: explicit
`TracingOptions` ids win, then the current span (a web request), then a new trace.

Tracing never fails an agent: every entry point logs and swallows its own errors, and with
tracing off (or a provider that does not record) every scope is a no-op.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    SpanKind,
    Status,
    StatusCode,
)

from spanflow.agents.messages import AssistantMessage, Message, SystemMessage, ToolMessage
from spanflow.tracing._nesting import (
    enclosing_attributes,
    explicit_parent,
    inherited_tracing,
    start_top_span,
)
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.ids import format_span_id, format_trace_id
from spanflow.tracing.options import (
    TracingOptions,
    merge_nested,
    resolve_tracing_options,
)
from spanflow.tracing.otel import error_type
from spanflow.tracing.redaction import to_attribute_json
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.agents.models.base import ModelSettings, ToolDefinition

__all__ = [
    "NOOP_AGENT_SCOPE",
    "AgentEnd",
    "AgentScope",
    "AgentStart",
    "ChatEnd",
    "ChatScope",
    "ChatStart",
    "GenAITracing",
    "ScopeStatus",
    "ToolScope",
    "ToolStart",
]

logger = logging.getLogger("spanflow.tracing")

_SCOPE_NAME: Final = "spanflow"
_INHERITED: Final = ("spanflow.run.id", "spanflow.workflow.id")

ScopeStatus = Literal["success", "failed", "aborted"]
"""How an agent, model or tool scope ended. An abort is not an error."""


# -- what the agent loop hands over (one input object per hook, so fields can grow) ---------


@dataclass(slots=True)
class AgentStart:
    """Everything needed to open an ``invoke_agent`` span."""

    agent_id: str
    agent_name: str
    run_id: str
    provider: str
    model_id: str
    messages: Sequence[Message]
    """The messages the caller passed (not the instructions)."""
    instructions: str | None = None
    description: str | None = None
    thread_id: str | None = None
    resource_id: str | None = None
    request_context: object = None
    options: TracingOptions | None = None


@dataclass(slots=True)
class AgentEnd:
    """How an agent call ended."""

    status: ScopeStatus
    text: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    error: BaseException | None = None


@dataclass(slots=True)
class ChatStart:
    """One model call, as the ``chat`` span records it."""

    provider: str
    model_id: str
    messages: Sequence[Message]
    settings: ModelSettings
    tools: Sequence[ToolDefinition] = ()
    server_address: str | None = None
    server_port: int | None = None


@dataclass(slots=True)
class ChatEnd:
    """What a model call produced (possibly partial, when it failed)."""

    text: str = ""
    tool_calls: Sequence[Any] = ()
    """`ToolCall`-like objects (``id``, ``name``, ``arguments``)."""
    finish_reason: str | None = None
    usage: Usage | None = None
    response_model: str | None = None
    response_id: str | None = None


@dataclass(slots=True)
class ToolStart:
    """One tool call, as the ``execute_tool`` span records it."""

    tool_name: str
    call_id: str
    arguments: Any
    """The parsed arguments, or the raw text the model sent when it was not JSON."""
    description: str | None = None


# -- scopes ----------------------------------------------------------------------------------


class ChatScope(Protocol):
    """The span of one model call. Never raises."""

    def enter(self) -> object: ...
    def exit(self, token: object) -> None: ...
    def first_chunk(self) -> None:
        """Note the time of the first chunk (only the first call counts)."""
        ...

    def end(
        self, status: ScopeStatus, result: ChatEnd, error: BaseException | None = None
    ) -> None: ...


class ToolScope(Protocol):
    """The span of one tool call. Never raises."""

    def enter(self) -> object: ...
    def exit(self, token: object) -> None: ...
    def end(
        self, status: ScopeStatus, *, result: Any = None, error: BaseException | None = None
    ) -> None: ...


class AgentScope(Protocol):
    """The span of one agent call, and the factory of its model and tool spans. Never raises."""

    @property
    def trace_id(self) -> str | None: ...
    @property
    def span_id(self) -> str | None: ...
    def enter(self) -> object: ...
    def exit(self, token: object) -> None: ...
    def chat(self, start: ChatStart) -> ChatScope: ...
    def tool(self, start: ToolStart) -> ToolScope: ...
    def end(self, end: AgentEnd) -> None: ...


class _NoopScope:
    """Tracing off: every method does nothing."""

    __slots__ = ()
    trace_id = None
    span_id = None

    def enter(self) -> object:
        return None

    def exit(self, token: object) -> None:
        pass

    def chat(self, start: ChatStart) -> ChatScope:
        return self

    def tool(self, start: ToolStart) -> ToolScope:
        return self

    def first_chunk(self) -> None:
        pass

    def end(self, *args: Any, **kwargs: Any) -> None:
        pass


NOOP_AGENT_SCOPE: AgentScope = _NoopScope()


# -- the tracer ------------------------------------------------------------------------------


# Hiding protects data, so it is inherited fail-closed: an agent called anywhere inside an
# agent call that hides its input (or output) hides it too.
_HIDING: ContextVar[tuple[bool, bool]] = ContextVar("spanflow_genai_hiding", default=(False, False))


class GenAITracing:
    """Opens agent spans with the configured (or OpenTelemetry's global) tracer provider.

    `Agent.instrumentation` holds one. The registry assigns its workflow instrumentation to
    registered agents; `coerce` turns that (or a `TracingConfig`) into a `GenAITracing`.

    Args:
        config: Deployment-wide settings (provider, capture, limits, redaction, keys).
        clock: Monotonic seconds, for the time to first chunk (tests pass a fake one).
    """

    def __init__(
        self, config: TracingConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or TracingConfig()
        self.clock = clock
        self._warned_root = False

    @classmethod
    def coerce(cls, value: object) -> GenAITracing:
        """A `GenAITracing` from ``None`` (the global provider), a `GenAITracing`, a
        `TracingConfig`, or a workflow instrumentation (anything with a ``config`` that is a
        `TracingConfig`; a `NoopInstrumentation` turns tracing off).

        Raises:
            TypeError: `value` is none of these.
        """
        if value is None:
            return cls()
        if isinstance(value, GenAITracing):
            return value
        if isinstance(value, TracingConfig):
            return cls(value)
        config = getattr(value, "config", None)
        if isinstance(config, TracingConfig):
            return cls(config)
        from spanflow.tracing.instrumentation import NoopInstrumentation

        if isinstance(value, NoopInstrumentation):
            return cls(TracingConfig(enabled=False))
        raise TypeError(
            f"agent instrumentation must be a GenAITracing, a TracingConfig or a workflow "
            f"instrumentation, got {type(value).__name__}"
        )

    def start_agent(self, start: AgentStart) -> AgentScope:
        """Open the ``invoke_agent`` span of one agent call (not yet current: `enter` it)."""
        if not self.config.enabled:
            return NOOP_AGENT_SCOPE
        try:
            return self._start_agent(start)
        except Exception:  # tracing never fails an agent
            logger.exception("spanflow: could not open the agent span; tracing this call is off")
            return NOOP_AGENT_SCOPE

    def _start_agent(self, start: AgentStart) -> AgentScope:
        config = self.config
        provider = config.tracer_provider or trace.get_tracer_provider()
        tracer = provider.get_tracer(_SCOPE_NAME)
        inherited = enclosing_attributes()
        common: dict[str, Any]
        if inherited is not None:
            resolved = merge_nested(
                inherited_tracing(inherited),
                start.options,
                request_context=start.request_context,
                redactor=config.redactor,
                max_attribute_length=config.max_attribute_length,
            )
            common = {key: inherited[key] for key in _INHERITED if key in inherited}
        else:
            resolved = resolve_tracing_options(
                start.options,
                request_context=start.request_context,
                global_request_context_keys=config.request_context_keys,
                redactor=config.redactor,
                max_attribute_length=config.max_attribute_length,
            )
            common = {"spanflow.run.id": start.run_id}
        common["spanflow.agent.id"] = start.agent_id
        everywhere = dict(common)
        if config.metadata_on_every_span:
            everywhere.update(resolved.attributes)
        hide_input, hide_output = _HIDING.get()
        hide_input = hide_input or resolved.hide_input
        hide_output = hide_output or resolved.hide_output
        run = _AgentTrace(
            tracer=tracer,
            config=config,
            clock=self.clock,
            common=everywhere,
            capture_input=config.capture_input and not hide_input,
            capture_output=config.capture_output and not hide_output,
            hiding=(hide_input, hide_output),
        )

        attributes: dict[str, Any] = dict(common)
        attributes.update(resolved.attributes)
        attributes.update(resolved.rejected_attribute())
        attributes["gen_ai.operation.name"] = "invoke_agent"
        attributes["gen_ai.agent.id"] = start.agent_id
        attributes["gen_ai.agent.name"] = start.agent_name
        attributes["gen_ai.provider.name"] = start.provider
        attributes["gen_ai.request.model"] = start.model_id
        attributes["spanflow.agent.run_id"] = start.run_id
        if start.description:
            attributes["gen_ai.agent.description"] = start.description
        if start.thread_id is not None:
            attributes["gen_ai.conversation.id"] = start.thread_id
        if start.resource_id is not None:
            attributes["spanflow.resource.id"] = start.resource_id
        if run.capture_input:
            if start.instructions:
                attributes["gen_ai.system_instructions"] = run.json(
                    [{"type": "text", "content": start.instructions}]
                )
            attributes["gen_ai.input.messages"] = run.json(_semconv_messages(start.messages))

        name = f"invoke_agent {start.agent_name}"
        parent, requested = explicit_parent(resolved)
        span, ignored = start_top_span(tracer, name, parent, requested, attributes)
        if ignored and not self._warned_root:
            self._warned_root = True
            logger.warning(
                "spanflow: the tracer provider cannot start a root span in a requested "
                "trace id (configure tracing with spanflow_otel.configure()); "
                "agent calls given only a trace_id start new traces"
            )
        if not span.is_recording():
            span.end()
            return NOOP_AGENT_SCOPE
        return _OtelAgentScope(run, span)


@dataclass(slots=True, eq=False)
class _AgentTrace:
    """What every span of one agent call shares."""

    tracer: trace.Tracer
    config: TracingConfig
    clock: Callable[[], float]
    common: dict[str, Any]
    capture_input: bool
    capture_output: bool
    hiding: tuple[bool, bool]

    def json(self, value: Any) -> str:
        config = self.config
        return to_attribute_json(value, redactor=config.redactor, limit=config.max_attribute_length)

    def child(
        self, name: str, kind: SpanKind, attributes: dict[str, Any], parent: trace.Span
    ) -> trace.Span:
        ctx = trace.set_span_in_context(parent)
        return self.tracer.start_span(name, ctx, kind, attributes)


class _OtelSpanScope:
    """Shared behaviour of the live scopes: make current, finish with a status."""

    __slots__ = ("_run", "_span")

    def __init__(self, run: _AgentTrace, span: trace.Span) -> None:
        self._run = run
        self._span = span

    def enter(self) -> object:
        try:
            ctx = trace.set_span_in_context(self._span)
            return (otel_context.attach(ctx), _HIDING.set(self._run.hiding))
        except Exception:
            logger.exception("spanflow: could not make a span current")
            return None

    def exit(self, token: object) -> None:
        if not isinstance(token, tuple):
            return
        otel_token, hiding_token = token
        try:
            _HIDING.reset(hiding_token)
        except Exception:
            logger.debug("spanflow: hiding context reset failed", exc_info=True)
        try:
            otel_context.detach(otel_token)
        except Exception:
            logger.debug("spanflow: context detach failed", exc_info=True)

    def _finish(self, status_key: str, status: ScopeStatus, error: BaseException | None) -> None:
        span = self._span
        span.set_attribute(status_key, status)
        if status == "failed":
            message = str(error) if error is not None else "failed"
            span.set_status(Status(StatusCode.ERROR, message))
            if error is not None:
                span.set_attribute("error.type", error_type(error))
                span.record_exception(error)


class _OtelAgentScope(_OtelSpanScope):
    __slots__ = ()

    @property
    def trace_id(self) -> str | None:
        return format_trace_id(self._span.get_span_context().trace_id)

    @property
    def span_id(self) -> str | None:
        return format_span_id(self._span.get_span_context().span_id)

    def chat(self, start: ChatStart) -> ChatScope:
        try:
            return _OtelChatScope.open(self._run, self._span, start)
        except Exception:
            logger.exception("spanflow: could not open the chat span")
            return _NoopScope()

    def tool(self, start: ToolStart) -> ToolScope:
        try:
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
        except Exception:
            logger.exception("spanflow: could not open the tool span")
            return _NoopScope()

    def end(self, end: AgentEnd) -> None:
        span = self._span
        try:
            run = self._run
            span.set_attribute("spanflow.agent.steps", end.steps)
            if end.finish_reason is not None:
                span.set_attribute("gen_ai.response.finish_reasons", (end.finish_reason,))
            for key, value in _usage_attributes("spanflow.usage", end.usage).items():
                span.set_attribute(key, value)
            if end.status == "success" and run.capture_output:
                message = _output_message(end.text, (), end.finish_reason)
                span.set_attribute("gen_ai.output.messages", run.json([message]))
            self._finish("spanflow.agent.status", end.status, end.error)
        except Exception:
            logger.exception("spanflow: could not finish the agent span")
        finally:
            span.end()


class _OtelChatScope(_OtelSpanScope):
    __slots__ = ("_first", "_started")

    def __init__(self, run: _AgentTrace, span: trace.Span) -> None:
        super().__init__(run, span)
        self._started = run.clock()
        self._first: float | None = None

    @classmethod
    def open(cls, run: _AgentTrace, parent: trace.Span, start: ChatStart) -> _OtelChatScope:
        attributes = dict(run.common)
        attributes["gen_ai.operation.name"] = "chat"
        attributes["gen_ai.provider.name"] = start.provider
        attributes["gen_ai.request.model"] = start.model_id
        settings = start.settings
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
        if run.capture_input:
            system = [
                {"type": "text", "content": m.content}
                for m in start.messages
                if isinstance(m, SystemMessage)
            ]
            if system:
                attributes["gen_ai.system_instructions"] = run.json(system)
            attributes["gen_ai.input.messages"] = run.json(_semconv_messages(start.messages))
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
        span = run.child(f"chat {start.model_id}", SpanKind.CLIENT, attributes, parent)
        return cls(run, span)

    def first_chunk(self) -> None:
        if self._first is None:
            try:
                self._first = self._run.clock()
            except Exception:
                logger.exception("spanflow: the tracing clock failed")

    def end(self, status: ScopeStatus, result: ChatEnd, error: BaseException | None = None) -> None:
        span = self._span
        try:
            run = self._run
            if result.response_model:
                span.set_attribute("gen_ai.response.model", result.response_model)
            if result.response_id:
                span.set_attribute("gen_ai.response.id", result.response_id)
            if result.finish_reason is not None:
                span.set_attribute("gen_ai.response.finish_reasons", (result.finish_reason,))
            if result.usage is not None:
                for key, value in _usage_attributes("gen_ai.usage", result.usage).items():
                    span.set_attribute(key, value)
            if self._first is not None:
                seconds = max(0.0, self._first - self._started)
                span.set_attribute("gen_ai.response.time_to_first_chunk", seconds)
                span.set_attribute("spanflow.time_to_first_token_ms", round(seconds * 1000, 3))
            if run.capture_output and (result.text or result.tool_calls):
                message = _output_message(result.text, result.tool_calls, result.finish_reason)
                span.set_attribute("gen_ai.output.messages", run.json([message]))
            status_code = getattr(error, "status_code", None)
            if isinstance(status_code, int):
                span.set_attribute("http.response.status_code", status_code)
            self._finish("spanflow.chat.status", status, error)
        except Exception:
            logger.exception("spanflow: could not finish the chat span")
        finally:
            span.end()


class _OtelToolScope(_OtelSpanScope):
    __slots__ = ()

    def end(
        self, status: ScopeStatus, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        span = self._span
        try:
            if status == "success" and self._run.capture_output:
                span.set_attribute("gen_ai.tool.call.result", self._run.json(result))
            self._finish("spanflow.tool.status", status, error)
        except Exception:
            logger.exception("spanflow: could not finish the tool span")
        finally:
            span.end()


# -- helpers ---------------------------------------------------------------------------------


def _usage_attributes(prefix: str, usage: Usage) -> dict[str, int]:
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


def _semconv_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in the GenAI conventions' JSON shape (system messages are left out: they go
    to ``gen_ai.system_instructions``)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            continue
        if isinstance(message, ToolMessage):
            part = {
                "type": "tool_call_response",
                "id": message.tool_call_id,
                "response": _maybe_json(message.content),
            }
            out.append({"role": "tool", "parts": [part]})
        elif isinstance(message, AssistantMessage):
            out.append(_output_message(message.content, message.tool_calls, None))
        else:
            out.append({"role": "user", "parts": [{"type": "text", "content": message.content}]})
    return out


def _output_message(text: str, tool_calls: Sequence[Any], reason: str | None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"type": "text", "content": text})
    for call in tool_calls:
        parts.append(
            {
                "type": "tool_call",
                "id": call.id,
                "name": call.name,
                "arguments": _maybe_json(call.arguments),
            }
        )
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if reason is not None:
        message["finish_reason"] = reason
    return message


def _maybe_json(text: str) -> Any:
    """Parsed JSON (so redaction sees its keys) when `text` is a JSON object or array."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
