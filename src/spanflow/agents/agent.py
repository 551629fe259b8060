"""`Agent`: a model with instructions and tools; `generate` for a result, `stream` for chunks.

``await agent.generate("...")`` runs the loop (``spanflow.agents._loop``) in the caller's task
and returns an `AgentResult`. ``agent.stream("...")`` starts it in its own task and returns an
`AgentStream` at once: an async iterator of `AgentChunk`s plus awaitable ``text``, ``usage``,
``finish_reason`` and ``result``. Every chunk is kept, so a consumer that starts late (even
after the call ended) gets all of them, and awaiting ``result`` without iterating never
deadlocks. Neither call raises for a failing model or tool: the result says so.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from spanflow._buffer import ReplayBuffer
from spanflow._sync import run_sync
from spanflow.agents._loop import AgentCall, AgentMemory, MemoryScope
from spanflow.agents.chunks import AgentChunk, TextDeltaPayload
from spanflow.agents.errors import AgentDefinitionError
from spanflow.agents.messages import MessagesInput, coerce_messages
from spanflow.agents.models.base import Model, ModelSettings, ToolDefinition
from spanflow.agents.models.structured import OutputSchema, StructuredOutputInput
from spanflow.agents.processors import check_processors
from spanflow.agents.results import AgentResult
from spanflow.agents.tools import TOOL_NAME_PATTERN, Tool
from spanflow.context import RequestContext
from spanflow.errors import InvalidInputError
from spanflow.tracing.config import TracingConfig
from spanflow.tracing.genai import AgentScope, GenAITracing, enclosing_genai_tracing
from spanflow.tracing.options import TracingOptions
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.agents.network import NetworkStream
    from spanflow.workflows.step import Step
    from spanflow.workflows.workflow import Workflow

__all__ = ["Agent", "AgentMemory", "AgentStream", "Instructions", "MemoryOption"]

MemoryOption = Mapping[str, str]
"""A call's ``memory=``: ``{"thread": thread_id, "resource": resource_id}``."""

Instructions = str | Callable[[RequestContext], str | Awaitable[str]]
"""Fixed instructions, or a function of the request context that returns them."""


