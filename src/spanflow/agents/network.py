"""Agent networks: a routing agent delegates a task to sub-agents, workflows and tools in a loop
until it is done (Mastra's ``agent.network()``, ``network.md``).

``network(agent, messages, ...)`` returns a `NetworkStream` at once and runs the loop in its own
task. Each iteration (``network.md`` §2):

1. **Routing**: the network agent's model, with router instructions listing every primitive
   (its description and input JSON schema), makes one structured decision ``{primitiveId,
   primitiveType: agent|workflow|tool|none, prompt, selectionReason}``.
2. **Execution**: the sub-agent streams the prompt (its chunks re-emitted as
   ``agent-execution-event-<type>``), the workflow runs with the prompt parsed as its JSON input
   (its events re-emitted as ``workflow-execution-event-<type>``), or the tool executes with the
   prompt parsed as its arguments. A primitive that fails (an unknown id, bad JSON, an error, a
   failed run) is a *failed result* told to the router; it never ends or loops the network.
3. **Completion check**: the model answers ``{isComplete, completionReason, finalResult}``.

It ends when the check says complete, or after ``max_steps`` iterations (the result then says
``Max iterations reached``). A workflow that suspends suspends the network (status
``suspended``, a ``workflow-execution-suspended`` chunk last); `NetworkStream.resume` (or
`network_resume`, from any process with the same store) resumes the workflow run and carries on.

Chunks are Mastra's, key for key at every level (``{type, runId, from: "NETWORK", payload}``;
compared with a capture of @mastra/core 1.71 in the tests, which list the few nested
differences, such as the re-emitted chunks of spanflow's agent stream): a primitive's ``args``
are the routing call's decision with its ``runId`` and ``conversationContext``; the usage of
one call (``routing-agent-end``, ``agent-execution-end``) is ``{inputTokens, outputTokens,
totalTokens, raw}``, a run's total has every `Usage` key; ``workflow-execution-end.result``
names the network run (``runId``), the payload's own ``runId`` the workflow run. One
deliberate difference: the usage on ``network-execution-event-finish`` is the sum of *every*
model call of the network (routing, checks, sub-agents, agent steps of workflows), where
Mastra leaves the checks out.

**Input processors.** The network agent's ``input_processors`` run on the incoming messages
first, as in its own calls: the task, the memory thread, the router and the trace see what
they leave (a `pii_redactor` keeps an e-mail address out of all four). A processor's
``ctx.abort`` ends the network with status ``tripwire`` (``result.tripwire``; its last chunks
are ``network-execution-event-finish`` and a ``tripwire`` chunk; its span says
``spanflow.agent.status=tripwire``, not an error).

**Failures.** A router that cannot decide, or anything that raises (a store, a processor, a
thread of another resource), ends the network with status ``failed`` and ``result.error``;
its last chunks are ``network-execution-event-finish`` (not complete, the error as the
reason) and an ``error`` chunk ``{error: {name, message}}``, as a failed agent stream ends
with Mastra's ``error`` chunk: the stream never raises for it, and the network span ends with
an error status and the exception recorded. Only cancellation, and a bug in the loop itself,
raise from the stream.

**Where the network's state lives.** With a memory (``memory={"thread", "resource"}`` on an
agent created with a `Memory`: the rules and errors of the agent's own ``memory=``), the task
and every primitive's result are saved to the thread, and each routing call recalls it. To
resume a suspended network in another process, its own state (task, iteration, usage, the
results so far, the trace to continue) is kept *beside the suspended workflow run*, in the
workflow's own store (``workflow.storage``, which keeps the run anyway, so a network needs no
store of its own): a thread record of that store (`ThreadStore`) with id
``spanflow-network:<workflow run id>`` (`network_thread_id`) of resource ``spanflow-network``
(`NETWORK_RESOURCE_ID`), the state as its metadata. It is written when the workflow suspends,
rewritten if the resumed run suspends again, and deleted once the resumed run has ended. The
state is *not* put in the workflow run's request context: the run's steps and tools, its
request-context schema, and the stored run (its ``requestContext``, shown by the server) see
only what the caller gave the network.

**Tracing** (``network.md`` §4): one trace. The network is an ``invoke_agent <network agent>``
span (``spanflow.network.iterations``, ``spanflow.network.status``); under it, per iteration, a
``route N`` span with the routing ``chat`` span, the primitive's own span (the sub-agent's
``invoke_agent``, the workflow's ``invoke_workflow`` with its steps, or ``execute_tool``), and a
``check N`` span with its ``chat``. Every network chunk is a span event on the span it belongs
to, except the re-emitted text deltas of sub-agents (one event per token would drown the
trace). Tags and metadata of ``tracing_options`` are on every span.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import pydantic

from spanflow._buffer import ReplayBuffer
from spanflow._schema import schema_of, to_wire
from spanflow.agents.chunks import error_summary
from spanflow.agents.errors import AgentError
from spanflow.agents.messages import (
    AssistantMessage,
    Message,
    MessagesInput,
    UserMessage,
    coerce_messages,
)
from spanflow.agents.processors import ProcessorContext, TripWire, TripwireInfo
from spanflow.agents.results import AgentResult
from spanflow.agents.tools import Tool, ToolContext
from spanflow.context import RequestContext
from spanflow.errors import InvalidInputError
from spanflow.storage.base import StoredThread, ThreadStore
from spanflow.tracing.genai import (
    AgentEnd,
    AgentScope,
    AgentScopeStatus,
    AgentStart,
    GenAITracing,
    ToolStart,
    enclosing_genai_tracing,
)
from spanflow.tracing.network import (
    close_phase,
    open_phase,
    record_event,
    set_input_messages,
    set_span_attributes,
)
from spanflow.tracing.options import TracingOptions, options_from_dict, options_to_dict
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.agents._loop import AgentMemory
    from spanflow.agents.agent import Agent
    from spanflow.workflows.results import WorkflowResult
    from spanflow.workflows.stream import WorkflowStream
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "NETWORK_RESOURCE_ID",
    "CompletionCheck",
    "NetworkChunk",
    "NetworkError",
    "NetworkResult",
    "NetworkStatus",
    "NetworkStream",
    "RoutingDecision",
    "network",
    "network_resume",
    "network_thread_id",
]

NETWORK_RESOURCE_ID = "spanflow-network"
"""The resource of the thread records in which suspended networks keep their state (in the
suspended workflow's store), apart from every application resource."""


def network_thread_id(workflow_run_id: str) -> str:
    """The id of the thread record that keeps the state of the network suspended at workflow
    run `workflow_run_id` (of resource `NETWORK_RESOURCE_ID`, in the workflow's store)."""
    return f"spanflow-network:{workflow_run_id}"


ROUTING_AGENT_ID = "routing-agent"
NetworkStatus = Literal["success", "incomplete", "suspended", "failed", "tripwire"]
"""``success``: the check said complete; ``incomplete``: ``max_steps`` reached first;
``suspended``: a workflow primitive suspended (resume it); ``failed``: the router failed, or
anything else raised (``result.error``); ``tripwire``: an input processor of the network agent
stopped it (``result.tripwire``) before anything ran."""

PrimitiveType = Literal["agent", "workflow", "tool", "none"]
_Answer = TypeVar("_Answer", bound=pydantic.BaseModel)


class NetworkError(AgentError):
    """The network could not go on: the routing model failed, or answered something that is
    not a valid decision, or a resume was asked of a network that cannot be resumed."""


class RoutingDecision(pydantic.BaseModel):
    """The router's structured decision (Mastra's field names)."""

    primitiveId: str = ""
    primitiveType: PrimitiveType
    prompt: str = ""
    selectionReason: str = ""


class CompletionCheck(pydantic.BaseModel):
    """The completion check's structured answer (Mastra's field names)."""

    isComplete: bool
    completionReason: str = ""
    finalResult: str = ""


@dataclass(slots=True)
class NetworkChunk:
    """One chunk of a network stream; `to_dict` is Mastra's wire form."""

    type: str
    run_id: str
    payload: dict[str, Any]
    from_: Literal["NETWORK"] = "NETWORK"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "runId": self.run_id,
            "from": self.from_,
            "payload": self.payload,
        }


