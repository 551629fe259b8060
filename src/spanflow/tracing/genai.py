"""The agent side of the tracing seam: GenAI spans for agent calls, model calls and tool calls.

The agent loop calls this module, and only this module talks to OpenTelemetry for agents. It
opens live, current spans following the OpenTelemetry GenAI conventions:

- ``invoke_agent <name>`` (INTERNAL) per agent call: ``gen_ai.operation.name``,
  ``gen_ai.agent.name`` / ``.id``, ``gen_ai.conversation.id`` (the thread id), and the usage
  of all its model calls summed under ``spanflow.usage.*``. Not ``gen_ai.usage.*``: backends
  that sum those over a trace would count every token twice. Its input messages are the
  caller's; an agent with input processors records them at the end, as the processors left
  them (a redactor's secrets never reach the trace).
- ``chat <model>`` (CLIENT) per model call: provider, request model and parameters, response
  model, finish reasons, ``gen_ai.usage.input_tokens`` / ``output_tokens``, the input and
  output messages as JSON, and the time to the first chunk. Text deltas are not recorded one
  by one; the output messages hold the final text (with output processors, the text they
  returned).
- ``execute_tool <tool>`` (INTERNAL) per tool call: tool name, call id, arguments and result.
  The span is current while the tool runs, so the tool's own spans (and a workflow used as a
  tool) nest under it.

Like workflow spans, every agent span carries the tags and metadata of the call
(``spanflow.tag.*``, ``spanflow.metadata.*``, request-context keys; limited to the agent span
by ``TracingConfig.metadata_on_every_span=False``) plus ``spanflow.agent.id``. Messages,
arguments and results are redacted and truncated (`TracingConfig`), and hidden by
``hide_input`` / ``hide_output``.

Parent of the agent span (``tracing.md`` §3). A call made inside a spanflow run or agent call
(its `TracingContext` is current: a workflow step, a tool of another agent) is *nested*: it is a
child of the current span, its own trace ids are ignored (logged at debug level), it inherits
the enclosing call's ``spanflow.run.id``, ``spanflow.workflow.id``, tags, metadata and hide
flags, and merges its own over them. An agent without tracing of its own traces there with the
enclosing call's settings (`TracingContext.config`). Otherwise the call is *top-level*:
explicit `TracingOptions` ids win, then the current span (a web request), then a new trace.

Tracing never fails an agent: every entry point runs under the one guard, and with tracing off
(or a provider that does not record) every scope is a no-op. The live scopes are in
`spanflow.tracing._genai_scopes`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from opentelemetry import trace

from spanflow.tracing._genai_scopes import (
    NOOP_AGENT_SCOPE,
    AgentTrace,
    OtelAgentScope,
    QuietAgentScope,
    genai_messages,
)
from spanflow.tracing._guard import internal_errors
from spanflow.tracing._nesting import (
    IgnoredRootWarning,
    explicit_parent,
    resolve_nested,
    start_top_span,
)
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.context import TracingContext, current_tracing_context
from spanflow.tracing.options import ResolvedTracing, TracingOptions
from spanflow.tracing.semconv import GenAIMessage, GenAIToolCall, text_part
from spanflow.usage import Usage

__all__ = [
    "NOOP_AGENT_SCOPE",
    "AgentEnd",
    "AgentScope",
    "AgentScopeStatus",
    "AgentStart",
    "ChatEnd",
    "ChatScope",
    "ChatStart",
    "GenAISettings",
    "GenAIToolDefinition",
    "GenAITracing",
    "ScopeStatus",
    "ToolScope",
    "ToolStart",
    "enclosing_genai_tracing",
]

logger = logging.getLogger("spanflow.tracing")

_SCOPE_NAME: Final = "spanflow"

ScopeStatus = Literal["success", "failed", "aborted"]
"""How an agent, model or tool scope ended. An abort is not an error."""

AgentScopeStatus = Literal["success", "failed", "aborted", "tripwire"]
"""How an agent call ended: a scope status, or ``tripwire`` (a processor stopped the call on
purpose, which is not an error either)."""


# -- what tracing needs of the agents' types (they satisfy these protocols) -----------------


class GenAISettings(Protocol):
    """A model call's generation settings (the agents' `ModelSettings`)."""

    @property
    def temperature(self) -> float | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def top_p(self) -> float | None: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def stop(self) -> Sequence[str] | None: ...


class GenAIToolDefinition(Protocol):
    """A tool as the model sees it (the agents' `ToolDefinition`)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def parameters(self) -> dict[str, Any]: ...


# -- what the agent loop hands over (one input object per hook, so fields can grow) ---------


@dataclass(slots=True)
class AgentStart:
    """Everything needed to open an ``invoke_agent`` span."""

    agent_id: str
    agent_name: str
    run_id: str
    provider: str
    model_id: str
    messages: Sequence[GenAIMessage] | None
    """The messages the caller passed (not the instructions); ``None`` when they are not
    final yet (input processors will rewrite them): `AgentEnd.input_messages` brings them."""
    instructions: str | None = None
    description: str | None = None
    thread_id: str | None = None
    resource_id: str | None = None
    request_context: object = None
    options: TracingOptions | None = None


@dataclass(slots=True)
class AgentEnd:
    """How an agent call ended."""

    status: AgentScopeStatus
    text: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    error: BaseException | None = None
    input_messages: Sequence[GenAIMessage] | None = None
    """The call's input messages, recorded at the end when they were not at the start (as the
    input processors left them; ``None`` when those never finished)."""
    tripwire_reason: str | None = None
    """Why a processor stopped the call (status ``tripwire``)."""
    tripwire_processor: str | None = None
    """The processor that stopped it (status ``tripwire``)."""


@dataclass(slots=True)
class ChatStart:
    """One model call, as the ``chat`` span records it."""

    provider: str
    model_id: str
    messages: Sequence[GenAIMessage]
    settings: GenAISettings
    tools: Sequence[GenAIToolDefinition] = ()
    server_address: str | None = None
    server_port: int | None = None


@dataclass(slots=True)
class ChatEnd:
    """What a model call produced (possibly partial, when it failed)."""

    text: str = ""
    tool_calls: Sequence[GenAIToolCall] = ()
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
    def current(self) -> AbstractContextManager[None]: ...
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
    def current(self) -> AbstractContextManager[None]: ...
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
    def current(self) -> AbstractContextManager[None]: ...
    def chat(self, start: ChatStart) -> ChatScope: ...
    def tool(self, start: ToolStart) -> ToolScope: ...
    def end(self, end: AgentEnd) -> None: ...


# -- the tracer ------------------------------------------------------------------------------


class GenAITracing:
    """Opens agent spans with the configured (or OpenTelemetry's global) tracer provider.

    `Agent.instrumentation` holds one when the agent has tracing of its own (given to it, or by
    the registry); an agent without one traces like the run or agent call it is made in, or
    with the global provider outside any.

    Args:
        config: Deployment-wide settings (provider, capture, limits, redaction, keys).
        clock: Monotonic seconds, for the time to first chunk (tests pass a fake one).
    """

    def __init__(
        self, config: TracingConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or TracingConfig()
        self.clock = clock
        self._ignored_root = IgnoredRootWarning("agent calls")

    def start_agent(self, start: AgentStart) -> AgentScope:
        """Open the ``invoke_agent`` span of one agent call (not yet current: `enter` it)."""
        if not self.config.enabled:
            return NOOP_AGENT_SCOPE
        with internal_errors("could not open the agent span; tracing this call is off"):
            return self._start_agent(start)
        return NOOP_AGENT_SCOPE

    def _start_agent(self, start: AgentStart) -> AgentScope:
        config = self.config
        provider = config.tracer_provider or trace.get_tracer_provider()
        tracer = provider.get_tracer(_SCOPE_NAME)
        resolved, enclosing = resolve_nested(
            start.options, request_context=start.request_context, config=config
        )
        context = _agent_context(start, resolved, enclosing, config)
        common: dict[str, Any] = {"spanflow.run.id": context.run_id}
        if context.workflow_id is not None:
            common["spanflow.workflow.id"] = context.workflow_id
        common["spanflow.agent.id"] = start.agent_id
        everywhere = dict(common)
        if config.metadata_on_every_span:
            everywhere.update(resolved.attributes)
        run = AgentTrace(tracer=tracer, clock=self.clock, common=everywhere, context=context)
        attributes = _agent_attributes(start, run, common, resolved)
        name = f"invoke_agent {start.agent_name}"
        parent, requested = explicit_parent(resolved)
        span = start_top_span(
            tracer, name, parent, requested, attributes, on_ignored=self._ignored_root
        )
        if not span.is_recording():  # sampled out
            span.end()
            return QuietAgentScope(context, span)
        return OtelAgentScope(run, span)


def enclosing_genai_tracing() -> GenAITracing | None:
    """Tracing for an agent without its own: the settings of the call it is made in, if any."""
    enclosing = current_tracing_context()
    return GenAITracing(enclosing.config) if enclosing is not None else None


def _agent_context(
    start: AgentStart,
    resolved: ResolvedTracing,
    enclosing: TracingContext | None,
    config: TracingConfig,
) -> TracingContext:
    """The call's tracing facts: the enclosing run's ids when nested, its own otherwise."""
    return TracingContext(
        run_id=enclosing.run_id if enclosing is not None else start.run_id,
        workflow_id=enclosing.workflow_id if enclosing is not None else None,
        tags=resolved.tags,
        attributes=resolved.attributes,
        hide_input=resolved.hide_input,
        hide_output=resolved.hide_output,
        config=config,
    )


def _agent_attributes(
    start: AgentStart, run: AgentTrace, common: dict[str, Any], resolved: ResolvedTracing
) -> dict[str, Any]:
    """The ``invoke_agent`` span's attributes at its start."""
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
            attributes["gen_ai.system_instructions"] = run.json([text_part(start.instructions)])
        if start.messages is not None:
            attributes["gen_ai.input.messages"] = run.json(genai_messages(start.messages))
    return attributes
