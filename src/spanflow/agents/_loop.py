"""The agent loop: call the model, run the tools it asks for concurrently, feed the results
back, until it answers without tools or ``max_steps`` is reached.

One `AgentCall` is one ``generate``/``stream`` call. It emits chunks to a sink (the stream's
buffer, or nothing for ``generate``), drives the tracing scopes of `spanflow.tracing.genai`,
and always ends with a result: a model failure becomes an ``error`` chunk and a failed result;
a tool failure (unknown tool, malformed or invalid arguments, the tool raised) becomes a
``tool-error`` chunk and an error message for the model, and the loop goes on.

Abort: `abort()` (or the caller's ``abort_signal``) cancels the task running the call; the
loop ends its open spans as aborted, emits ``abort`` and returns an aborted result. A
cancellation that is not an abort (the caller's own task was cancelled) ends the spans the
same way and propagates.

Processors (`spanflow.agents.processors`): input processors rewrite the messages before the
first model call, output processors each step's text and every chunk before the sink; an
``abort`` (`TripWire`) ends the call ``tripwire``, anything else they raise fails it with a
`ProcessorError`. Structured output (``structured_output=``): the schema goes to the model as
its native response format or as an instruction in the system prompt; the last answer is
validated, repaired once (the problems sent back in one more model call, without tools: the
repair prompt and the invalid answer stay in the model's conversation, out of the result's
messages and the memory), and a reply that still does not match fails the call with
`StructuredOutputError`. Memory: the thread's last messages are recalled before the call
(and go through the input processors with the new ones); its new messages are remembered,
all in one write, only when the call succeeds. Usage: every model response's usage counts
in the result, however the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from spanflow.agents.chunks import (
    AbortPayload,
    AgentChunk,
    AgentChunkPayload,
    ChunkType,
    ErrorPayload,
    FinishPayload,
    ObjectPayload,
    ObjectResultPayload,
    StartPayload,
    StepFinishPayload,
    StepStartPayload,
    TextDeltaPayload,
    TextEndPayload,
    TextStartPayload,
    ToolCallPayload,
    ToolErrorPayload,
    ToolResultPayload,
    TripwirePayload,
)
from spanflow.agents.errors import (
    ProcessorError,
    StructuredOutputError,
    ToolArgumentsError,
    UnknownToolError,
)
from spanflow.agents.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from spanflow.agents.models.base import (
    FinishReason,
    ModelChunk,
    ModelFinish,
    ModelRequest,
    ModelSettings,
    ModelToolCall,
    ModelUsage,
    ResponseFormat,
    ServerEndpoint,
    StructuredOutputs,
    TextDelta,
    ToolDefinition,
)
from spanflow.agents.models.structured import OutputSchema, OutputValidationError, partial_json
from spanflow.agents.processors import ProcessorContext, TripWire
from spanflow.agents.results import (
    AgentResult,
    AgentStepResult,
    ToolCallRecord,
    ToolResultRecord,
)
from spanflow.agents.tools import ToolContext, call_in_scope, tool_result_text
from spanflow.context import RequestContext
from spanflow.tracing.genai import (
    AgentEnd,
    AgentScope,
    AgentStart,
    ChatEnd,
    ChatScope,
    ChatStart,
    GenAITracing,
    ToolStart,
)
from spanflow.tracing.options import TracingOptions
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.agents.agent import Agent

__all__ = [
    "AgentCall",
    "AgentMemory",
    "ChunkSink",
    "MemoryScope",
    "processor_error",
    "resolve_instructions",
]

ChunkSink = Callable[[AgentChunk], None]

_UNPROCESSED: frozenset[str] = frozenset({"finish", "error", "abort", "tripwire"})
"""Chunks processors never see: the closing ones (a processor cannot fail the call after it
has ended)."""


@runtime_checkable
class AgentMemory(Protocol):
    """What an agent needs of its memory (`spanflow.agents.memory.Memory` is one)."""

    async def recall(self, *, thread: str, resource: str) -> list[Message]:
        """The thread's last messages, oldest first."""
        ...

    async def remember(self, *, thread: str, resource: str, messages: list[Message]) -> None:
        """Append `messages` to the thread, all or none."""
        ...


@dataclass(frozen=True, slots=True)
class MemoryScope:
    """Which thread of which resource one call reads and appends to."""

    memory: AgentMemory
    thread: str
    resource: str


