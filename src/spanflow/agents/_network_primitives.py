"""Running the primitive a network's router chose, and re-emitting what it emits.

A sub-agent streams the prompt (its chunks re-emitted as ``agent-execution-event-<type>``), a
workflow runs with the prompt parsed as its JSON input (its events re-emitted as
``workflow-execution-event-<type>``), a tool executes with the prompt parsed as its arguments
under an ``execute_tool`` span of the network. Whatever fails (an unknown id, bad JSON, an
error, a failed run) is a failed `Outcome`, never an exception: the router is told and the
network goes on. A workflow that suspends gives an `Outcome` whose ``suspended`` says so, its
network's state saved beside the run (`spanflow.agents._network_state`); the loop suspends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spanflow._schema import to_wire
from spanflow.agents._network_state import NetworkState, Outcome, delete_state, save_state
from spanflow.agents.chunks import error_summary
from spanflow.agents.tools import Tool, ToolContext, call_in_scope
from spanflow.context import RequestContext
from spanflow.tracing.genai import AgentScope, ToolScope, ToolStart
from spanflow.usage import Usage

if TYPE_CHECKING:
    from spanflow.agents.agent import Agent
    from spanflow.workflows.results import WorkflowResult
    from spanflow.workflows.stream import WorkflowStream
    from spanflow.workflows.workflow import Workflow

__all__ = [
    "Emit",
    "PrimitiveRunner",
    "Primitives",
    "call_usage",
    "last_decision",
    "table",
]

Emit = Callable[[str, dict[str, Any]], None]
"""How the runner emits a network chunk (type, payload) on the network span."""


class _PrimitiveMissing(Exception):
    """The router named something the network cannot run (a failed result)."""


def table(value: Any) -> dict[str, Any]:
    """A network's agents, workflows or tools by the name the router uses: a mapping as it
    is, a list keyed by each one's id."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return {item.id: item for item in value}


@dataclass(slots=True)
class Primitives:
    """What a network can delegate to, by the names the router uses."""

    agents: dict[str, Agent]
    workflows: dict[str, Workflow]
    tools: dict[str, Tool]

    @classmethod
    def of(cls, agent: Agent) -> Primitives:
        return cls(
            table(getattr(agent, "agents", None)),
            table(getattr(agent, "workflows", None)),
            table(getattr(agent, "tools", None)),
        )

    def lookup(self, kind: str, pid: str) -> Any:
        tables: dict[str, Mapping[str, Any]] = {
            "agent": self.agents,
            "workflow": self.workflows,
            "tool": self.tools,
        }
        found = tables[kind]
        if pid not in found:
            known = ", ".join(sorted(found)) or "none"
            raise _PrimitiveMissing(
                f"there is no {kind} {pid!r} in this network ({kind}s: {known})"
            )
        return found[pid]


def call_usage(usage: Usage) -> dict[str, Any]:
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


def last_decision(args: Mapping[str, Any], result: str) -> dict[str, Any]:
    """The last decision as the state keeps it: the routing ``args`` with the primitive's
    result, without the ``conversationContext`` (the memory thread, or the task, has it)."""
    last = {key: value for key, value in args.items() if key != "conversationContext"}
    last["result"] = result
    return last


def _parse_json(prompt: str, what: str) -> Any:
    try:
        return json.loads(prompt)
    except ValueError as exc:
        raise _PrimitiveMissing(f"{what} must be JSON, got {prompt[:200]!r} ({exc})") from exc


