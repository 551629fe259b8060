"""What a network's routing model is asked, what it answers, and how the chunks report it.

The router's instructions list every primitive (its description and input JSON schema); each
routing call asks for a `RoutingDecision`, each completion check for a `CompletionCheck`
(Mastra's field names), both as the routing agent's structured output. `structured` is the one
place that reads such an answer. The rest builds the payloads of the routing and validation
chunks (``routing-agent-start``, ``routing-agent-end``, ``network-validation-end``) in
Mastra's shape.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pydantic

from spanflow._schema import schema_of
from spanflow.agents._network_state import NetworkState, Outcome
from spanflow.agents.errors import NetworkError
from spanflow.agents.messages import Message, UserMessage
from spanflow.agents.results import AgentResult

if TYPE_CHECKING:
    from spanflow.agents._network_primitives import Primitives

__all__ = [
    "Answer",
    "CompletionCheck",
    "PrimitiveType",
    "RoutingDecision",
    "completion_prompt",
    "context_messages",
    "decision_payload",
    "feedback",
    "router_instructions",
    "routing_input",
    "routing_prompt",
    "structured",
    "validation_end",
]

PrimitiveType = Literal["agent", "workflow", "tool", "none"]


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


Answer = TypeVar("Answer", bound=pydantic.BaseModel)


def structured(reply: AgentResult, schema: type[Answer]) -> Answer:
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


# -- prompts ---------------------------------------------------------------------------------


def router_instructions(own: str | None, primitives: Primitives) -> str:
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


def routing_prompt(task: str) -> str:
    return (
        f"Original task: {task}\n\nDecide the next step. Answer with this JSON only: "
        '{"primitiveId": string, "primitiveType": "agent" | "workflow" | "tool" | "none", '
        '"prompt": string, "selectionReason": string}. Use "none" when the task is done.'
    )


def completion_prompt(task: str, args: dict[str, Any], outcome: Outcome | None) -> str:
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


def feedback(check: CompletionCheck, duration: int) -> str:
    """What the next routing call is told of the last check (``validationFeedback``)."""
    mark = "COMPLETE" if check.isComplete else "NOT COMPLETE"
    return (
        f"#### Completion Check Results\n\nOverall: {mark}\nDuration: {duration}ms\n\n"
        f"Reason: {check.completionReason}"
    )


# -- chunk payloads --------------------------------------------------------------------------


def routing_input(state: NetworkState, iteration: int) -> dict[str, Any]:
    """``routing-agent-start.inputData``: the task and what the last iteration did."""
    last = state.last
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


def context_messages(state: NetworkState, history: Sequence[Message]) -> list[dict[str, Any]]:
    """``conversationContext``: the user messages, in Mastra's stored-message shape."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        {
            "id": str(uuid.uuid4()),
            "type": "text",
            "createdAt": now,
            "threadId": state.thread_id,
            "resourceId": state.resource_id,
            "content": {"parts": [{"type": "text", "text": m.content}], "format": 2},
            "role": m.role,
        }
        for m in history
        if isinstance(m, UserMessage)
    ]


def decision_payload(
    state: NetworkState, decision: RoutingDecision, iteration: int
) -> dict[str, Any]:
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


def validation_end(
    state: NetworkState, iteration: int, check: CompletionCheck, duration: int, last_step: bool
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