class Agent:
    """An LLM with instructions and tools (Mastra's ``Agent``).

    Args:
        id: Unique id (``gen_ai.agent.id``; the registry's key; the default step id).
        name: Display name (``gen_ai.agent.name``, the span name suffix); default: the id.
        instructions: The system prompt, or a function of the request context returning it.
        model: Any `Model`: `OpenAIChatModel`, `ScriptedModel`, your own.
        tools: Tools the model may call, as a list (named by their ids) or a mapping from the
            name the model sees to the tool.
        max_steps: Most model calls per ``generate``/``stream`` (each tool round is a step).
        description: What the agent does (``gen_ai.agent.description``, step description).
        model_settings: Default `ModelSettings` of every call.
        instrumentation: Tracing of its own: a `GenAITracing` or a `TracingConfig`. Without
            one, a call traces like the run or agent call it is made in (a workflow step, a
            tool), and with OpenTelemetry's global tracer provider outside any. The `Spanflow`
            registry gives the agent its tracing on registration.
        input_processors: Processors run on the messages before the model sees them
            (`spanflow.agents.processors`), in order.
        output_processors: Processors run on each step's text and on every chunk, in order.
        memory: Where conversations are kept (`spanflow.agents.memory.Memory`, or anything
            with its ``recall``/``remember``); a call uses it with
            ``memory={"thread": ..., "resource": ...}``.
        agents: Sub-agents a network (``agent.network``) may delegate to: a list (keyed by
            their ids) or a mapping of ids to agents.
        workflows: Workflows a network may run: a list (keyed by their ids) or a mapping.

    Raises:
        AgentDefinitionError: A bad id, model, tool list, processor, memory, sub-agent or
            workflow, or ``max_steps``.
    """

    def __init__(
        self,
        *,
        id: str,
        model: Model,
        name: str | None = None,
        instructions: Instructions | None = None,
        tools: Sequence[Tool] | Mapping[str, Tool] = (),
        max_steps: int = 5,
        description: str | None = None,
        model_settings: ModelSettings | None = None,
        instrumentation: GenAITracing | TracingConfig | None = None,
        input_processors: Sequence[Any] = (),
        output_processors: Sequence[Any] = (),
        memory: AgentMemory | None = None,
        agents: Sequence[Agent] | Mapping[str, Agent] = (),
        workflows: Sequence[Workflow] | Mapping[str, Workflow] = (),
    ) -> None:
        if not isinstance(id, str) or not id:
            raise AgentDefinitionError(f"an agent needs a non-empty string id, got {id!r}")
        if not isinstance(model, Model):
            raise AgentDefinitionError(
                f"agent {id!r}: model must implement the Model protocol (provider, model_id, "
                f"stream), got {type(model).__name__}"
            )
        if instructions is not None and not (
            isinstance(instructions, str) or callable(instructions)
        ):
            raise AgentDefinitionError(
                f"agent {id!r}: instructions must be a string or a function, "
                f"got {type(instructions).__name__}"
            )
        self.id = id
        self.name = name or id
        self.instructions = instructions
        self.model = model
        self.description = description
        self.max_steps = _check_max_steps(id, max_steps)
        self.model_settings = model_settings or ModelSettings()
        self.tools: dict[str, Tool] = _tool_table(id, tools)
        self.tool_definitions: tuple[ToolDefinition, ...] = tuple(
            ToolDefinition(name, tool.description, tool.parameters)
            for name, tool in self.tools.items()
        )
        self._own_tracing: GenAITracing | None = (
            None if instrumentation is None else _genai_tracing(id, instrumentation)
        )
        self.input_processors: tuple[Any, ...] = check_processors(id, "input", input_processors)
        self.output_processors: tuple[Any, ...] = check_processors(id, "output", output_processors)
        if memory is not None and not isinstance(memory, AgentMemory):
            raise AgentDefinitionError(
                f"agent {id!r}: memory must be a Memory (with async recall and remember), "
                f"got {type(memory).__name__}"
            )
        self.memory = memory
        self.agents: dict[str, Agent] = _primitive_table(id, "agents", agents, Agent)
        self.workflows: dict[str, Workflow] = _primitive_table(
            id, "workflows", workflows, _workflow_class()
        )

    @property
    def instrumentation(self) -> GenAITracing:
        """How this agent's calls are traced when it has tracing of its own, and outside any
        run or agent call when it has none (OpenTelemetry's global provider)."""
        return self._own_tracing or _GLOBAL_TRACING

    @instrumentation.setter
    def instrumentation(self, value: GenAITracing | TracingConfig) -> None:
        self._own_tracing = _genai_tracing(self.id, value)

    # -- calling -----------------------------------------------------------------------------

    async def generate(
        self,
        messages: MessagesInput,
        *,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        thread_id: str | None = None,
        resource_id: str | None = None,
        abort_signal: asyncio.Event | None = None,
        run_id: str | None = None,
        max_steps: int | None = None,
        model_settings: ModelSettings | None = None,
        structured_output: StructuredOutputInput | None = None,
        memory: MemoryOption | None = None,
    ) -> AgentResult:
        """Run the agent to its answer and return the `AgentResult`.

        Args:
            messages: A prompt, a message, or a list of messages (objects or chat dicts).
            request_context: Values tools can read; its listed keys become span metadata.
            tracing_options: Parent trace, tags, metadata, hiding (`TracingOptions`). Inside a
                workflow step or a tool the call nests under that span and its trace ids are
                ignored.
            thread_id: The conversation id (``gen_ai.conversation.id``).
            resource_id: The user or resource the call is for (``spanflow.resource.id``).
            abort_signal: Set it to abort the call (``abort`` chunk, aborted result).
            run_id: The call's id (``runId`` of its chunks); default: a new UUID.
            max_steps: Overrides the agent's ``max_steps`` for this call.
            model_settings: Overrides the agent's model settings for this call.
            structured_output: A pydantic model class or a JSON Schema dict: the answer must
                be JSON matching it, and ``result.object`` holds it (see `_loop`).
            memory: ``{"thread": ..., "resource": ...}``: recall that thread of the agent's
                memory before the call, append this call's messages after it (success only).
                The thread is the call's ``gen_ai.conversation.id``.

        Raises:
            InvalidInputError: `messages` or another argument is malformed.
        """
        call = self._call(
            messages,
            request_context,
            tracing_options,
            thread_id,
            resource_id,
            abort_signal,
            run_id,
            max_steps,
            model_settings,
            structured_output,
            memory,
        )
        return await call.run()

    def stream(
        self,
        messages: MessagesInput,
        *,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        thread_id: str | None = None,
        resource_id: str | None = None,
        abort_signal: asyncio.Event | None = None,
        run_id: str | None = None,
        max_steps: int | None = None,
        model_settings: ModelSettings | None = None,
        structured_output: StructuredOutputInput | None = None,
        memory: MemoryOption | None = None,
    ) -> AgentStream:
        """Start the agent and return its live `AgentStream` (needs a running event loop).

        Takes the arguments of `generate`.

        Raises:
            InvalidInputError: `messages` or another argument is malformed.
        """
        call = self._call(
            messages,
            request_context,
            tracing_options,
            thread_id,
            resource_id,
            abort_signal,
            run_id,
            max_steps,
            model_settings,
            structured_output,
            memory,
        )
        return AgentStream(call)

    def network(
        self,
        messages: MessagesInput,
        *,
        memory: Mapping[str, Any] | None = None,
        max_steps: int = 1,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        run_id: str | None = None,
    ) -> NetworkStream:
        """Run this agent as a network's router (Mastra's ``agent.network()``): it delegates
        the task to its ``agents``, ``workflows`` and ``tools`` in a loop of routing,
        execution and completion check, at most `max_steps` times, in one trace (see
        `spanflow.agents.network`). Returns the live `NetworkStream`; needs a running loop."""
        # Imported here: the network module builds on this one.
        from spanflow.agents.network import network

        return network(
            self,
            messages,
            memory=memory,
            max_steps=max_steps,
            request_context=request_context,
            tracing_options=tracing_options,
            run_id=run_id,
        )

    def generate_sync(self, messages: MessagesInput, **kwargs: Any) -> AgentResult:
        """`generate` for scripts; refuses to run inside a running event loop."""
        return run_sync(self.generate(messages, **kwargs), "generate_sync")

    def as_step(
        self,
        id: str | None = None,
        *,
        description: str | None = None,
        tracing_options: TracingOptions | None = None,
    ) -> Step[Any, Any]:
        """This agent as a workflow step (see `spanflow.agents.step.create_agent_step`)."""
        from spanflow.agents.step import create_agent_step

        return create_agent_step(
            self, id=id, description=description, tracing_options=tracing_options
        )

    def _call(
        self,
        messages: MessagesInput,
        request_context: RequestContext | Mapping[str, Any] | None = None,
        tracing_options: TracingOptions | None = None,
        thread_id: str | None = None,
        resource_id: str | None = None,
        abort_signal: asyncio.Event | None = None,
        run_id: str | None = None,
        max_steps: int | None = None,
        model_settings: ModelSettings | None = None,
        structured_output: StructuredOutputInput | None = None,
        memory: MemoryOption | None = None,
        *,
        scope: AgentScope | None = None,
    ) -> AgentCall:
        """One call of this agent (`generate` and `stream` run it), its arguments checked.

        A seam of the agents package (`spanflow.agents.step` and `spanflow.agents.network`
        call it; it is not public API). ``scope``: an open scope the call runs under instead
        of an ``invoke_agent`` span of its own (a network's ``route N`` / ``check N`` phase,
        under which the routing model's ``chat`` span goes).
        """
        if abort_signal is not None and not isinstance(abort_signal, asyncio.Event):
            raise InvalidInputError(
                f"abort_signal must be an asyncio.Event, got {type(abort_signal).__name__}"
            )
        if model_settings is not None and not isinstance(model_settings, ModelSettings):
            raise InvalidInputError(
                f"model_settings must be a ModelSettings, got {type(model_settings).__name__}"
            )
        for name, value in (
            ("thread_id", thread_id),
            ("resource_id", resource_id),
            ("run_id", run_id),
        ):
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}")
        memory_scope = self._memory_scope(memory, thread_id, resource_id)
        if memory_scope is not None:
            thread_id, resource_id = memory_scope.thread, memory_scope.resource
        return AgentCall(
            agent=self,
            run_id=run_id or str(uuid.uuid4()),
            messages=coerce_messages(messages),
            request_context=RequestContext.coerce(request_context),
            settings=model_settings or self.model_settings,
            max_steps=self.max_steps if max_steps is None else _check_max_steps(self.id, max_steps),
            tracing_options=tracing_options,
            thread_id=thread_id,
            resource_id=resource_id,
            abort_signal=abort_signal,
            tracing=self._call_tracing(),
            structured=None
            if structured_output is None
            else OutputSchema.coerce(structured_output),
            memory=memory_scope,
            scope=scope,
        )

    def _call_tracing(self) -> GenAITracing:
        """How a call made now is traced: the agent's own tracing, else the enclosing run's or
        agent call's, else OpenTelemetry's global provider. A seam of the agents package: its
        calls (`_call`) and its network (`spanflow.agents.network`) follow this one rule."""
        return self._own_tracing or enclosing_genai_tracing() or _GLOBAL_TRACING

    def _memory_scope(
        self, option: object, thread_id: str | None, resource_id: str | None
    ) -> MemoryScope | None:
        """The thread a call's ``memory=`` names, checked against the agent and the ids (a seam
        of the agents package: `spanflow.agents.network` checks its ``memory=`` with it too)."""
        if option is None:
            return None
        if self.memory is None:
            raise InvalidInputError(
                f"agent {self.id!r} has no memory: create it with Agent(..., memory=Memory(...)) "
                f"to pass memory="
            )
        if not isinstance(option, Mapping):
            raise InvalidInputError(
                f'memory must be {{"thread": ..., "resource": ...}}, got {type(option).__name__}'
            )
        values = {key: option.get(key) for key in ("thread", "resource")}
        for key, value in values.items():
            if not isinstance(value, str) or not value:
                raise InvalidInputError(
                    f"memory[{key!r}] must be a non-empty string, got {value!r}"
                )
        unknown = sorted(set(option) - {"thread", "resource"})
        if unknown:
            raise InvalidInputError(f"memory has unknown keys {unknown}; it takes thread, resource")
        for name, given, key in (
            ("thread_id", thread_id, "thread"),
            ("resource_id", resource_id, "resource"),
        ):
            if given is not None and given != values[key]:
                raise InvalidInputError(
                    f"{name}={given!r} contradicts memory[{key!r}]={values[key]!r}; give one"
                )
        return MemoryScope(self.memory, str(values["thread"]), str(values["resource"]))

    def __repr__(self) -> str:
        return f"<Agent {self.id!r} model={self.model.model_id!r} tools={list(self.tools)}>"