class _Aborted(Exception):
    """Internal: the loop noticed an abort at a boundary."""


@dataclass(slots=True)
class _ModelTurn:
    """What one model response has streamed so far: text, tool calls, usage, its finish."""

    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    records: list[ToolCallRecord] = field(default_factory=list)
    usage: Usage | None = None
    finish: ModelFinish | None = None
    text_id: str | None = None
    """The text part open now (``text-start`` sent, ``text-end`` not yet)."""
    partial: Any = None
    """The structured answer as far as it has streamed (the last ``object`` chunk's)."""

    def chat_end(self, text: str) -> ChatEnd:
        """The chat span's end facts, from what has arrived so far, with `text` as its answer
        (what the output processors made of it; see `AgentCall._chat_text`)."""
        finish = self.finish
        return ChatEnd(
            text=text,
            tool_calls=list(self.calls),
            finish_reason=finish.reason if finish else None,
            usage=self.usage,
            response_model=finish.response_model if finish else None,
            response_id=finish.response_id if finish else None,
        )


@dataclass(slots=True)
class _ToolOutcome:
    record: ToolResultRecord
    message: ToolMessage


@dataclass(slots=True, eq=False)
class AgentCall:
    """One agent call: its inputs, its span, its progress."""

    agent: Agent
    run_id: str
    messages: list[Message]
    request_context: RequestContext
    settings: ModelSettings
    max_steps: int
    tracing: GenAITracing
    """How this call is traced: the agent's own tracing, else the enclosing run's or agent
    call's, else OpenTelemetry's global provider (chosen when the call is made)."""
    tracing_options: TracingOptions | None = None
    thread_id: str | None = None
    resource_id: str | None = None
    abort_signal: asyncio.Event | None = None
    structured: OutputSchema | None = None
    """The schema of a ``structured_output=`` call."""
    memory: MemoryScope | None = None
    sink: ChunkSink | None = None
    scope: AgentScope | None = None
    _task: asyncio.Task[Any] | None = None
    _abort_requested: bool = False
    _finished: bool = False
    _text_parts: int = 0
    _conversation: list[Message] = field(default_factory=list)
    _processor_contexts: dict[str, ProcessorContext] = field(default_factory=dict)
    _new_messages: list[Message] | None = None
    """This call's own messages as the input processors left them (``None`` until they ran):
    what the memory keeps of them."""
    _input_recorded: bool = True
    """Whether the agent span has the call's input messages (it does from its start unless
    input processors must rewrite them first: then `AgentEnd.input_messages` brings them)."""

    # -- control -----------------------------------------------------------------------------

    def open(self) -> AgentScope:
        """Open the agent span in the caller's context (so its trace ids are known at once)."""
        if self.scope is None:
            agent = self.agent
            instructions = agent.instructions if isinstance(agent.instructions, str) else None
            # With input processors, the span gets the messages as they leave them, at its end:
            # the caller's own (a redactor's secrets) never reach the trace.
            self._input_recorded = not agent.input_processors
            self.scope = self.tracing.start_agent(
                AgentStart(
                    agent_id=agent.id,
                    agent_name=agent.name,
                    run_id=self.run_id,
                    provider=agent.model.provider,
                    model_id=agent.model.model_id,
                    messages=list(self.messages) if self._input_recorded else None,
                    instructions=instructions,
                    description=agent.description,
                    thread_id=self.thread_id,
                    resource_id=self.resource_id,
                    request_context=self.request_context,
                    options=self.tracing_options,
                )
            )
        return self.scope

    def abort(self) -> None:
        """Abort the call: it ends with an ``abort`` chunk and an aborted result."""
        if self._finished or self._abort_requested:
            return
        self._abort_requested = True
        if self._task is not None:
            self._task.cancel()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> AgentResult:
        """Run the call to its end; returns the result (never raises but `CancelledError`)."""
        scope = self.open()
        task = self._task = asyncio.current_task()
        watcher = self._watch_abort_signal()
        token = scope.enter()
        result = AgentResult("success", self.run_id, trace_id=scope.trace_id, span_id=scope.span_id)
        try:
            await self._loop(result)
        except (asyncio.CancelledError, _Aborted):
            aborting = self._abort_requested and (task is None or task.uncancel() == 0)
            self._finish(scope, result, "aborted")
            if not aborting:
                raise
            self._emit("abort", AbortPayload())
        except TripWire as trip:
            result.tripwire = trip.info
            result.object = None
            self._finish(scope, result, "tripwire")
            self._emit("tripwire", TripwirePayload(trip.info))
        except Exception as exc:
            result.error = exc
            result.object = None
            self._finish(scope, result, "failed")
            self._emit("error", ErrorPayload(exc))
        else:
            self._finish(scope, result, "success")
            self._emit("finish", FinishPayload(result.finish_reason, result.usage))
        finally:
            self._finished = True
            if watcher is not None:
                watcher.cancel()
            scope.exit(token)
        return result

    def _finish(self, scope: AgentScope, result: AgentResult, status: str) -> None:
        self._finished = True
        if status == "aborted":
            result.status = "aborted"
            result.finish_reason = "abort"
        elif status == "failed":
            result.status = "failed"
            result.finish_reason = "error"
        elif status == "tripwire":
            result.status = "tripwire"
            result.finish_reason = "tripwire"
        trip = result.tripwire
        scope.end(
            AgentEnd(
                result.status,
                text=result.text,
                finish_reason=result.finish_reason,
                usage=result.usage,
                steps=len(result.steps),
                error=result.error,
                input_messages=None if self._input_recorded else self._new_messages,
                tripwire_reason=trip.reason if trip is not None else None,
                tripwire_processor=trip.processor if trip is not None else None,
            )
        )

    def _watch_abort_signal(self) -> asyncio.Task[Any] | None:
        signal = self.abort_signal
        if signal is None:
            return None
        if signal.is_set():
            self._abort_requested = True
            return None
        watcher = asyncio.get_running_loop().create_task(signal.wait())
        watcher.add_done_callback(lambda done: None if done.cancelled() else self.abort())
        return watcher

    def _check_abort(self) -> None:
        if self._abort_requested:
            raise _Aborted

    async def _loop(self, result: AgentResult) -> None:
        agent = self.agent
        self._emit("start", StartPayload(agent.id))
        self._check_abort()
        instructions = await resolve_instructions(agent.instructions, self.request_context)
        if self.structured is not None and not self._native_format():
            instruction = self.structured.instruction()
            instructions = f"{instructions}\n\n{instruction}" if instructions else instruction
        history = await self._recall()
        processed, new = await self._process_input(history, list(self.messages))
        self._new_messages = new
        conversation = self._conversation
        if instructions:
            conversation.append(SystemMessage(instructions))
        conversation.extend(processed)
        for index in range(1, self.max_steps + 1):
            self._check_abort()
            step = await self._step(index, conversation, result)
            result.steps.append(step)
            result.text = step.text
            result.finish_reason = step.finish_reason
            if not step.tool_calls:
                break
            if index == self.max_steps:
                result.max_steps_reached = True
                break
        if self.structured is not None:
            await self._structured_answer(self.structured, conversation, result)
        await self._remember(result)

    def _native_format(self) -> bool:
        model = self.agent.model
        return isinstance(model, StructuredOutputs) and bool(model.supports_response_format)

    async def _structured_answer(
        self, schema: OutputSchema, conversation: list[Message], result: AgentResult
    ) -> None:
        """Validate the last answer against `schema`, with one repair call when it fails."""
        agent = self.agent
        if result.max_steps_reached:
            raise StructuredOutputError(
                f"agent {agent.id!r}: no structured answer: the loop stopped at max_steps="
                f"{self.max_steps} while the model was still calling tools",
                problems="no answer",
                reply=result.text,
            )
        try:
            result.object = schema.validate(result.text)
        except OutputValidationError as first:
            repair = UserMessage(
                f"Your answer does not match the required JSON schema: {first}. Answer again "
                f"with only the corrected JSON value."
            )
            # The repair exchange is for the model only: the result's messages (and so the
            # memory) keep the valid answer in place of the invalid one, and no repair prompt.
            conversation.append(repair)
            result.response_messages.pop()  # the invalid answer (its step called no tools)
            self._check_abort()
            step = await self._step(len(result.steps) + 1, conversation, result, tools=())
            result.steps.append(step)
            result.text = step.text
            result.finish_reason = step.finish_reason
            try:
                result.object = schema.validate(result.text)
            except OutputValidationError as second:
                reply = result.text if len(result.text) <= 200 else result.text[:200] + "..."
                raise StructuredOutputError(
                    f"agent {agent.id!r}: the answer does not match the output schema "
                    f"{schema.name!r}, even after one repair attempt: {second} "
                    f"(the reply: {reply!r})",
                    problems=str(second),
                    reply=result.text,
                ) from None
        self._emit("object-result", ObjectResultPayload(result.object))

    async def _recall(self) -> list[Message]:
        scope = self.memory
        if scope is None:
            return []
        return list(await scope.memory.recall(thread=scope.thread, resource=scope.resource))

    async def _remember(self, result: AgentResult) -> None:
        """Append the call's messages and answers to its thread in one write (success only:
        a failing call has raised before this)."""
        scope = self.memory
        if scope is None:
            return
        messages = [*(self._new_messages or ()), *result.response_messages]
        await scope.memory.remember(thread=scope.thread, resource=scope.resource, messages=messages)

    def _context(self, processor: Any) -> ProcessorContext:
        name: str = processor.name
        context = self._processor_contexts.get(name)
        if context is None:
            context = ProcessorContext(name, self.agent.id, self.run_id, self.request_context)
            self._processor_contexts[name] = context
        return context

    async def _process_input(
        self, history: list[Message], new: list[Message]
    ) -> tuple[list[Message], list[Message]]:
        """The recalled and the new messages through the input processors (which see them as
        one conversation): all of them as they come out, and those of them that are new."""
        messages = [*history, *new]
        recalled = [True] * len(history) + [False] * len(new)
        for processor in self.agent.input_processors:
            hook = getattr(processor, "process_input", None)
            if hook is None:
                continue
            try:
                out = list(await hook(messages, self._context(processor)))
            except Exception as exc:
                raise processor_error(processor, "process_input", exc) from exc
            recalled = _origins(messages, recalled, out)
            messages = out
        return messages, [m for m, old in zip(messages, recalled, strict=True) if not old]

    async def _process_output(self, text: str) -> str:
        for processor in self.agent.output_processors:
            hook = getattr(processor, "process_output", None)
            if hook is None:
                continue
            try:
                text = str(await hook(text, self._context(processor)))
            except Exception as exc:
                raise processor_error(processor, "process_output", exc) from exc
        return text

    def _process_chunk(self, chunk: AgentChunk) -> AgentChunk | None:
        for processor in self.agent.output_processors:
            hook = getattr(processor, "process_chunk", None)
            if hook is None:
                continue
            try:
                processed = hook(chunk, self._context(processor))
            except Exception as exc:
                raise processor_error(processor, "process_chunk", exc) from exc
            if processed is None:
                return None
            chunk = processed
        return chunk

    async def _step(
        self,
        index: int,
        conversation: list[Message],
        result: AgentResult,
        tools: tuple[ToolDefinition, ...] | None = None,
    ) -> AgentStepResult:
        message_id = f"{self.run_id}-{index}"
        self._emit("step-start", StepStartPayload(message_id))
        request = ModelRequest(
            tuple(conversation),
            self.agent.tool_definitions if tools is None else tools,
            self.settings,
            self._response_format(),
        )
        turn, step_text = await self._call_model(request, result)
        step_usage = turn.usage or Usage()
        finish = turn.finish
        reason: FinishReason = (
            finish.reason if finish else ("tool-calls" if turn.calls else "unknown")
        )
        tool_calls = tuple(turn.calls)
        records = turn.records
        assistant = AssistantMessage(step_text, tool_calls)
        conversation.append(assistant)
        result.response_messages.append(assistant)
        step = AgentStepResult(index, step_text, reason, step_usage, records)
        if tool_calls:
            snapshot = tuple(conversation)
            outcomes = await _all_tools(self._run_tool(call, snapshot) for call in tool_calls)
            for outcome in outcomes:
                conversation.append(outcome.message)
                result.response_messages.append(outcome.message)
                step.tool_results.append(outcome.record)
            step.is_continued = index < self.max_steps
        self._emit(
            "step-finish",
            StepFinishPayload(
                message_id=message_id,
                reason=reason,
                is_continued=step.is_continued,
                text=step_text,
                tool_calls=[ToolCallPayload(r.tool_call_id, r.tool_name, r.args) for r in records],
                usage=step_usage,
            ),
        )
        return step

    def _response_format(self) -> ResponseFormat | None:
        schema = self.structured
        if schema is None or not self._native_format():
            return None
        return ResponseFormat(schema.name, schema.json_schema)

    async def _call_model(
        self, request: ModelRequest, result: AgentResult
    ) -> tuple[_ModelTurn, str]:
        """Stream one model response under its chat span, emitting text and tool-call chunks;
        returns it with its text through the output processors. Its usage counts in the
        result however the call ends (a tripwire or an abort mid-stream included)."""
        assert self.scope is not None
        model = self.agent.model
        endpoint = model if isinstance(model, ServerEndpoint) else None
        chat = self.scope.chat(
            ChatStart(
                provider=model.provider,
                model_id=model.model_id,
                messages=request.messages,
                settings=self.settings,
                tools=request.tools,
                server_address=endpoint.server_address if endpoint else None,
                server_port=endpoint.server_port if endpoint else None,
            )
        )
        turn = _ModelTurn()
        token = chat.enter()
        try:
            try:
                async with _closing(model.stream(request)) as chunks:
                    async for chunk in chunks:
                        self._take(chunk, turn, chat)
            finally:
                if turn.usage is not None:
                    result.usage.add(turn.usage)
        except (asyncio.CancelledError, TripWire):
            chat.exit(token)
            chat.end("aborted", turn.chat_end(self._chat_text(turn, None)))  # not a model failure
            self._end_text(turn)
            raise
        except Exception as exc:
            chat.exit(token)
            chat.end("failed", turn.chat_end(self._chat_text(turn, None)), exc)
            self._end_text(turn)
            raise
        chat.exit(token)
        text: str | None = None
        try:
            self._end_text(turn)
            text = await self._process_output("".join(turn.text))
        finally:
            chat.end("success", turn.chat_end(self._chat_text(turn, text)))
        return turn, text

    def _chat_text(self, turn: _ModelTurn, processed: str | None) -> str:
        """The answer text the chat span records: with output processors, only what they
        have processed (`processed`; none when the stream or they stopped first), so what
        they hold back from the stream and the result (a redacted secret) stays out of the
        trace too."""
        if processed is not None:
            return processed
        return "" if self.agent.output_processors else "".join(turn.text)

    def _take(self, chunk: ModelChunk, turn: _ModelTurn, chat: ChatScope) -> None:
        """Add one streamed model chunk to the turn; text and tool calls go out as chunks."""
        if isinstance(chunk, TextDelta):
            if not chunk.text:
                return
            chat.first_chunk()
            if turn.text_id is None:
                self._text_parts += 1
                turn.text_id = f"{self.run_id}-text-{self._text_parts}"
                self._emit("text-start", TextStartPayload(turn.text_id))
            turn.text.append(chunk.text)
            self._emit("text-delta", TextDeltaPayload(turn.text_id, chunk.text))
            if self.structured is not None:
                self._emit_partial(turn)
        elif isinstance(chunk, ModelToolCall):
            chat.first_chunk()
            self._end_text(turn)
            call = ToolCall(chunk.id, chunk.name, chunk.arguments)
            turn.calls.append(call)
            record = ToolCallRecord(call.id, call.name, _display_args(call))
            turn.records.append(record)
            self._emit(
                "tool-call",
                ToolCallPayload(record.tool_call_id, record.tool_name, record.args),
            )
        elif isinstance(chunk, ModelUsage):
            turn.usage = chunk.usage if turn.usage is None else turn.usage + chunk.usage
        elif isinstance(chunk, ModelFinish):
            turn.finish = chunk

    def _emit_partial(self, turn: _ModelTurn) -> None:
        """An ``object`` chunk when the streamed JSON holds more than the last one showed."""
        partial = partial_json("".join(turn.text))
        if partial is not None and partial != turn.partial:
            turn.partial = partial
            self._emit("object", ObjectPayload(partial))

    def _end_text(self, turn: _ModelTurn) -> None:
        """Close the open text part, if any, with a ``text-end`` chunk."""
        if turn.text_id is not None:
            self._emit("text-end", TextEndPayload(turn.text_id))
            turn.text_id = None

    async def _run_tool(self, call: ToolCall, conversation: tuple[Message, ...]) -> _ToolOutcome:
        assert self.scope is not None
        agent = self.agent
        tool = agent.tools.get(call.name)
        parse_error: ValueError | None = None
        try:
            args: Any = call.parse_arguments()
        except ValueError as exc:
            args, parse_error = call.arguments, exc
        scope = self.scope.tool(
            ToolStart(call.name, call.id, args, tool.description if tool is not None else None)
        )

        async def invoke() -> Any:
            if tool is None:
                known = ", ".join(sorted(agent.tools)) or "none"
                raise UnknownToolError(f"unknown tool {call.name!r}; available tools: {known}")
            if parse_error is not None:
                raise ToolArgumentsError(
                    f"invalid arguments for tool {call.name!r}: not valid JSON ({parse_error})"
                )
            value = tool.validate_input(args)
            context = ToolContext(
                tool_call_id=call.id,
                tool_name=call.name,
                agent_id=agent.id,
                run_id=self.run_id,
                request_context=self.request_context,
                messages=conversation,
                abort_signal=self.abort_signal,
            )
            return await tool.call(value, context)

        try:
            output = await call_in_scope(scope, invoke)
        except Exception as exc:
            self._emit("tool-error", ToolErrorPayload(call.id, call.name, args, exc))
            return _ToolOutcome(
                ToolResultRecord(call.id, call.name, args, error=exc),
                ToolMessage(call.id, call.name, f"Error: {exc}", is_error=True),
            )
        self._emit("tool-result", ToolResultPayload(call.id, call.name, args, output))
        return _ToolOutcome(
            ToolResultRecord(call.id, call.name, args, result=output),
            ToolMessage(call.id, call.name, tool_result_text(output)),
        )

    def _emit(self, type_: ChunkType, payload: AgentChunkPayload) -> None:
        chunk: AgentChunk | None = AgentChunk(type_, self.run_id, payload)
        if self.agent.output_processors and type_ not in _UNPROCESSED:
            assert chunk is not None
            chunk = self._process_chunk(chunk)
        sink = self.sink
        if sink is not None and chunk is not None:
            sink(chunk)


