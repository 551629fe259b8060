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
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spanflow.agents.chunks import (
    AbortPayload,
    AgentChunk,
    AgentChunkPayload,
    ChunkType,
    ErrorPayload,
    FinishPayload,
    StartPayload,
    StepFinishPayload,
    StepStartPayload,
    TextDeltaPayload,
    TextEndPayload,
    TextStartPayload,
    ToolCallPayload,
    ToolErrorPayload,
    ToolResultPayload,
)
from spanflow.agents.errors import ToolArgumentsError, UnknownToolError
from spanflow.agents.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from spanflow.agents.models.base import (
    FinishReason,
    ModelChunk,
    ModelFinish,
    ModelRequest,
    ModelSettings,
    ModelToolCall,
    ModelUsage,
    ServerEndpoint,
    TextDelta,
)
from spanflow.agents.results import (
    AgentResult,
    AgentStepResult,
    ToolCallRecord,
    ToolResultRecord,
)
from spanflow.agents.tools import ToolContext, tool_result_text
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

__all__ = ["AgentCall", "ChunkSink"]

ChunkSink = Callable[[AgentChunk], None]


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

    def chat_end(self) -> ChatEnd:
        """The chat span's end facts, from what has arrived so far."""
        finish = self.finish
        return ChatEnd(
            text="".join(self.text),
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
    sink: ChunkSink | None = None
    scope: AgentScope | None = None
    _task: asyncio.Task[Any] | None = None
    _abort_requested: bool = False
    _finished: bool = False
    _text_parts: int = 0
    _conversation: list[Message] = field(default_factory=list)

    # -- control -----------------------------------------------------------------------------

    def open(self) -> AgentScope:
        """Open the agent span in the caller's context (so its trace ids are known at once)."""
        if self.scope is None:
            agent = self.agent
            instructions = agent.instructions if isinstance(agent.instructions, str) else None
            self.scope = self.tracing.start_agent(
                AgentStart(
                    agent_id=agent.id,
                    agent_name=agent.name,
                    run_id=self.run_id,
                    provider=agent.model.provider,
                    model_id=agent.model.model_id,
                    messages=list(self.messages),
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
        except Exception as exc:
            result.error = exc
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
        scope.end(
            AgentEnd(
                result.status,
                text=result.text,
                finish_reason=result.finish_reason,
                usage=result.usage,
                steps=len(result.steps),
                error=result.error,
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
        instructions = await _resolve_instructions(agent.instructions, self.request_context)
        conversation = self._conversation
        if instructions:
            conversation.append(SystemMessage(instructions))
        conversation.extend(self.messages)
        for index in range(1, self.max_steps + 1):
            self._check_abort()
            step = await self._step(index, conversation, result)
            result.steps.append(step)
            result.text = step.text
            result.finish_reason = step.finish_reason
            if not step.tool_calls:
                return
            if index == self.max_steps:
                result.max_steps_reached = True
                return

    async def _step(
        self, index: int, conversation: list[Message], result: AgentResult
    ) -> AgentStepResult:
        message_id = f"{self.run_id}-{index}"
        self._emit("step-start", StepStartPayload(message_id))
        request = ModelRequest(tuple(conversation), self.agent.tool_definitions, self.settings)
        turn = await self._call_model(request, result)
        step_usage = turn.usage or Usage()
        result.usage.add(step_usage)
        finish = turn.finish
        reason: FinishReason = (
            finish.reason if finish else ("tool-calls" if turn.calls else "unknown")
        )
        step_text = "".join(turn.text)
        tool_calls = tuple(turn.calls)
        records = turn.records
        assistant = AssistantMessage(step_text, tool_calls)
        conversation.append(assistant)
        result.response_messages.append(assistant)
        step = AgentStepResult(index, step_text, reason, step_usage, records)
        if tool_calls:
            snapshot = tuple(conversation)
            outcomes = await asyncio.gather(
                *(self._run_tool(call, snapshot) for call in tool_calls)
            )
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

    async def _call_model(self, request: ModelRequest, result: AgentResult) -> _ModelTurn:
        """Stream one model response under its chat span, emitting text and tool-call chunks."""
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
            async with _closing(model.stream(request)) as chunks:
                async for chunk in chunks:
                    self._take(chunk, turn, chat)
        except asyncio.CancelledError:
            chat.exit(token)
            chat.end("aborted", turn.chat_end())
            self._end_text(turn)
            raise
        except Exception as exc:
            chat.exit(token)
            chat.end("failed", turn.chat_end(), exc)
            self._end_text(turn)
            if turn.usage is not None:
                result.usage.add(turn.usage)
            raise
        chat.exit(token)
        chat.end("success", turn.chat_end())
        self._end_text(turn)
        return turn

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
        token = scope.enter()
        try:
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
            output = await tool.call(value, context)
        except asyncio.CancelledError:
            scope.exit(token)
            scope.end("aborted")
            raise
        except Exception as exc:
            scope.exit(token)
            scope.end("failed", error=exc)
            self._emit("tool-error", ToolErrorPayload(call.id, call.name, args, exc))
            return _ToolOutcome(
                ToolResultRecord(call.id, call.name, args, error=exc),
                ToolMessage(call.id, call.name, f"Error: {exc}", is_error=True),
            )
        scope.exit(token)
        scope.end("success", result=output)
        self._emit("tool-result", ToolResultPayload(call.id, call.name, args, output))
        return _ToolOutcome(
            ToolResultRecord(call.id, call.name, args, result=output),
            ToolMessage(call.id, call.name, tool_result_text(output)),
        )

    def _emit(self, type_: ChunkType, payload: AgentChunkPayload) -> None:
        sink = self.sink
        if sink is not None:
            sink(AgentChunk(type_, self.run_id, payload))


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


async def _resolve_instructions(instructions: Any, request_context: RequestContext) -> str | None:
    if instructions is None or isinstance(instructions, str):
        return instructions
    value = instructions(request_context)
    if inspect.isawaitable(value):
        value = await value
    return None if value is None else str(value)


def _display_args(call: ToolCall) -> Any:
    try:
        return call.parse_arguments()
    except ValueError:
        return call.arguments