class AgentStream:
    """The live output of `Agent.stream`: chunks, and the call's outcome.

    Iterate it (or `full_stream`) for `AgentChunk`s, or `text_stream` for the text alone;
    await `text`, `usage`, `finish_reason` or `result`. `abort()` stops the call.
    """

    run_id: str
    """The call's id (the ``runId`` of its chunks)."""
    trace_id: str | None
    """The ``invoke_agent`` span's trace id (32 hex), ``None`` when not traced."""
    span_id: str | None
    """The ``invoke_agent`` span's id (16 hex), ``None`` when not traced."""

    def __init__(self, call: AgentCall) -> None:
        loop = asyncio.get_running_loop()
        self._buffer: ReplayBuffer[AgentChunk] = ReplayBuffer()
        self._call = call
        self._result: asyncio.Future[AgentResult] = loop.create_future()
        self._text: asyncio.Future[str] = loop.create_future()
        self._usage: asyncio.Future[Usage] = loop.create_future()
        self._finish_reason: asyncio.Future[str] = loop.create_future()
        self._object: asyncio.Future[Any] = loop.create_future()
        self._status: asyncio.Future[str] = loop.create_future()
        call.sink = self._buffer.push
        scope = call.open()  # in the caller's context: nests under the caller's span
        self.run_id = call.run_id
        self.trace_id = scope.trace_id
        self.span_id = scope.span_id
        self._task = loop.create_task(call.run(), name=f"spanflow agent {call.agent.id}")
        self._task.add_done_callback(self._done)

    # -- what consumers use --------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[AgentChunk]:
        return self._buffer.iterate()

    @property
    def full_stream(self) -> AsyncIterator[AgentChunk]:
        """Every chunk (Mastra's ``fullStream``); same as iterating the stream itself."""
        return self._buffer.iterate()

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """The text deltas alone (Mastra's ``textStream``)."""
        return self._texts()

    @property
    def chunks(self) -> list[AgentChunk]:
        """Every chunk received so far (a copy)."""
        return self._buffer.items

    @property
    def result(self) -> asyncio.Future[AgentResult]:
        """Awaitable `AgentResult`."""
        return self._result

    @property
    def text(self) -> asyncio.Future[str]:
        """Awaitable final text."""
        return self._text

    @property
    def usage(self) -> asyncio.Future[Usage]:
        """Awaitable usage summed over the call's model calls."""
        return self._usage

    @property
    def finish_reason(self) -> asyncio.Future[str]:
        """Awaitable finish reason (``stop``, ``tool-calls``, ``error``, ``abort``...)."""
        return self._finish_reason

    @property
    def object(self) -> asyncio.Future[Any]:
        """Awaitable structured answer (``structured_output=``): the validated object, or
        ``None`` when the call asked for none or did not succeed."""
        return self._object

    @property
    def status(self) -> asyncio.Future[str]:
        """Awaitable status: the result's (``success``, ``failed``, ``aborted``, ``tripwire``)."""
        return self._status

    def abort(self) -> None:
        """Abort the call: the stream ends with ``abort`` and the result is ``aborted``."""
        self._call.abort()

    async def _texts(self) -> AsyncIterator[str]:
        async for chunk in self._buffer.iterate():
            if isinstance(chunk.payload, TextDeltaPayload):
                yield chunk.payload.text

    # -- completion ----------------------------------------------------------------------------

    def _done(self, task: asyncio.Task[AgentResult]) -> None:
        futures: tuple[asyncio.Future[Any], ...] = (
            self._result,
            self._text,
            self._usage,
            self._finish_reason,
            self._object,
            self._status,
        )
        if task.cancelled():
            error: BaseException = asyncio.CancelledError()
            self._buffer.close(error)
            for future in futures:
                if not future.done():
                    future.cancel()
            return
        failure = task.exception()
        if failure is not None:  # a bug in the loop itself: surface it everywhere
            self._buffer.close(failure)
            for future in futures:
                if not future.done():
                    future.set_exception(failure)
                    future.exception()  # retrieved: iteration and awaiting re-raise it
            return
        result = task.result()
        for future, value in zip(
            futures,
            (
                result,
                result.text,
                result.usage,
                result.finish_reason,
                result.object,
                result.status,
            ),
            strict=True,
        ):
            if not future.done():
                future.set_result(value)
        self._buffer.close()


