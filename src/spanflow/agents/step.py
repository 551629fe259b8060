"""An agent as a workflow step: chunks become ``workflow-step-output``, usage sums into the run.

`create_agent_step(agent)` (or ``agent.as_step()``) makes a `Step` whose input is
`AgentStepInput` (``{"prompt": "..."}`` or ``{"messages": [...]}``) and whose output is
`AgentStepOutput` (``{"text", "finish_reason", "steps", "usage"}``). While it runs, every chunk
of the agent's stream is written with ``ctx.writer.write(chunk.to_dict())``, so the workflow's
stream carries it as a ``workflow-step-output`` event; the call's usage is added to the run's
(``ctx.record_usage``), so it appears in the result's ``usage`` and in ``workflow-finish``.
The agent's spans nest under the step span and inherit the run's tags and metadata.

A failed or aborted agent call fails the step with `AgentRunError` (the cause chained); its
usage is still counted. A call a processor stopped (status ``tripwire``) fails the step with
`AgentTripwireError`, a `TripwireError`: the run then ends ``tripwire`` with the reason (not
retried). Cancelling the run aborts the agent call.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pydantic

from spanflow.agents.errors import AgentRunError
from spanflow.agents.messages import MessagesInput
from spanflow.tracing.options import TracingOptions
from spanflow.usage import Usage
from spanflow.workflows.results import TripwireError, TripwireInfo
from spanflow.workflows.step import Step, StepContext, create_step

if TYPE_CHECKING:
    from spanflow.agents.agent import Agent

__all__ = ["AgentStepInput", "AgentStepOutput", "AgentTripwireError", "create_agent_step"]


class AgentTripwireError(AgentRunError, TripwireError):
    """An agent step whose call a processor stopped: the run ends ``tripwire``."""

    def __init__(self, message: str, tripwire: TripwireInfo) -> None:
        TripwireError.__init__(self, message, tripwire)


class AgentStepInput(pydantic.BaseModel):
    """The input of an agent step: a prompt, or messages in the chat shape."""

    model_config = pydantic.ConfigDict(extra="forbid")

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None

    @pydantic.model_validator(mode="after")
    def _one_of(self) -> AgentStepInput:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        return self


class AgentStepOutput(pydantic.BaseModel):
    """The output of an agent step."""

    text: str
    finish_reason: str
    steps: int
    """How many model calls the agent made."""
    usage: Usage


def create_agent_step(
    agent: Agent,
    *,
    id: str | None = None,
    description: str | None = None,
    tracing_options: TracingOptions | None = None,
) -> Step[AgentStepInput, AgentStepOutput]:
    """Make a workflow step that runs `agent` (see the module docstring).

    Args:
        agent: The agent.
        id: The step id; default: the agent's id.
        description: Default: the agent's description.
        tracing_options: Tags and metadata for the agent's spans, merged over the run's
            (trace ids are ignored: the agent nests under the step span).
    """

    async def execute(ctx: StepContext[AgentStepInput]) -> AgentStepOutput:
        data = ctx.input_data
        messages: MessagesInput = data.prompt if data.prompt is not None else (data.messages or [])
        from spanflow.agents.agent import AgentStream  # agent.py imports this module

        out = AgentStream(
            agent._call(
                messages,
                request_context=ctx.request_context,
                tracing_options=tracing_options,
                resource_id=ctx.resource_id,
            )
        )
        try:
            async for chunk in out:
                await ctx.writer.write(chunk.to_dict())
            result = await asyncio.shield(out.result)
        except asyncio.CancelledError:
            out.abort()
            raise
        ctx.record_usage(result.usage)
        if result.status == "failed":
            raise AgentRunError(f"agent {agent.id!r} failed: {result.error}") from result.error
        if result.status == "aborted":
            raise AgentRunError(f"agent {agent.id!r} was aborted")
        if result.status == "tripwire" and result.tripwire is not None:
            raise AgentTripwireError(
                f"agent {agent.id!r} was stopped by processor {result.tripwire.processor!r}: "
                f"{result.tripwire.reason}",
                result.tripwire,
            )
        return AgentStepOutput(
            text=result.text,
            finish_reason=result.finish_reason,
            steps=len(result.steps),
            usage=result.usage,
        )

    return create_step(
        id=id or agent.id,
        execute=execute,
        input_schema=AgentStepInput,
        output_schema=AgentStepOutput,
        description=description or agent.description,
    )