@dataclass(slots=True)
class NetworkResult:
    """How a network ended."""

    status: NetworkStatus
    run_id: str
    result: str = ""
    """The completion check's final result (empty unless it said complete)."""
    completion_reason: str = ""
    iterations: int = 0
    usage: Usage = field(default_factory=Usage)
    error: BaseException | None = None
    suspended: dict[str, Any] | None = None
    """For status ``suspended``: ``{workflowId, runId, suspendPayload, suspended}``."""
    tripwire: TripwireInfo | None = None
    """For status ``tripwire``: which input processor stopped the network, and why."""
    trace_id: str | None = None
    span_id: str | None = None

    @property
    def is_complete(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "runId": self.run_id,
            "result": self.result,
            "completionReason": self.completion_reason,
            "isComplete": self.is_complete,
            "iterations": self.iterations,
            "usage": self.usage.to_dict(),
            "traceId": self.trace_id,
            "spanId": self.span_id,
        }
        if self.suspended is not None:
            out["suspended"] = self.suspended
        if self.error is not None:
            out["error"] = error_summary(self.error)
        if self.tripwire is not None:
            out["tripwire"] = self.tripwire.to_dict()
        return out


# -- the public entry points ---------------------------------------------------------------


def network(
    agent: Agent,
    messages: MessagesInput,
    *,
    memory: Mapping[str, Any] | None = None,
    max_steps: int = 1,
    request_context: RequestContext | Mapping[str, Any] | None = None,
    tracing_options: TracingOptions | None = None,
    run_id: str | None = None,
) -> NetworkStream:
    """Start the network of `agent` on `messages` and return its live `NetworkStream` (needs a
    running event loop). ``max_steps`` bounds the iterations (routing, execution, check).

    ``memory`` follows the agent's own rule (`Agent._memory_scope`, called here: one rule, one
    set of messages): exactly ``{"thread": ..., "resource": ...}``, both non-empty strings, on
    an agent created with a ``Memory``. Whether the thread belongs to that resource needs the
    store, so it is the first thing the network's task checks, before any processor, model or
    write: a thread of another resource ends the network ``failed`` with that
    `InvalidInputError` (its ``error`` chunk and ``result.error``), having done nothing.

    Raises:
        InvalidInputError: bad messages, ``max_steps`` or ``memory``.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise InvalidInputError(f"max_steps must be an int >= 1, got {max_steps!r}")
    coerced = coerce_messages(messages)
    task = _task_text(coerced)
    scope = agent._memory_scope(memory, None, None)
    rid = run_id or str(uuid.uuid4())
    state = _State(
        run_id=rid,
        task=task,
        max_steps=max_steps,
        thread_id=scope.thread if scope is not None else rid,
        resource_id=scope.resource if scope is not None else agent.id,
        uses_memory=scope is not None,
        tracing=options_to_dict(tracing_options) if tracing_options else {},
    )
    store = scope.memory if scope is not None else None
    loop = _NetworkLoop(agent, state, store, RequestContext.coerce(request_context))
    return NetworkStream(loop, loop.run_new(coerced), tracing_options)


async def network_resume(
    agent: Agent,
    resume_data: Any = None,
    *,
    workflow_run_id: str,
    workflow_id: str | None = None,
    memory: Mapping[str, Any] | None = None,
    request_context: RequestContext | Mapping[str, Any] | None = None,
    step: str | None = None,
    label: str | None = None,
) -> NetworkStream:
    """Resume a network suspended at a workflow primitive, from any process whose agent has the
    same workflows on the same store: loads the stored run, reads the network's state from it,
    resumes the run with `resume_data` and carries on with the loop.

    ``memory`` is checked as `network`'s; it may only name the network's own thread (the
    stored state says which). A network that kept a memory thread is resumed with the agent's
    memory.

    The request context is the stored run's (what the network's caller gave), updated with
    `request_context`.

    Raises:
        NetworkError: no such suspended run among the agent's workflows, or it was not started
            by a network (no network state is stored for it), or it kept a memory thread and
            the agent has no memory.
        InvalidInputError: bad ``memory``, or another thread than the network's.
    """
    workflow, stored_context = await _find_suspended(agent, workflow_run_id, workflow_id)
    state = await _load_state(workflow, workflow_run_id)
    store = _resumed_memory(agent, state, memory)
    context = dict(stored_context)
    if request_context is not None:
        context.update(RequestContext.coerce(request_context).to_dict())
    loop = _NetworkLoop(agent, state, store, RequestContext.coerce(context))
    options = options_from_dict(state.tracing) if state.tracing else None
    parent = state.parent_options()
    resumed = _merge_parent(options, parent)
    work = loop.run_resumed(workflow, workflow_run_id, resume_data, step, label)
    return NetworkStream(loop, work, resumed)


class NetworkStream:
    """The live output of a network: iterate it for `NetworkChunk`s; await `result`, `usage`,
    `status`. `resume` continues a suspended one (see `network_resume`)."""

    def __init__(
        self,
        loop: _NetworkLoop,
        work: Any,
        tracing_options: TracingOptions | None,
    ) -> None:
        running = asyncio.get_running_loop()
        self._loop = loop
        self._buffer: ReplayBuffer[NetworkChunk] = ReplayBuffer()
        loop.sink = self._buffer.push
        scope = loop.open(tracing_options)
        self.run_id = loop.state.run_id
        self.trace_id = scope.trace_id
        self.span_id = scope.span_id
        self._result: asyncio.Future[NetworkResult] = running.create_future()
        self._task = running.create_task(work, name=f"spanflow network {loop.agent.id}")
        self._task.add_done_callback(self._done)

    def __aiter__(self) -> AsyncIterator[NetworkChunk]:
        return self._buffer.iterate()

    @property
    def chunks(self) -> list[NetworkChunk]:
        """Every chunk so far (a copy)."""
        return self._buffer.items

    @property
    def result(self) -> asyncio.Future[NetworkResult]:
        return self._result

    @property
    async def usage(self) -> Usage:
        """The usage summed over every model call of the network."""
        return (await self._result).usage

    @property
    async def status(self) -> NetworkStatus:
        return (await self._result).status

    async def resume(
        self,
        resume_data: Any = None,
        *,
        step: str | None = None,
        label: str | None = None,
        request_context: RequestContext | Mapping[str, Any] | None = None,
    ) -> NetworkStream:
        """Resume this suspended network (its workflow run) and return the new stream."""
        result = await self._result
        if result.status != "suspended" or result.suspended is None:
            raise NetworkError(f"network {self.run_id!r} is {result.status}, not suspended")
        state = self._loop.state
        memory = (
            {"thread": state.thread_id, "resource": state.resource_id}
            if self._loop.store is not None
            else None
        )
        return await network_resume(
            self._loop.agent,
            resume_data,
            workflow_run_id=result.suspended["runId"],
            workflow_id=result.suspended["workflowId"],
            memory=memory,
            request_context=request_context,
            step=step,
            label=label,
        )

    def _done(self, task: asyncio.Task[NetworkResult]) -> None:
        if task.cancelled():
            self._buffer.close(asyncio.CancelledError())
            self._result.cancel()
            return
        failure = task.exception()
        if failure is not None:  # a bug in the loop itself: surface it everywhere
            self._buffer.close(failure)
            self._result.set_exception(failure)
            self._result.exception()
            return
        self._result.set_result(task.result())
        self._buffer.close()


# -- state ---------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _State:
    """What a network needs to go on, JSON-able (kept beside a suspended workflow run, in the
    metadata of a thread record of the workflow's store)."""

    run_id: str
    task: str
    max_steps: int
    thread_id: str
    resource_id: str
    uses_memory: bool = False
    iteration: int = 0
    usage: Usage = field(default_factory=Usage)
    history: list[str] = field(default_factory=list)
    """The results so far, as the JSON texts the router reads (without a memory)."""
    last: dict[str, Any] = field(default_factory=dict)
    """The last decision and result: primitiveId, primitiveType, result, selectionReason,
    prompt, feedback."""
    tracing: dict[str, Any] = field(default_factory=dict)
    trace_parent: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "runId": self.run_id,
            "task": self.task,
            "maxSteps": self.max_steps,
            "threadId": self.thread_id,
            "resourceId": self.resource_id,
            "usesMemory": self.uses_memory,
            "iteration": self.iteration,
            "usage": self.usage.to_dict(),
            "history": self.history,
            "last": self.last,
            "tracing": self.tracing,
            "traceParent": self.trace_parent,
        }
        # Through JSON: the store keeps JSON data only (a result may hold other values).
        loaded: dict[str, Any] = json.loads(json.dumps(data, ensure_ascii=False, default=str))
        return loaded

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _State:
        try:
            return cls(
                run_id=data["runId"],
                task=data["task"],
                max_steps=int(data["maxSteps"]),
                thread_id=data["threadId"],
                resource_id=data["resourceId"],
                uses_memory=bool(data.get("usesMemory")),
                iteration=int(data["iteration"]),
                usage=Usage.from_dict(data.get("usage") or {}),
                history=list(data.get("history") or []),
                last=dict(data.get("last") or {}),
                tracing=dict(data.get("tracing") or {}),
                trace_parent=dict(data.get("traceParent") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NetworkError(f"the stored network state is unreadable: {exc!r}") from exc

    def parent_options(self) -> TracingOptions | None:
        parent = self.trace_parent
        if not parent.get("traceId") or not parent.get("spanId"):
            return None
        return TracingOptions(trace_id=parent["traceId"], parent_span_id=parent["spanId"])


@dataclass(slots=True)
class _Outcome:
    """What a primitive produced, as the router and the check are told."""

    result: Any
    failed: bool = False
    suspended: dict[str, Any] | None = None

    def text(self) -> str:
        if isinstance(self.result, str):
            return self.result
        return json.dumps(to_wire(self.result), ensure_ascii=False, default=str)


@dataclass(slots=True)
class _Primitives:
    agents: dict[str, Agent]
    workflows: dict[str, Workflow]
    tools: dict[str, Tool]


class _Stop(Exception):
    """Internal: the network ends here (suspended, or the router failed)."""


# -- the loop ------------------------------------------------------------------------------


class _NetworkLoop:
    """One network execution (a start, or a resume): emits chunks, drives the spans."""

    def __init__(
        self,
        agent: Agent,
        state: _State,
        store: AgentMemory | None,
        request_context: RequestContext,
    ) -> None:
        self.agent = agent
        self.state = state
        self.store = store
        self.request_context = request_context
        self.primitives = _Primitives(
            _table(getattr(agent, "agents", None)),
            _table(getattr(agent, "workflows", None)),
            _table(getattr(agent, "tools", None)),
        )
        self.sink: Any = None
        self.scope: AgentScope | None = None
        self.result = NetworkResult("incomplete", state.run_id)
        self.ended = False
        self._iterating = False
        """Whether an iteration has begun (a failure then counts it)."""
        self._router: Agent | None = None

    # -- spans and chunks ----------------------------------------------------------------------

    def open(self, tracing_options: TracingOptions | None) -> AgentScope:
        """Open the network span in the caller's context (its ids are known at once)."""
        agent = self.agent
        tracing: GenAITracing = (
            getattr(agent, "_own_tracing", None)
            or enclosing_genai_tracing()
            or agent.instrumentation
        )
        self.scope = tracing.start_agent(
            AgentStart(
                agent_id=agent.id,
                agent_name=agent.name,
                run_id=self.state.run_id,
                provider=agent.model.provider,
                model_id=agent.model.model_id,
                # With input processors, the input is recorded once they have run
                # (`_processed_input`): the raw task must not reach the trace.
                messages=[] if agent.input_processors else [UserMessage(self.state.task)],
                description=agent.description,
                thread_id=self.state.thread_id if self.state.uses_memory else None,
                resource_id=self.state.resource_id if self.state.uses_memory else None,
                request_context=self.request_context,
                options=tracing_options,
            )
        )
        self.result.trace_id = self.scope.trace_id
        self.result.span_id = self.scope.span_id
        if not self.state.trace_parent and self.scope.trace_id and self.scope.span_id:
            self.state.trace_parent = {"traceId": self.scope.trace_id, "spanId": self.scope.span_id}
        return self.scope

    def emit(self, type_: str, payload: dict[str, Any], span: AgentScope | None = None) -> None:
        chunk = NetworkChunk(type_, self.state.run_id, payload)
        if self.sink is not None:
            self.sink(chunk)
        if not type_.endswith("-event-text-delta"):
            record_event(span or self._scope, type_, _event_attributes(payload))

    @property
    def _scope(self) -> AgentScope:
        assert self.scope is not None
        return self.scope

    # -- runs ----------------------------------------------------------------------------------

    async def run_new(self, messages: list[Message]) -> NetworkResult:
        async def begin() -> None:
            state, store = self.state, self.store
            if store is not None:  # a thread of another resource: refused before anything runs
                await store.recall(thread=state.thread_id, resource=state.resource_id)
            processed = await self._processed_input(messages)
            if store is not None:
                await store.remember(
                    thread=state.thread_id, resource=state.resource_id, messages=processed
                )

        return await self._drive(begin)

    async def _processed_input(self, messages: list[Message]) -> list[Message]:
        """The incoming messages after the network agent's input processors, in order (as
        its own calls run them, `AgentCall._process_input`): what the task, the memory, the
        router and the trace see. A processor's ``ctx.abort`` propagates (`TripWire`); a
        processor that raises is a `ProcessorError` naming it."""
        from spanflow.agents._loop import _processor_error

        agent, state = self.agent, self.state
        for processor in agent.input_processors:
            hook = getattr(processor, "process_input", None)
            if hook is None:
                continue
            context = ProcessorContext(processor.name, agent.id, state.run_id, self.request_context)
            try:
                messages = list(await hook(messages, context))
            except Exception as exc:
                raise _processor_error(processor, "process_input", exc) from exc
        if agent.input_processors:
            state.task = _task_text(messages)
            set_input_messages(self._scope, [UserMessage(state.task)])
        return messages

    async def run_resumed(
        self,
        workflow: Workflow,
        workflow_run_id: str,
        resume_data: Any,
        step: str | None,
        label: str | None,
    ) -> NetworkResult:
        async def begin() -> None:
            last = self.state.last
            self._iterating = True
            run = await workflow.create_run(run_id=workflow_run_id)
            out = run.resume_stream(
                resume_data,
                step=step,
                label=label,
                request_context=self.request_context.to_dict(),
            )
            outcome = await self._follow_workflow(workflow, run.run_id, out, last, resumed=True)
            await self._after_primitive(self.state.iteration, last, outcome)
            if await self._check(self.state.iteration, last, outcome):
                return
            self.state.iteration += 1

        return await self._drive(begin)

    async def _drive(self, begin: Any) -> NetworkResult:
        """Run `begin` then the loop; however it ends, the result and the span say so: a
        `TripWire` ends it ``tripwire``, any other error ``failed`` (`_crash`), never a
        stream that just raises under a span that says success."""
        scope = self._scope
        token = scope.enter()
        status = "success"
        try:
            await begin()
            if not self.ended:
                await self._iterate()
        except _Stop:
            pass
        except asyncio.CancelledError:
            status = "aborted"
            raise
        except TripWire as trip:
            self._trip(trip.info)
        except Exception as exc:
            self._crash(exc)
        finally:
            self._end_span(status)
            scope.exit(token)
        return self.result

    def _crash(self, error: Exception) -> None:
        """Something raised (a store, a processor, bad input found late): the network failed
        with it. Its stream ends with ``network-execution-event-finish`` (not complete, the
        error as the reason) and then an ``error`` chunk, ``{error: {name, message}}``, as an
        agent stream's failure ends (the stream itself does not raise)."""
        result = self.result
        result.status = "failed"
        result.error = error
        result.iterations = self.state.iteration + (1 if self._iterating else 0)
        result.completion_reason = str(error)
        self._closing_chunks(max(result.iterations - 1, 0))

    def _trip(self, info: TripwireInfo) -> None:
        """An input processor stopped the network (``ctx.abort``): status ``tripwire``, on
        purpose, not an error; the stream ends with ``network-execution-event-finish`` and a
        ``tripwire`` chunk (Mastra's ``{reason, retry, metadata?, processorId?}``)."""
        result = self.result
        result.status = "tripwire"
        result.tripwire = info
        result.iterations = self.state.iteration + (1 if self._iterating else 0)
        result.completion_reason = f"Stopped by processor {info.processor!r}: {info.reason}"
        self.ended = True
        iteration = max(result.iterations - 1, 0)
        self.emit("network-execution-event-finish", self._finish_payload(iteration, False, False))
        self.emit("tripwire", info.to_dict())

    def _closing_chunks(self, iteration: int) -> None:
        """The last chunks of a failed network: the finish, then the ``error``."""
        self.ended = True
        self.emit("network-execution-event-finish", self._finish_payload(iteration, False, False))
        assert self.result.error is not None
        self.emit("error", {"error": error_summary(self.result.error)})

    def _end_span(self, status: str) -> None:
        result, state = self.result, self.state
        result.usage = state.usage
        set_span_attributes(
            self._scope,
            {
                "spanflow.network.iterations": result.iterations,
                "spanflow.network.status": result.status,
            },
        )
        ended: AgentScopeStatus = "success"
        if status == "aborted":
            ended = "aborted"
        elif result.error is not None:
            ended = "failed"
        elif result.status == "tripwire":
            ended = "tripwire"
        trip = result.tripwire
        self._scope.end(
            AgentEnd(
                ended,
                text=result.result,
                finish_reason=result.status,
                usage=state.usage,
                steps=result.iterations,
                error=result.error,
                tripwire_reason=trip.reason if trip is not None else None,
                tripwire_processor=trip.processor if trip is not None else None,
            )
        )

    async def _iterate(self) -> None:
        state = self.state
        while state.iteration < state.max_steps:
            iteration = state.iteration
            self._iterating = True
            decision, args = await self._route(iteration)
            outcome: _Outcome | None = None
            if decision.primitiveType != "none":
                outcome = await self._execute(iteration, decision, args)
                await self._after_primitive(iteration, args, outcome)
            if await self._check(iteration, args, outcome):
                return
            state.iteration += 1

    # -- routing -------------------------------------------------------------------------------

    async def _route(self, iteration: int) -> tuple[RoutingDecision, dict[str, Any]]:
        """The router's decision, and the primitive's ``args`` (Mastra's: the decision with
        the routing call's ``runId`` and ``conversationContext``)."""
        phase = open_phase(
            self._scope, f"route {iteration}", {"spanflow.network.iteration": iteration}
        )
        try:
            return await self._route_in(phase, iteration)
        finally:
            close_phase(phase)

    async def _route_in(
        self, phase: AgentScope, iteration: int
    ) -> tuple[RoutingDecision, dict[str, Any]]:
        state = self.state
        route_id = str(uuid.uuid4())
        self.emit(
            "routing-agent-start",
            {
                "networkId": self.agent.id,
                "agentId": ROUTING_AGENT_ID,
                "runId": route_id,
                "inputData": self._routing_input(iteration),
            },
            phase,
        )
        history = await self._conversation()
        prompt = _routing_prompt(state.task)
        try:
            messages = [*history, UserMessage(prompt)]
            reply, decision = await self._ask(phase, route_id, messages, RoutingDecision)
        except NetworkError as exc:
            self._fail(iteration, exc)
        set_span_attributes(
            phase,
            {
                "spanflow.network.primitive.id": decision.primitiveId,
                "spanflow.network.primitive.type": decision.primitiveType,
                "spanflow.network.selection_reason": decision.selectionReason,
            },
        )
        args = _decision_payload(state, decision, iteration)
        args["runId"] = route_id
        args["conversationContext"] = self._context_messages(history)
        self.emit("routing-agent-end", {**args, "usage": _call_usage(reply.usage)}, phase)
        return decision, args

    def _routing_input(self, iteration: int) -> dict[str, Any]:
        state, last = self.state, self.state.last
        base: dict[str, Any] = {
            "task": state.task,
            "primitiveId": last.get("primitiveId", ""),
            "primitiveType": last.get("primitiveType", "none"),
            "iteration": iteration,
            "threadResourceId": state.resource_id,
            "threadId": state.thread_id,
            "isOneOff": False,
        }
        if iteration == 0 and not last:
            base["verboseIntrospection"] = True
            return base
        base["isComplete"] = False
        base["result"] = last.get("result", "")
        base["validationPassed"] = False
        base["validationFeedback"] = last.get("feedback", "")
        return base

    async def _ask(
        self, phase: AgentScope, run_id: str, messages: list[Message], schema: type[_Answer]
    ) -> tuple[AgentResult, _Answer]:
        """One structured call of the routing model under `phase` (its chat span goes there,
        not under an agent span of its own); the usage is the network's. A model failure or an
        answer that does not fit `schema` (after the agent's one repair attempt) is a
        `NetworkError`."""
        router = await self._routing_agent()
        call = router._call(
            messages, request_context=self.request_context, run_id=run_id, structured_output=schema
        )
        call.scope = phase
        reply = await call.run()
        self.state.usage.add(reply.usage)
        return reply, _structured(reply, schema)

    async def _routing_agent(self) -> Agent:
        if self._router is None:
            from spanflow.agents._loop import _resolve_instructions
            from spanflow.agents.agent import Agent

            own = await _resolve_instructions(self.agent.instructions, self.request_context)
            self._router = Agent(
                id=ROUTING_AGENT_ID,
                name="Routing Agent",
                model=self.agent.model,
                instructions=_router_instructions(own, self.primitives),
                max_steps=1,
            )
        return self._router

    def _fail(self, iteration: int, error: NetworkError) -> NoReturn:
        """End the network as failed: the router cannot decide (never an endless loop)."""
        result = self.result
        result.status = "failed"
        result.error = error
        result.iterations = iteration + 1
        result.completion_reason = str(error)
        self._closing_chunks(iteration)
        raise _Stop from error

    # -- execution -----------------------------------------------------------------------------

    async def _execute(
        self, iteration: int, decision: RoutingDecision, args: dict[str, Any]
    ) -> _Outcome:
        kind, pid = decision.primitiveType, decision.primitiveId
        try:
            if kind == "agent":
                return await self._run_agent(self._lookup("agent", pid), args)
            if kind == "workflow":
                return await self._run_workflow(self._lookup("workflow", pid), args)
            return await self._run_tool(pid, self._lookup("tool", pid), args)
        except _PrimitiveMissing as exc:
            return _Outcome(f"Error: {exc}", failed=True)

    def _lookup(self, kind: str, pid: str) -> Any:
        tables: dict[str, Mapping[str, Any]] = {
            "agent": self.primitives.agents,
            "workflow": self.primitives.workflows,
            "tool": self.primitives.tools,
        }
        table = tables[kind]
        if pid not in table:
            known = ", ".join(sorted(table)) or "none"
            raise _PrimitiveMissing(
                f"there is no {kind} {pid!r} in this network ({kind}s: {known})"
            )
        return table[pid]

    async def _run_agent(self, sub: Agent, args: dict[str, Any]) -> _Outcome:
        sub_run = str(uuid.uuid4())
        self.emit("agent-execution-start", {"agentId": sub.id, "args": args, "runId": sub_run})
        out = sub.stream(args["prompt"], request_context=self.request_context, run_id=sub_run)
        async for chunk in out:
            self.emit(f"agent-execution-event-{chunk.type}", chunk.to_dict())
        reply = await out.result
        self.state.usage.add(reply.usage)
        failed = reply.status != "success"
        text = (
            reply.text if not failed else f"Error: agent {sub.id!r} {reply.status}: {reply.error}"
        )
        self.emit(
            "agent-execution-end",
            {
                "task": self.state.task,
                "agentId": sub.id,
                "result": text,
                "isComplete": False,
                "iteration": args["iteration"],
                "runId": sub_run,
                "usage": _call_usage(reply.usage),
            },
        )
        return _Outcome(text, failed=failed)

    async def _run_workflow(self, workflow: Workflow, args: dict[str, Any]) -> _Outcome:
        try:
            input_data = _parse_json(args["prompt"], f"the input of workflow {workflow.id!r}")
        except _PrimitiveMissing as exc:
            return _Outcome(f"Error: {exc}", failed=True)
        run = await workflow.create_run(resource_id=self.state.resource_id)
        self.emit(
            "workflow-execution-start",
            {"workflowId": workflow.id, "args": args, "runId": run.run_id},
        )
        self.state.last = _last(args, "")
        try:
            out = run.stream(input_data, request_context=self.request_context.to_dict())
        except Exception as exc:  # refused before it started: bad input
            await run.discard()
            return self._workflow_refused(workflow, run.run_id, args, exc)
        return await self._follow_workflow(workflow, run.run_id, out, args)

    def _workflow_refused(
        self, workflow: Workflow, run_id: str, args: dict[str, Any], error: Exception
    ) -> _Outcome:
        text = f"Error: workflow {workflow.id!r} refused its input: {error}"
        self.emit(
            "workflow-execution-end", self._workflow_end(workflow, run_id, args, text, Usage())
        )
        return _Outcome(text, failed=True)

    async def _follow_workflow(
        self,
        workflow: Workflow,
        run_id: str,
        out: WorkflowStream,
        args: dict[str, Any],
        *,
        resumed: bool = False,
    ) -> _Outcome:
        """Re-emit the run's events and report how it ended. A suspended run suspends the
        network, its state kept in the workflow's store; a resumed run that ended no longer
        needs that state, which is deleted."""
        async for event in out:
            self.emit(f"workflow-execution-event-{event.type}", event.to_dict())
        result: WorkflowResult = await out.result
        # A resumed run's usage counts its first part too: what a resume adds to is the
        # network's usage without this run.
        before = Usage.from_dict(self.state.usage.to_dict())
        self.state.usage.add(result.usage)
        wire = result.to_dict()
        # Mastra's result names the network run (the workflow run is the payload's runId).
        wire.update(
            {"runId": self.state.run_id, "traceId": result.trace_id, "spanId": result.span_id}
        )
        if result.status == "suspended":
            await self._save_state(workflow, run_id, before)
            return self._suspend(workflow, run_id, args, result, wire)
        if resumed:
            await _thread_store(workflow).delete_thread(
                network_thread_id(run_id), resource_id=NETWORK_RESOURCE_ID
            )
        self.emit(
            "workflow-execution-end", self._workflow_end(workflow, run_id, args, wire, result.usage)
        )
        return _Outcome(wire, failed=result.status != "success")

    def _workflow_end(
        self, workflow: Workflow, run_id: str, args: dict[str, Any], result: Any, usage: Usage
    ) -> dict[str, Any]:
        return {
            "task": self.state.task,
            "primitiveId": args["primitiveId"],
            "primitiveType": "workflow",
            "result": result,
            "isComplete": False,
            "iteration": args["iteration"],
            "name": workflow.id,
            "runId": run_id,
            "usage": usage.to_dict(),
        }

    async def _save_state(self, workflow: Workflow, run_id: str, usage: Usage) -> None:
        """Keep the network's state beside the suspended run, in the workflow's store, for
        `network_resume` (from any process on that store)."""
        data = self.state.to_dict()
        data["usage"] = usage.to_dict()
        await _thread_store(workflow).save_thread(
            StoredThread(
                thread_id=network_thread_id(run_id),
                resource_id=NETWORK_RESOURCE_ID,
                title=f"network {self.state.run_id} of agent {self.agent.id}",
                metadata={"network": data},
            )
        )

    def _suspend(
        self,
        workflow: Workflow,
        run_id: str,
        args: dict[str, Any],
        result: WorkflowResult,
        wire: dict[str, Any],
    ) -> _Outcome:
        """The workflow suspended: so does the network (its state is kept, `_save_state`)."""
        payload = wire.get("suspendPayload", {})
        suspended = {
            "workflowId": workflow.id,
            "runId": run_id,
            "suspendPayload": payload,
            "suspended": wire.get("suspended", []),
        }
        self.emit(
            "workflow-execution-suspended",
            {
                "args": args,
                "workflowId": workflow.id,
                "suspendPayload": payload,
                "resumeSchema": None,
                "name": workflow.id,
                "runId": run_id,
                "usage": result.usage.to_dict(),
                "selectionReason": args.get("selectionReason", ""),
                "toolName": args["primitiveId"],
                "toolCallId": args["primitiveId"],
            },
        )
        self.result.status = "suspended"
        self.result.suspended = suspended
        self.result.iterations = args["iteration"] + 1
        raise _Stop

    async def _run_tool(self, name: str, tool: Tool, args: dict[str, Any]) -> _Outcome:
        call_id = str(uuid.uuid4())
        try:
            arguments = _parse_json(args["prompt"], f"the arguments of tool {name!r}")
        except _PrimitiveMissing as exc:
            return _Outcome(f"Error: {exc}", failed=True)
        start = {**args, "args": arguments, "toolName": name, "toolCallId": call_id}
        self.emit("tool-execution-start", {"args": start, "runId": self.state.run_id})
        scope = self._scope.tool(ToolStart(name, call_id, arguments, tool.description))
        outcome = await self._call_tool(scope, name, tool, call_id, arguments)
        self.emit(
            "tool-execution-end",
            {
                "task": self.state.task,
                "primitiveId": args["primitiveId"],
                "primitiveType": "tool",
                "result": to_wire(outcome.result),
                "isComplete": False,
                "iteration": args["iteration"],
                "toolCallId": call_id,
                "toolName": name,
            },
        )
        return outcome

    async def _call_tool(
        self, scope: Any, name: str, tool: Tool, call_id: str, arguments: Any
    ) -> _Outcome:
        token = scope.enter()
        try:
            value = tool.validate_input(arguments)
            context = ToolContext(
                tool_call_id=call_id,
                tool_name=name,
                agent_id=self.agent.id,
                run_id=self.state.run_id,
                request_context=self.request_context,
                messages=(),
            )
            output = await tool.call(value, context)
        except asyncio.CancelledError:
            scope.exit(token)
            scope.end("aborted")
            raise
        except Exception as exc:
            scope.exit(token)
            scope.end("failed", error=exc)
            return _Outcome({"error": error_summary(exc)}, failed=True)
        scope.exit(token)
        scope.end("success", result=output)
        return _Outcome(output)

    async def _after_primitive(
        self, iteration: int, args: dict[str, Any], outcome: _Outcome
    ) -> None:
        """Tell the router what happened: in the memory thread, or the in-process history."""
        state = self.state
        note = {
            "isNetwork": True,
            "primitiveType": args["primitiveType"],
            "primitiveId": args["primitiveId"],
            "selectionReason": args.get("selectionReason", ""),
            "input": args.get("prompt", ""),
            "finalResult": to_wire(outcome.result),
            "failed": outcome.failed,
            "iteration": iteration,
        }
        text = json.dumps(note, ensure_ascii=False, default=str)
        state.last = _last(args, outcome.text())
        if self.store is not None:
            await self.store.remember(
                thread=state.thread_id,
                resource=state.resource_id,
                messages=[AssistantMessage(text)],
            )
        else:
            state.history.append(text)

    # -- the completion check ------------------------------------------------------------------

    async def _check(self, iteration: int, args: dict[str, Any], outcome: _Outcome | None) -> bool:
        """Ask whether the task is done; ends the network (True) when it is, or at max_steps."""
        phase = open_phase(
            self._scope, f"check {iteration}", {"spanflow.network.iteration": iteration}
        )
        try:
            return await self._check_in(phase, iteration, args, outcome)
        finally:
            close_phase(phase)

    async def _check_in(
        self, phase: AgentScope, iteration: int, args: dict[str, Any], outcome: _Outcome | None
    ) -> bool:
        state = self.state
        started = time.monotonic()
        self.emit(
            "network-validation-start",
            {"runId": state.run_id, "iteration": iteration, "checksCount": 1},
            phase,
        )
        check_id = str(uuid.uuid4())
        history = await self._conversation()
        prompt = _completion_prompt(state.task, args, outcome)
        try:
            messages = [*history, UserMessage(prompt)]
            _, check = await self._ask(phase, check_id, messages, CompletionCheck)
        except NetworkError as exc:
            self._fail(iteration, exc)
        self.emit("routing-agent-text-start", {"runId": check_id}, phase)
        if check.isComplete and check.finalResult:
            self.emit("routing-agent-text-delta", {"text": check.finalResult}, phase)
        last_step = iteration + 1 >= state.max_steps
        duration = round((time.monotonic() - started) * 1000)
        set_span_attributes(
            phase,
            {
                "spanflow.network.complete": check.isComplete,
                "spanflow.network.completion_reason": check.completionReason,
            },
        )
        self.emit(
            "network-validation-end",
            _validation_end(state, iteration, check, duration, last_step),
            phase,
        )
        state.last["feedback"] = _feedback(check, duration)
        if check.isComplete or last_step:
            self._finish(iteration, check)
            return True
        return False

    def _finish(self, iteration: int, check: CompletionCheck) -> None:
        self.ended = True
        result, state = self.result, self.state
        result.iterations = iteration + 1
        if check.isComplete:
            result.status = "success"
            result.result = check.finalResult
            result.completion_reason = check.completionReason
        else:
            result.status = "incomplete"
            result.completion_reason = f"Max iterations reached: {state.max_steps}"
        self.emit(
            "network-execution-event-finish",
            self._finish_payload(iteration, check.isComplete, check.isComplete),
        )

    def _finish_payload(self, iteration: int, complete: bool, passed: bool) -> dict[str, Any]:
        state, last = self.state, self.state.last
        return {
            "task": state.task,
            "isComplete": complete,
            "completionReason": self.result.completion_reason,
            "result": self.result.result,
            "primitiveId": last.get("primitiveId", ""),
            "primitiveType": last.get("primitiveType", "none"),
            "iteration": iteration,
            "isOneOff": False,
            "threadId": state.thread_id,
            "threadResourceId": state.resource_id,
            "validationPassed": passed,
            "usage": state.usage.to_dict(),
        }

    # -- what the router sees ------------------------------------------------------------------

    async def _conversation(self) -> list[Message]:
        state = self.state
        if self.store is not None:
            recalled = await self.store.recall(thread=state.thread_id, resource=state.resource_id)
            return list(recalled)
        return [UserMessage(state.task), *(AssistantMessage(text) for text in state.history)]

    def _context_messages(self, history: Sequence[Message]) -> list[dict[str, Any]]:
        """``conversationContext``: the user messages, in Mastra's stored-message shape."""
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return [
            {
                "id": str(uuid.uuid4()),
                "type": "text",
                "createdAt": now,
                "threadId": self.state.thread_id,
                "resourceId": self.state.resource_id,
                "content": {"parts": [{"type": "text", "text": m.content}], "format": 2},
                "role": m.role,
            }
            for m in history
            if isinstance(m, UserMessage)
        ]


class _PrimitiveMissing(Exception):
    """Internal: the router named something the network cannot run (a failed result)."""


# -- helpers -------------------------------------------------------------------------------


def _structured(reply: AgentResult, schema: type[_Answer]) -> _Answer:
    """The routing model's structured answer (the agent's ``structured_output=`` validated it
    against `schema`); the one place that reads it."""
    what = "routing decision" if schema is RoutingDecision else "completion check"
    if reply.status != "success":
        raise NetworkError(f"the routing model's {what} failed: {reply.error}") from reply.error
    answer = reply.object
    if not isinstance(answer, schema):
        raise NetworkError(
            f"the routing model's {what} is not a {schema.__name__}: {type(answer).__name__}"
        )
    return answer


def _call_usage(usage: Usage) -> dict[str, Any]:
    """The usage of one model or agent call as Mastra's chunks carry it (``routing-agent-end``,
    ``agent-execution-end``): the three counts and the provider's ``raw`` usage, which
    spanflow's models report as the same three counts. Run totals (a workflow's, the
    network's) carry every key of `Usage.to_dict`, as Mastra's do."""
    counts = {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
    }
    return {**counts, "raw": dict(counts)}


def _last(args: Mapping[str, Any], result: str) -> dict[str, Any]:
    """The last decision as the state keeps it: the routing ``args`` with the primitive's
    result, without the ``conversationContext`` (the memory thread, or the task, has it)."""
    last = {key: value for key, value in args.items() if key != "conversationContext"}
    last["result"] = result
    return last


def _thread_store(workflow: Workflow) -> ThreadStore:
    """The workflow's store, as the keeper of a suspended network's state."""
    storage = workflow.storage
    if not isinstance(storage, ThreadStore):
        raise NetworkError(
            f"the store of workflow {workflow.id!r} ({type(storage).__name__}) keeps no "
            "threads, so a network cannot keep its state there to be resumed"
        )
    return storage


async def _load_state(workflow: Workflow, workflow_run_id: str) -> _State:
    """The state of the network suspended at `workflow_run_id` (`_NetworkLoop._save_state`)."""
    thread = await _thread_store(workflow).get_thread(
        network_thread_id(workflow_run_id), resource_id=NETWORK_RESOURCE_ID
    )
    data = thread.metadata.get("network") if thread is not None else None
    if not isinstance(data, Mapping):
        raise NetworkError(
            f"workflow run {workflow_run_id!r} was not started by a network (no network state "
            f"is stored for it in the store of workflow {workflow.id!r}); resume it as a "
            "workflow run instead"
        )
    return _State.from_dict(data)


def _parse_json(prompt: str, what: str) -> Any:
    try:
        return json.loads(prompt)
    except ValueError as exc:
        raise _PrimitiveMissing(f"{what} must be JSON, got {prompt[:200]!r} ({exc})") from exc


def _decision_payload(state: _State, decision: RoutingDecision, iteration: int) -> dict[str, Any]:
    return {
        "task": state.task,
        "result": "",
        "primitiveId": decision.primitiveId,
        "primitiveType": decision.primitiveType,
        "prompt": decision.prompt,
        "isComplete": False,
        "selectionReason": decision.selectionReason,
        "iteration": iteration,
    }


def _validation_end(
    state: _State, iteration: int, check: CompletionCheck, duration: int, last_step: bool
) -> dict[str, Any]:
    return {
        "runId": state.run_id,
        "iteration": iteration,
        "passed": check.isComplete,
        "results": [
            {
                "score": 1 if check.isComplete else 0,
                "passed": check.isComplete,
                "reason": check.completionReason,
                "finalResult": check.finalResult,
                "scorerId": "default-completion",
                "scorerName": "Default LLM Completion",
                "duration": duration,
            }
        ],
        "duration": duration,
        "timedOut": False,
        "reason": check.completionReason,
        "maxIterationReached": last_step and not check.isComplete,
        "suppressFeedback": False,
    }


def _feedback(check: CompletionCheck, duration: int) -> str:
    mark = "COMPLETE" if check.isComplete else "NOT COMPLETE"
    return (
        f"#### Completion Check Results\n\nOverall: {mark}\nDuration: {duration}ms\n\n"
        f"Reason: {check.completionReason}"
    )


def _event_attributes(payload: Mapping[str, Any]) -> dict[str, Any]:
    keys = {
        "iteration": "spanflow.network.iteration",
        "primitiveId": "spanflow.network.primitive.id",
        "primitiveType": "spanflow.network.primitive.type",
        "runId": "spanflow.network.run_id",
        "agentId": "gen_ai.agent.id",
        "workflowId": "spanflow.workflow.id",
        "toolName": "gen_ai.tool.name",
        "isComplete": "spanflow.network.complete",
        "passed": "spanflow.network.complete",
        "type": "spanflow.chunk.type",
    }
    return {attr: payload[key] for key, attr in keys.items() if key in payload}


def _table(value: Any) -> dict[str, Any]:
    """A network's agents, workflows or tools by the name the router uses: a mapping as it
    is, a list keyed by each one's id."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return {item.id: item for item in value}


def _resumed_memory(
    agent: Agent, state: _State, memory: Mapping[str, Any] | None
) -> AgentMemory | None:
    """The memory a resumed network goes on with: the agent's, for the thread it kept."""
    scope = agent._memory_scope(memory, None, None)
    if scope is not None and (scope.thread, scope.resource) != (state.thread_id, state.resource_id):
        raise InvalidInputError(
            f"memory {{'thread': {scope.thread!r}, 'resource': {scope.resource!r}}} is not "
            f"the thread of network {state.run_id!r} ({state.thread_id!r} of "
            f"{state.resource_id!r}); a network resumes on its own thread"
        )
    if not state.uses_memory:
        return None
    if agent.memory is None:
        raise NetworkError(
            f"network {state.run_id!r} kept memory thread {state.thread_id!r}, but agent "
            f"{agent.id!r} has no memory: resume it with the agent's Memory"
        )
    return agent.memory


def _task_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if isinstance(message, UserMessage):
            return message.content
    raise InvalidInputError("a network needs a user message: the task")


def _merge_parent(
    options: TracingOptions | None, parent: TracingOptions | None
) -> TracingOptions | None:
    if parent is None:
        return options
    if options is None:
        return parent
    import dataclasses

    return dataclasses.replace(
        options, trace_id=parent.trace_id, parent_span_id=parent.parent_span_id, traceparent=None
    )


async def _find_suspended(
    agent: Agent, run_id: str, workflow_id: str | None
) -> tuple[Workflow, dict[str, Any]]:
    workflows = _table(getattr(agent, "workflows", None))
    candidates = [w for w in workflows.values() if workflow_id in (None, w.id)]
    for workflow in candidates:
        stored = await workflow.get_run(run_id)
        if stored is not None and stored.workflow_id == workflow.id:
            if stored.status != "suspended":
                raise NetworkError(f"workflow run {run_id!r} is {stored.status}, not suspended")
            context = stored.snapshot.get("requestContext") or {}
            return workflow, dict(context)
    raise NetworkError(
        f"no run {run_id!r} of the network's workflows ({', '.join(sorted(workflows)) or 'none'})"
    )


def _router_instructions(own: str | None, primitives: _Primitives) -> str:
    def listing(items: Mapping[str, Any], schema: bool) -> Iterator[str]:
        for name, item in items.items():
            description = getattr(item, "description", None) or ""
            line = f" - **{name}**: {description}"
            if schema:
                line += f", input schema: {json.dumps(_input_schema(item))}"
            yield line

    return "\n".join(
        [
            "You are a router in a network of specialized AI agents, workflows and tools.",
            "Your job is to decide which primitive should handle the next step of the task.",
            "",
            "## System Instructions",
            own or "",
            "## Available Agents in Network",
            *listing(primitives.agents, False),
            "## Available Workflows in Network (the prompt is their JSON input)",
            *listing(primitives.workflows, True),
            "## Available Tools in Network (the prompt is their JSON arguments)",
            *listing(primitives.tools, True),
            "Messages whose text is a JSON object with isNetwork true are earlier results.",
        ]
    )


def _input_schema(item: Any) -> Any:
    parameters = getattr(item, "parameters", None)
    if isinstance(parameters, dict):
        return parameters
    with contextlib.suppress(Exception):
        schema = schema_of(getattr(item, "input_schema", None))
        if schema is not None:
            return schema.json_schema()
    return {}


def _routing_prompt(task: str) -> str:
    return (
        f"Original task: {task}\n\nDecide the next step. Answer with this JSON only: "
        '{"primitiveId": string, "primitiveType": "agent" | "workflow" | "tool" | "none", '
        '"prompt": string, "selectionReason": string}. Use "none" when the task is done.'
    )


def _completion_prompt(task: str, args: dict[str, Any], outcome: _Outcome | None) -> str:
    done = (
        f"The {args['primitiveType']} {args['primitiveId']} has contributed to the task. "
        f"Its result: {outcome.text()}\n\n"
        if outcome is not None
        else ""
    )
    return (
        f"{done}Original task: {task}\n\nIs the task complete? Answer with this JSON only: "
        '{"isComplete": boolean, "completionReason": string, "finalResult": string}'
    )