def _check_max_steps(agent_id: str, max_steps: object) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise AgentDefinitionError(
            f"agent {agent_id!r}: max_steps must be an int >= 1, got {max_steps!r}"
        )
    return max_steps


def _tool_table(agent_id: str, tools: Sequence[Tool] | Mapping[str, Tool]) -> dict[str, Tool]:
    table: dict[str, Tool] = {}
    for name, tool in _named(
        agent_id, "tools", tools, "a list of tools or a mapping of names to tools"
    ):
        if not isinstance(tool, Tool):
            raise AgentDefinitionError(
                f"agent {agent_id!r}: {tool!r} is not a Tool (make one with create_tool or @tool)"
            )
        if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
            raise AgentDefinitionError(
                f"agent {agent_id!r}: tool name {name!r} must be 1-64 letters, digits, '_' or '-'"
            )
        if name in table:
            raise AgentDefinitionError(f"agent {agent_id!r}: two tools are named {name!r}")
        table[name] = tool
    return table


def _named(agent_id: str, kind: str, given: object, expected: str) -> list[tuple[Any, Any]]:
    """``(name, item)`` pairs of a mapping as given, or of a list by each item's ``id``
    (tools, sub-agents, workflows); anything else is refused, saying what was `expected`."""
    if isinstance(given, Mapping):
        return list(given.items())
    if isinstance(given, Sequence) and not isinstance(given, str):
        return [(getattr(item, "id", None), item) for item in given]
    raise AgentDefinitionError(
        f"agent {agent_id!r}: {kind} must be {expected}, got {type(given).__name__}"
    )


