"""A workflow whose agent step trips (a processor's ``abort``) ends ``tripwire``, not failed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from opentelemetry.trace import StatusCode
from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture

from spanflow import Spanflow, StepContext, Workflow, create_step, create_workflow
from spanflow.agents import Agent, ScriptedModel
from spanflow.agents.messages import Message, UserMessage
from spanflow.agents.processors import Processor, ProcessorContext
from spanflow.server import create_app
from spanflow.storage import MemoryStorage, Storage
from spanflow.tracing import OtelInstrumentation, TracingConfig
from spanflow.workflows.results import WorkflowResult
from tests.server.conftest import asgi_client
from tests.support.queues import HeldQueue


class BlockSecrets(Processor):
    """Trips when the user asks for the secret."""

    async def process_input(self, messages: list[Message], ctx: ProcessorContext) -> list[Message]:
        if any(isinstance(m, UserMessage) and "secret" in m.content for m in messages):
            ctx.abort("asked for the secret", metadata={"word": "secret"})
        return messages


class Ask(BaseModel):
    question: str


def guarded_workflow(
    model: ScriptedModel, storage: Storage | None = None
) -> tuple[Workflow, list[str]]:
    agent = Agent(id="guarded", model=model, input_processors=[BlockSecrets("block-secrets")])
    calls: list[str] = []

    async def to_prompt(ctx: StepContext[Ask]) -> dict[str, str]:
        return {"prompt": ctx.input_data.question}

    async def after(ctx: StepContext[object]) -> str:
        calls.append("after")
        return "after"

    workflow = (
        create_workflow(id="guarded-flow", input_schema=Ask, storage=storage)
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


# -- read back from the store ------------------------------------------------------------------


def tripped_wire() -> dict[str, object]:
    return {
        "reason": "asked for the secret",
        "retry": False,
        "metadata": {"word": "secret"},
        "processorId": "block-secrets",
    }


async def observed(workflow: Workflow, run_id: str) -> tuple[list[dict[str, Any]], WorkflowResult]:
    out = workflow.observe(run_id)
    events = [event.to_dict() async for event in out]
    return events, await out.result


async def test_a_tripped_run_read_back_from_the_store_is_the_live_result(
    stores: tuple[Storage, Storage],
) -> None:
    storage, other = stores
    workflow, _ = guarded_workflow(ScriptedModel(["never sent"]), storage)
    run = await workflow.create_run()
    live = await run.start({"question": "the secret, please"})

    # Observed as another process does: a workflow object of its own on the same data.
    reader, _ = guarded_workflow(ScriptedModel([]), other)
    events, stored = await observed(reader, run.run_id)

    assert stored.status == "tripwire"
    assert stored.error is None
    assert stored.tripwire == live.tripwire
    assert stored.to_dict() == live.to_dict()
    assert stored.to_dict()["tripwire"] == tripped_wire()
    assert stored.steps["guarded"].to_dict()["tripwire"] == tripped_wire()
    finish = events[-1]
    assert finish["type"] == "workflow-finish"
    assert finish["payload"]["tripwire"] == tripped_wire()
    assert "error" not in finish["payload"]


async def test_a_tripped_run_stored_before_its_tripwire_was_reads_it_from_the_step() -> None:
    storage = MemoryStorage()
    workflow, _ = guarded_workflow(ScriptedModel(["never sent"]), storage)
    run = await workflow.create_run()
    live = await run.start({"question": "the secret, please"})
    stored = await storage.get_run(run.run_id)
    assert stored is not None
    older = {key: value for key, value in stored.snapshot.items() if key != "tripwire"}
    await storage.save_run(replace(stored, snapshot=older))

    _, read_back = await observed(workflow, run.run_id)

    assert read_back.status == "tripwire"
    assert read_back.error is None
    assert read_back.tripwire == live.tripwire
    assert read_back.to_dict() == live.to_dict()


async def test_a_run_that_did_not_trip_stores_no_tripwire() -> None:
    storage = MemoryStorage()
    workflow, _ = guarded_workflow(ScriptedModel(["Hello there."]), storage)
    run = await workflow.create_run()
    await run.start({"question": "say hello"})

    stored = await storage.get_run(run.run_id)
    assert stored is not None
    assert "tripwire" not in stored.snapshot  # the JSON of other runs is as it was


async def test_the_server_answers_a_tripped_run_as_it_ended() -> None:
    workflow, _ = guarded_workflow(ScriptedModel(["never sent"]))
    queue = HeldQueue()  # the run executes in a "worker"; the server reads its result back
    queue.workflows[workflow.id] = workflow
    app = create_app(Spanflow(workflows=[workflow], storage=MemoryStorage(), executor=queue))
    async with asgi_client(app) as client:

        async def deliver_when_queued() -> None:
            await queue.wait_for(1)
            await queue.deliver()

        delivering = asyncio.create_task(deliver_when_queued())
        answer = await client.post(
            "/api/workflows/guarded-flow/start-async?runId=r-1",
            json={"inputData": {"question": "the secret, please"}},
        )
        await delivering
        state = (await client.get("/api/workflows/guarded-flow/runs/r-1")).json()

    assert answer.status_code == 200
    result = answer.json()
    assert result["status"] == "tripwire"
    assert result["tripwire"] == tripped_wire()
    assert "error" not in result
    assert result["steps"]["guarded"]["tripwire"] == tripped_wire()
    assert state["status"] == "tripwire"
    assert state["tripwire"] == tripped_wire()
    assert state["steps"]["guarded"]["tripwire"] == tripped_wire()