@dataclass(slots=True, eq=False)
class PrimitiveRunner:
    """Runs the primitives of one network execution (a start, or a resume)."""

    agent_id: str
    """The network agent (the tools' context, the saved state's title)."""
    state: NetworkState
    request_context: RequestContext
    primitives: Primitives
    emit: Emit
    scope: AgentScope
    """The network span, parent of a tool primitive's ``execute_tool`` span."""

    async def execute(self, kind: str, pid: str, args: dict[str, Any]) -> Outcome:
        """Run primitive `pid` of `kind` (``agent``, ``workflow`` or ``tool``) on ``args``."""
        try:
            if kind == "agent":
                return await self._run_agent(self.primitives.lookup("agent", pid), args)
            if kind == "workflow":
                return await self._run_workflow(self.primitives.lookup("workflow", pid), args)
            return await self._run_tool(pid, self.primitives.lookup("tool", pid), args)
        except _PrimitiveMissing as exc:
            return Outcome(f"Error: {exc}", failed=True)

    # -- agents ------------------------------------------------------------------------------

    async def _run_agent(self, sub: Agent, args: dict[str, Any]) -> Outcome:
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
                "usage": call_usage(reply.usage),
            },
        )
        return Outcome(text, failed=failed)

    # -- workflows ---------------------------------------------------------------------------

    async def _run_workflow(self, workflow: Workflow, args: dict[str, Any]) -> Outcome:
        try:
            input_data = _parse_json(args["prompt"], f"the input of workflow {workflow.id!r}")
        except _PrimitiveMissing as exc:
            return Outcome(f"Error: {exc}", failed=True)
        run = await workflow.create_run(resource_id=self.state.resource_id)
        self.emit(
            "workflow-execution-start",
            {"workflowId": workflow.id, "args": args, "runId": run.run_id},
        )
        self.state.last = last_decision(args, "")
        try:
            out = run.stream(input_data, request_context=self.request_context.to_dict())
        except Exception as exc:  # refused before it started: bad input
            await run.discard()
            return self._workflow_refused(workflow, run.run_id, args, exc)
        return await self.follow_workflow(workflow, run.run_id, out, args)

    def _workflow_refused(
        self, workflow: Workflow, run_id: str, args: dict[str, Any], error: Exception
    ) -> Outcome:
        text = f"Error: workflow {workflow.id!r} refused its input: {error}"
        self.emit(
            "workflow-execution-end", self._workflow_end(workflow, run_id, args, text, Usage())
        )
        return Outcome(text, failed=True)

    async def follow_workflow(
        self,
        workflow: Workflow,
        run_id: str,
        out: WorkflowStream,
        args: dict[str, Any],
        *,
        resumed: bool = False,
    ) -> Outcome:
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
            await save_state(workflow, run_id, self.state, before, self.agent_id)
            return self._suspended(workflow, run_id, args, result, wire)
        if resumed:
            await delete_state(workflow, run_id)
        self.emit(
            "workflow-execution-end", self._workflow_end(workflow, run_id, args, wire, result.usage)
        )
        return Outcome(wire, failed=result.status != "success")

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

    def _suspended(
        self,
        workflow: Workflow,
        run_id: str,
        args: dict[str, Any],
        result: WorkflowResult,
        wire: dict[str, Any],
    ) -> Outcome:
        """The workflow suspended (its network's state is saved): the chunk that says so, and
        the outcome that suspends the network."""
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
        return Outcome(wire, suspended=suspended)

    # -- tools -------------------------------------------------------------------------------

    async def _run_tool(self, name: str, tool: Tool, args: dict[str, Any]) -> Outcome:
        call_id = str(uuid.uuid4())
        try:
            arguments = _parse_json(args["prompt"], f"the arguments of tool {name!r}")
        except _PrimitiveMissing as exc:
            return Outcome(f"Error: {exc}", failed=True)
        start = {**args, "args": arguments, "toolName": name, "toolCallId": call_id}
        self.emit("tool-execution-start", {"args": start, "runId": self.state.run_id})
        scope = self.scope.tool(ToolStart(name, call_id, arguments, tool.description))
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
        self, scope: ToolScope, name: str, tool: Tool, call_id: str, arguments: Any
    ) -> Outcome:
        async def invoke() -> Any:
            value = tool.validate_input(arguments)
            context = ToolContext(
                tool_call_id=call_id,
                tool_name=name,
                agent_id=self.agent_id,
                run_id=self.state.run_id,
                request_context=self.request_context,
                messages=(),
            )
            return await tool.call(value, context)

        try:
            output = await call_in_scope(scope, invoke)
        except Exception as exc:
            return Outcome({"error": error_summary(exc)}, failed=True)
        return Outcome(output)
