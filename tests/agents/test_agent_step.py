"""An agent as a workflow step: its chunks in the workflow stream, its usage in the run's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture, dump_spans

from spanflow import StepContext, Workflow, create_step, create_workflow
from spanflow.agents import (
    Agent,
    AgentRunError,
    AgentStepOutput,
    ModelError,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    tool,
)
from spanflow.agents.models import ModelRequest, last_tool_results, last_user_text
from spanflow.tracing import OtelInstrumentation, TracingConfig
from spanflow.usage import Usage


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def research_agent(model: ScriptedModel | None = None) -> Agent:
    def reply(request: ModelRequest) -> str | ScriptedReply:
        if last_tool_results(request):
            return ScriptedReply("Summary done.", usage=Usage(20, 2, 22))
        topic = last_user_text(request)
        return ScriptedReply(
            tool_calls=[ScriptedToolCall("lookup", {"topic": topic})], usage=Usage(10, 1, 11)
        )

    return Agent(
        id="researcher",
        description="Researches a topic.",
        model=model or ScriptedModel(reply),
        tools=[lookup],
    )


class Topic(BaseModel):
    topic: str


def workflow_with(agent: Agent) -> Workflow:
    async def to_prompt(ctx: StepContext[Topic]) -> dict[str, str]:
        return {"prompt": ctx.input_data.topic}

    async def shout(ctx: StepContext[AgentStepOutput]) -> str:
        return ctx.input_data.text.upper()

    return (
        create_workflow(id="research", input_schema=Topic)
        .then(create_step(id="to-prompt", execute=to_prompt, input_schema=Topic))
        .then(agent.as_step())
        .then(create_step(id="shout", execute=shout, input_schema=AgentStepOutput))
        .commit()
    )


async def test_chunks_become_step_output_events_and_usage_sums_into_the_run() -> None:
    agent = research_agent()
    run = await workflow_with(agent).create_run()
    out = run.stream({"topic": "otters"})
    events = [event.to_dict() async for event in out]
    result = await out.result

    assert result.status == "success"
    assert result.result == "SUMMARY DONE."
    assert result.steps["researcher"].output == AgentStepOutput(
        text="Summary done.", finish_reason="stop", steps=2, usage=Usage(30, 3, 33)
    )

    outputs = [e for e in events if e["type"] == "workflow-step-output"]
    assert {e["from"] for e in outputs} == {"USER"}
    assert {e["payload"]["stepName"] for e in outputs} == {"researcher"}
    chunks = [e["payload"]["output"] for e in outputs]
    assert [c["type"] for c in chunks] == [
        "start",
        "step-start",
        "tool-call",
        "tool-result",
        "step-finish",
        "step-start",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "step-finish",
        "finish",
    ]
    assert {c["from"] for c in chunks} == {"AGENT"}
    assert chunks[3]["payload"]["result"] == "facts about otters"

    types = [e["type"] for e in events]
    agent_start = types.index("workflow-step-start", types.index("workflow-step-result"))
    assert types[agent_start + 1 : agent_start + 13] == ["workflow-step-output"] * 12
    assert types[agent_start + 13] == "workflow-step-result"

    expected = Usage(30, 3, 33).to_dict()
    assert events[-1]["type"] == "workflow-finish"
    assert events[-1]["payload"]["output"]["usage"] == expected
    assert result.usage == Usage(30, 3, 33)
    assert await out.usage == Usage(30, 3, 33)


async def test_usage_of_several_agent_steps_adds_up() -> None:
    first = Agent(id="first", model=ScriptedModel([ScriptedReply("a", usage=Usage(1, 2, 3))]))
    second = Agent(id="second", model=ScriptedModel([ScriptedReply("b", usage=Usage(10, 20, 30))]))

    async def relay(ctx: StepContext[AgentStepOutput]) -> dict[str, str]:
        return {"prompt": ctx.input_data.text}

    workflow = (
        create_workflow(id="two")
        .then(first.as_step())
        .then(create_step(id="relay", execute=relay, input_schema=AgentStepOutput))
        .then(second.as_step())
        .commit()
    )
    result = await (await workflow.create_run()).start({"prompt": "go"})
    assert result.status == "success"
    assert result.usage == Usage(11, 22, 33)


async def test_messages_are_accepted_as_step_input() -> None:
    agent = Agent(id="echo", model=ScriptedModel(lambda r: f"echo {last_user_text(r)}"))
    workflow = create_workflow(id="wf").then(agent.as_step(id="talk")).commit()
    result = await (await workflow.create_run()).start(
        {"messages": [{"role": "user", "content": "hello"}]}
    )
    assert result.status == "success"
    assert result.steps["talk"].output.text == "echo hello"


async def test_step_input_needs_exactly_one_of_prompt_or_messages() -> None:
    agent = Agent(id="echo", model=ScriptedModel(["unused"]))
    workflow = create_workflow(id="wf").then(agent.as_step()).commit()
    result = await (await workflow.create_run()).start({"prompt": "a", "messages": []})
    assert result.status == "failed"
    assert "exactly one of 'prompt' or 'messages'" in str(result.error)


async def test_a_failing_agent_fails_its_step_with_the_cause_and_still_counts_usage() -> None:
    cause = ModelError("model endpoint http://m/v1 returned HTTP 503: busy", status_code=503)
    agent = Agent(
        id="flaky",
        model=ScriptedModel(
            [
                ScriptedReply(
                    tool_calls=[ScriptedToolCall("lookup", {"topic": "x"})], usage=Usage(5, 5, 10)
                ),
                ScriptedReply(error=cause),
            ]
        ),
        tools=[lookup],
    )
    run = await create_workflow(id="wf").then(agent.as_step()).commit().create_run()
    out = run.stream({"prompt": "go"})
    events: list[dict[str, Any]] = [event.to_dict() async for event in out]
    result = await out.result

    assert result.status == "failed"
    assert isinstance(result.error, AgentRunError)
    assert result.error.__cause__ is cause
    assert str(result.error) == (
        "agent 'flaky' failed: model endpoint http://m/v1 returned HTTP 503: busy"
    )
    chunk_types = [
        e["payload"]["output"]["type"] for e in events if e["type"] == "workflow-step-output"
    ]
    assert chunk_types[-1] == "error"
    assert events[-1]["payload"]["workflowStatus"] == "failed"
    assert events[-1]["payload"]["output"]["usage"]["totalTokens"] == 10
    assert result.usage == Usage(5, 5, 10)


async def test_an_agent_step_traces_like_its_workflow_when_the_agent_has_no_tracing() -> None:
    capture = SpanCapture()  # a provider of its own, not the global one
    workflow = create_workflow(id="desk").then(research_agent().as_step(id="research")).commit()
    workflow.instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=capture.provider))

    result = await (await workflow.create_run()).start({"prompt": "spans"})

    assert result.status == "success"
    names = dump_spans(capture.spans, attributes=None, include_events=False).splitlines()
    assert names[:3] == [
        "invoke_workflow desk [INTERNAL] UNSET",
        "  workflow_step research [INTERNAL] UNSET",
        "    invoke_agent researcher [INTERNAL] UNSET",
    ]
    assert any(line.strip().startswith("chat scripted [CLIENT]") for line in names)
    assert any(line.strip().startswith("execute_tool lookup") for line in names)
    capture.shutdown()