def _workflow_class() -> type[Any]:
    from spanflow.workflows.workflow import Workflow

    return Workflow


def _primitive_table(agent_id: str, kind: str, given: object, cls: type[Any]) -> dict[str, Any]:
    """Sub-agents or workflows of a network agent, keyed by id (a list) or as mapped."""
    table: dict[str, Any] = {}
    for key, item in _named(agent_id, kind, given, f"a list or a mapping of ids to {kind}"):
        if not isinstance(item, cls):
            raise AgentDefinitionError(
                f"agent {agent_id!r}: {kind} holds {item!r}, which is not a {cls.__name__}"
            )
        if not isinstance(key, str) or not key:
            raise AgentDefinitionError(f"agent {agent_id!r}: {kind} key {key!r} is not an id")
        if key in table:
            raise AgentDefinitionError(f"agent {agent_id!r}: two {kind} are named {key!r}")
        table[key] = item
    return table


_GLOBAL_TRACING = GenAITracing()
"""The tracing of an agent without its own, outside any run or agent call."""


def _genai_tracing(agent_id: str, value: object) -> GenAITracing:
    if isinstance(value, GenAITracing):
        return value
    if isinstance(value, TracingConfig):
        return GenAITracing(value)
    raise AgentDefinitionError(
        f"agent {agent_id!r}: instrumentation must be a GenAITracing or a TracingConfig, "
        f"got {type(value).__name__}"
    )