@contextlib.asynccontextmanager
async def _closing(chunks: AsyncIterator[ModelChunk]) -> AsyncIterator[AsyncIterator[ModelChunk]]:
    """Close the model's stream however the loop leaves it (an async generator's ``finally``
    releases the HTTP response)."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def resolve_instructions(instructions: Any, request_context: RequestContext) -> str | None:
    """An agent's instructions for one call: fixed, or its function of the request context
    (awaited if async). The network's router is instructed by the same rule."""
    if instructions is None or isinstance(instructions, str):
        return instructions
    value = instructions(request_context)
    if inspect.isawaitable(value):
        value = await value
    return None if value is None else str(value)


async def _all_tools(calls: Iterable[Awaitable[_ToolOutcome]]) -> list[_ToolOutcome]:
    """Run the tool calls concurrently; when one raises past its tool error handling (a
    processor's tripwire or error on its chunk), wait for the others before raising it, so
    nothing is emitted after the call has ended."""
    done = await asyncio.gather(*calls, return_exceptions=True)
    for item in done:
        if isinstance(item, BaseException):
            raise item
    return [item for item in done if not isinstance(item, BaseException)]


def _origins(before: list[Message], recalled: list[bool], after: list[Message]) -> list[bool]:
    """Which of the messages an input processor returned (`after`) come from the memory.

    A processor gives no provenance, so it is inferred: a message it returned unchanged (the
    same object) keeps its origin; when it returned as many messages as it got (it rewrote
    them one by one, like a redactor), each keeps the origin of the one in its place; any
    other message (inserted, or rewritten while others were dropped) takes the origin of the
    message before it, or of the first message it got. So a processor that drops messages
    (a token limiter) never makes the memory store recalled messages again.
    """
    if len(after) == len(before):
        return list(recalled)
    by_identity = {id(message): old for message, old in zip(before, recalled, strict=True)}
    origins: list[bool] = []
    previous = recalled[0] if recalled else False
    for message in after:
        previous = by_identity.get(id(message), previous)
        origins.append(previous)
    return origins


def processor_error(processor: Any, hook: str, error: Exception) -> ProcessorError:
    """The `ProcessorError` of a processor hook that raised, naming both (the network's
    input processors fail by it too)."""
    name = str(getattr(processor, "name", type(processor).__name__))
    return ProcessorError(
        f"processor {name!r} raised in {hook}: {type(error).__name__}: {error}",
        processor=name,
        hook=hook,
    )


def _display_args(call: ToolCall) -> Any:
    try:
        return call.parse_arguments()
    except ValueError:
        return call.arguments
