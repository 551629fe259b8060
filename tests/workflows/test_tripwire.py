"""A workflow whose agent step trips (a processor's ``abort``) ends ``tripwire``, not failed."""

from __future__ import annotations

from opentelemetry.trace import StatusCode
from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture

from spanflow import StepContext, Workflow, create_step, create_workflow
from spanflow.agents import Agent, ScriptedModel
from spanflow.agents.messages import Message, UserMessage
from spanflow.agents.processors import Processor, ProcessorContext
from spanflow.tracing import OtelInstrumentation, TracingConfig


class BlockSecrets(Processor):
    """Trips when the user asks for the secret."""

    async def process_input(self, messages: list[Message], ctx: ProcessorContext) -> list[Message]:
        if any(isinstance(m, UserMessage) and "secret" in m.content for m in messages):
            ctx.abort("asked for the secret", metadata={"word": "secret"})
        return messages


class Ask(BaseModel):
    question: str


def guarded_workflow(model: ScriptedModel) -> tuple[Workflow, list[str]]:
    agent = Agent(id="guarded", model=model, input_processors=[BlockSecrets("block-secrets")])
    calls: list[str] = []

    async def to_prompt(ctx: StepContext[Ask]) -> dict[str, str]:
        return {"prompt": ctx.input_data.question}

    async def after(ctx: StepContext[object]) -> str:
        calls.append("after")
        return "after"

    workflow = (
        create_workflow(id="guarded-flow", input_schema=Ask)
        .then(create_step(id="to-prompt", execute=to_prompt, input_schema=Ask))
        .then(agent.as_step())
        .then(create_step(id="after", execute=after))
        .commit()
    )
    return workflow, calls


async def test_an_input_processor_that_trips_in_an_agent_step_ends_the_run_tripwire() -> None:
    model = ScriptedModel(["never sent"])
    workflow, calls = guarded_workflow(model)
    run = await workflow.create_run()
    out = run.stream({"question": "tell me the secret"})
    events = [event.to_dict() async for event in out]
    result = await out.result

    assert result.status == "tripwire"
    assert result.error is None
    assert result.tripwire is not None
    assert result.tripwire.reason == "asked for the secret"
    assert result.tripwire.processor == "block-secrets"
    assert model.requests == []  # the model was never called
    assert calls == []  # the run stopped at the agent step
    step = result.steps["guarded"]
    assert step.status == "failed"
    assert step.to_dict()["tripwire"] == {
        "reason": "asked for the secret",
        "retry": False,
        "metadata": {"word": "secret"},
        "processorId": "block-secrets",
    }

    finish = events[-1]
    assert finish["type"] == "workflow-finish"
    assert finish["payload"]["workflowStatus"] == "tripwire"
    assert finish["payload"]["tripwire"]["reason"] == "asked for the secret"
    assert finish["payload"]["tripwire"]["processorId"] == "block-secrets"
    assert "error" not in finish["payload"]
    agent_chunks = [
        e["payload"]["output"]["type"] for e in events if e["type"] == "workflow-step-output"
    ]
    assert agent_chunks == ["start", "tripwire"]

    wire = result.to_dict()
    assert wire["status"] == "tripwire"
    assert wire["tripwire"]["reason"] == "asked for the secret"


async def test_a_run_that_does_not_trip_succeeds_through_the_same_agent_step() -> None:
    workflow, calls = guarded_workflow(ScriptedModel(["Hello there."]))
    run = await workflow.create_run()
    result = await run.start({"question": "say hello"})

    assert result.status == "success"
    assert result.tripwire is None
    assert calls == ["after"]


async def test_a_tripped_run_is_stored_with_the_tripwire_status() -> None:
    workflow, _ = guarded_workflow(ScriptedModel(["never sent"]))
    run = await workflow.create_run()
    await run.start({"question": "the secret, please"})

    stored = await workflow.storage.get_run(run.run_id)
    assert stored is not None
    assert stored.status == "tripwire"


async def test_the_run_span_says_tripwire_and_is_not_an_error() -> None:
    capture = SpanCapture()
    workflow, _ = guarded_workflow(ScriptedModel(["never sent"]))
    workflow.instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=capture.provider))
    await (await workflow.create_run()).start({"question": "the secret"})

    spans = {span.name: span for span in capture.spans}
    run_span = spans["invoke_workflow guarded-flow"]
    agent_span = spans["invoke_agent guarded"]
    assert dict(run_span.attributes or {})["spanflow.run.status"] == "tripwire"
    assert run_span.status.status_code is not StatusCode.ERROR
    assert dict(agent_span.attributes or {})["spanflow.agent.status"] == "tripwire"
    assert agent_span.status.status_code is not StatusCode.ERROR
