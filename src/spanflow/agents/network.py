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

**Modules.** This module is the network's API and its loop; the machinery is private:
`spanflow.agents._network_state` (the saved state and its thread record),
`spanflow.agents._network_prompts`
(the router's and the check's prompts, their answer models, the routing chunks' payloads)
and `spanflow.agents._network_primitives` (running a sub-agent, workflow or tool and
re-emitting its chunks).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from spanflow._buffer import ReplayBuffer
from spanflow._schema import to_wire
from spanflow.agents._loop import processor_error, resolve_instructions
from spanflow.agents._network_primitives import (
    PrimitiveRunner,
    Primitives,
    call_usage,
    last_decision,
    table,
)
from spanflow.agents._network_prompts import (
    Answer,
    CompletionCheck,
    RoutingDecision,
    completion_prompt,
    context_messages,
    decision_payload,
    feedback,
    router_instructions,
    routing_input,
    routing_prompt,
    structured,
    validation_end,
)
from spanflow.agents._network_state import (
    NETWORK_RESOURCE_ID,
    NetworkState,
    Outcome,
    load_state,
    network_thread_id,
)
from spanflow.agents.chunks import error_summary
from spanflow.agents.errors import NetworkError
from spanflow.agents.messages import (
    AssistantMessage,
    Message,
    MessagesInput,
    UserMessage,
    coerce_messages,
)
from spanflow.agents.processors import ProcessorContext, TripWire, TripwireInfo
from spanflow.agents.results import AgentResult
from spanflow.context import RequestContext
from spanflow.errors import InvalidInputError
from spanflow.tracing.genai import (
    AgentEnd,
    AgentScope,
    AgentScopeStatus,
    AgentStart,
)
from spanflow.tracing.network import (
    close_phase,
    open_phase,
    record_event,
    set_input_messages,
    set_span_attributes,
)
from spanflow.tracing.options import TracingOptions, options_to_dict
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.agents._loop import AgentMemory
    from spanflow.agents.agent import Agent
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

ROUTING_AGENT_ID = "routing-agent"
NetworkStatus = Literal["success", "incomplete", "suspended", "failed", "tripwire"]
"""``success``: the check said complete; ``incomplete``: ``max_steps`` reached first;
``suspended``: a workflow primitive suspended (resume it); ``failed``: the router failed, or
anything else raised (``result.error``); ``tripwire``: an input processor of the network agent
stopped it (``result.tripwire``) before anything ran."""


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
    state = NetworkState(
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
    state = await load_state(workflow, workflow_run_id)
    store = _resumed_memory(agent, state, memory)
    context = dict(stored_context)
    if request_context is not None:
        context.update(RequestContext.coerce(request_context).to_dict())
    loop = _NetworkLoop(agent, state, store, RequestContext.coerce(context))
    work = loop.run_resumed(workflow, workflow_run_id, resume_data, step, label)
    return NetworkStream(loop, work, state.resumed_tracing_options())


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


class _Stop(Exception):
    """Internal: the network ends here (suspended, or the router failed)."""


# -- the loop ------------------------------------------------------------------------------


class _NetworkLoop:
    """One network execution (a start, or a resume): emits chunks, drives the spans."""

    def __init__(
        self,
        agent: Agent,
        state: NetworkState,
        store: AgentMemory | None,
        request_context: RequestContext,
    ) -> None:
        self.agent = agent
        self.state = state
        self.store = store
        self.request_context = request_context
        self.primitives = Primitives.of(agent)
        self.sink: Any = None
        self.scope: AgentScope | None = None
        self._runner: PrimitiveRunner | None = None
        self.result = NetworkResult("incomplete", state.run_id)
        self.ended = False
        self._iterating = False
        """Whether an iteration has begun (a failure then counts it)."""
        self._router: Agent | None = None

    # -- spans and chunks ----------------------------------------------------------------------

    def open(self, tracing_options: TracingOptions | None) -> AgentScope:
        """Open the network span in the caller's context (its ids are known at once)."""
        agent = self.agent
        self.scope = agent._call_tracing().start_agent(
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
        self._runner = PrimitiveRunner(
            agent.id, self.state, self.request_context, self.primitives, self.emit, self.scope
        )
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

    @property
    def _primitive_runner(self) -> PrimitiveRunner:
        assert self._runner is not None
        return self._runner

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
        agent, state = self.agent, self.state
        for processor in agent.input_processors:
            hook = getattr(processor, "process_input", None)
            if hook is None:
                continue
            context = ProcessorContext(processor.name, agent.id, state.run_id, self.request_context)
            try:
                messages = list(await hook(messages, context))
            except Exception as exc:
                raise processor_error(processor, "process_input", exc) from exc
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
            runner = self._primitive_runner
            outcome = await runner.follow_workflow(workflow, run.run_id, out, last, resumed=True)
            self._suspend_if_suspended(last, outcome)
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
            outcome: Outcome | None = None
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
                "inputData": routing_input(state, iteration),
            },
            phase,
        )
        history = await self._conversation()
        prompt = routing_prompt(state.task)
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
        args = decision_payload(state, decision, iteration)
        args["runId"] = route_id
        args["conversationContext"] = context_messages(state, history)
        self.emit("routing-agent-end", {**args, "usage": call_usage(reply.usage)}, phase)
        return decision, args

    async def _ask(
        self, phase: AgentScope, run_id: str, messages: list[Message], schema: type[Answer]
    ) -> tuple[AgentResult, Answer]:
        """One structured call of the routing model under `phase` (its chat span goes there,
        not under an agent span of its own); the usage is the network's. A model failure or an
        answer that does not fit `schema` (after the agent's one repair attempt) is a
        `NetworkError`."""
        router = await self._routing_agent()
        call = router._call(
            messages,
            request_context=self.request_context,
            run_id=run_id,
            structured_output=schema,
            scope=phase,
        )
        reply = await call.run()
        self.state.usage.add(reply.usage)
        return reply, structured(reply, schema)

    async def _routing_agent(self) -> Agent:
        if self._router is None:
            from spanflow.agents.agent import Agent

            own = await resolve_instructions(self.agent.instructions, self.request_context)
            self._router = Agent(
                id=ROUTING_AGENT_ID,
                name="Routing Agent",
                model=self.agent.model,
                instructions=router_instructions(own, self.primitives),
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
    ) -> Outcome:
        """Run the chosen primitive (`PrimitiveRunner`); a workflow that suspended suspends
        the network."""
        runner = self._primitive_runner
        outcome = await runner.execute(decision.primitiveType, decision.primitiveId, args)
        self._suspend_if_suspended(args, outcome)
        return outcome

    def _suspend_if_suspended(self, args: dict[str, Any], outcome: Outcome) -> None:
        """A workflow primitive suspended (its state is kept beside the run): so does the
        network, here."""
        if outcome.suspended is None:
            return
        self.result.status = "suspended"
        self.result.suspended = outcome.suspended
        self.result.iterations = args["iteration"] + 1
        raise _Stop

    async def _after_primitive(
        self, iteration: int, args: dict[str, Any], outcome: Outcome
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
        state.last = last_decision(args, outcome.text())
        if self.store is not None:
            await self.store.remember(
                thread=state.thread_id,
                resource=state.resource_id,
                messages=[AssistantMessage(text)],
            )
        else:
            state.history.append(text)

    # -- the completion check ------------------------------------------------------------------

    async def _check(self, iteration: int, args: dict[str, Any], outcome: Outcome | None) -> bool:
        """Ask whether the task is done; ends the network (True) when it is, or at max_steps."""
        phase = open_phase(
            self._scope, f"check {iteration}", {"spanflow.network.iteration": iteration}
        )
        try:
            return await self._check_in(phase, iteration, args, outcome)
        finally:
            close_phase(phase)

    async def _check_in(
        self, phase: AgentScope, iteration: int, args: dict[str, Any], outcome: Outcome | None
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
        prompt = completion_prompt(state.task, args, outcome)
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
            validation_end(state, iteration, check, duration, last_step),
            phase,
        )
        state.last["feedback"] = feedback(check, duration)
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


# -- helpers -------------------------------------------------------------------------------


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


def _resumed_memory(
    agent: Agent, state: NetworkState, memory: Mapping[str, Any] | None
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


async def _find_suspended(
    agent: Agent, run_id: str, workflow_id: str | None
) -> tuple[Workflow, dict[str, Any]]:
    workflows = table(getattr(agent, "workflows", None))
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
