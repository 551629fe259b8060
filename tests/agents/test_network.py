"""Agent networks: the routing loop, its Mastra-shaped chunks, failures, suspend/resume, spans.

The router is a `ScriptedModel` answering, in turn, one routing decision and one completion
check per iteration (JSON text), so each test reads as the conversation it scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from pydantic import BaseModel
from spanflow_otel.testing import SpanCapture, dump_spans

from spanflow import StepContext, TracingOptions, create_step, create_workflow, step
from spanflow.agents import Agent, ScriptedModel, ScriptedReply, UserMessage, pii_redactor, tool
from spanflow.agents.memory import Memory
from spanflow.agents.network import NetworkChunk, NetworkStream, network, network_resume
from spanflow.agents.processors import Processor, ProcessorContext
from spanflow.errors import InvalidInputError
from spanflow.storage import SqliteStorage
from spanflow.storage.memory import MemoryStorage
from spanflow.usage import Usage
from spanflow.workflows.workflow import Workflow

MASTRA = json.loads((Path(__file__).parent / "data" / "mastra-network-chunks.json").read_text())
TASK = "What is the weather in Tokyo and plan an activity?"


class City(BaseModel):
    city: str


class Plan(BaseModel):
    plan: str


@step(input_schema=City, output_schema=Plan)
async def plan(ctx: StepContext[City]) -> Plan:
    return Plan(plan=f"Visit a park in {ctx.input_data.city}")


PLAN_WF = (
    create_workflow(
        id="plan-wf", input_schema=City, output_schema=Plan, description="Plans an activity."
    )
    .then(plan)
    .commit()
)


@tool
async def clock(tz: str) -> dict[str, str]:
    """The local time in a time zone."""
    return {"time": "14:00", "tz": tz}


@tool
async def broken(tz: str) -> str:
    """Always fails."""
    raise RuntimeError("the clock service is down")


def route(primitive_id: str, kind: str, prompt: str, reason: str) -> ScriptedReply:
    text = json.dumps(
        {
            "primitiveId": primitive_id,
            "primitiveType": kind,
            "prompt": prompt,
            "selectionReason": reason,
        }
    )
    return ScriptedReply(text, usage=Usage(10, 5, 15))


def check(done: bool, reason: str, final: str = "") -> ScriptedReply:
    text = json.dumps({"isComplete": done, "completionReason": reason, "finalResult": final})
    return ScriptedReply(text, usage=Usage(4, 2, 6))


def network_agent(
    *replies: ScriptedReply, workflows: dict[str, Workflow] | None = None, tools: Any = (clock,)
) -> Agent:
    """The network agent: a weather agent, a workflow (the plan) and tools (the clock)."""
    weather = Agent(
        id="weather-agent",
        description="Knows the weather.",
        model=ScriptedModel(
            [ScriptedReply("It is sunny in Tokyo, 24C.", usage=Usage(10, 5, 15))],
            model_id="weather-model",
        ),
    )
    return Agent(
        id="router",
        name="Router",
        instructions="Answer travel questions.",
        model=ScriptedModel(list(replies), model_id="router-model"),
        tools=list(tools),
        agents={"weatherAgent": weather},
        workflows=workflows or {"planWf": PLAN_WF},
    )


def three_primitives() -> list[ScriptedReply]:
    return [
        route("weatherAgent", "agent", "Weather in Tokyo?", "needs weather"),
        check(False, "still missing plan/time"),
        route("planWf", "workflow", '{"city":"Tokyo"}', "plan an activity"),
        check(False, "still missing plan/time"),
        route("clock", "tool", '{"tz":"Asia/Tokyo"}', "local time"),
        check(True, "weather, plan and time known", "Tokyo is sunny; go to the park at 14:00."),
    ]


async def collect(out: NetworkStream) -> list[NetworkChunk]:
    return [chunk async for chunk in out]


def shape(chunks: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """Each chunk's type, origin and sorted payload keys, with a run of text deltas as one
    (spanflow's scripted model streams word by word, Mastra's capture sent one delta)."""
    out: list[tuple[str, str, list[str]]] = []
    for chunk in chunks:
        keys = chunk.get("payloadKeys") or sorted(chunk["payload"])
        item = (chunk["type"], chunk["from"], keys)
        if out and item == out[-1] and item[0].endswith("text-delta"):
            continue
        out.append(item)
    return out


async def test_a_network_routes_to_an_agent_a_workflow_and_a_tool_then_completes() -> None:
    out = network(network_agent(*three_primitives()), TASK, max_steps=6)
    chunks = await collect(out)
    result = await out.result

    wire = [chunk.to_dict() for chunk in chunks]
    assert shape(wire) == shape(MASTRA["chunks"])  # Mastra's 34 chunks, key for key
    assert {c["runId"] for c in wire} == {out.run_id}
    assert result.status == "success"
    assert result.result == "Tokyo is sunny; go to the park at 14:00."
    assert result.completion_reason == "weather, plan and time known"
    assert result.iterations == 3
    # three routing calls, three checks and the weather agent
    assert result.usage == Usage(3 * 10 + 3 * 4 + 10, 3 * 5 + 3 * 2 + 5, 3 * 15 + 3 * 6 + 15)
    assert await out.usage == result.usage
    assert await out.status == "success"

    by_type = {c["type"]: c["payload"] for c in wire}
    assert by_type["agent-execution-end"]["result"] == "It is sunny in Tokyo, 24C."
    assert by_type["workflow-execution-end"]["result"]["result"] == {
        "plan": "Visit a park in Tokyo"
    }
    assert by_type["tool-execution-start"]["args"]["args"] == {"tz": "Asia/Tokyo"}
    assert by_type["tool-execution-end"]["result"] == {"time": "14:00", "tz": "Asia/Tokyo"}
    assert by_type["routing-agent-text-delta"] == {
        "text": "Tokyo is sunny; go to the park at 14:00."
    }
    finish = by_type["network-execution-event-finish"]
    assert finish["usage"] == result.usage.to_dict()
    assert (finish["isComplete"], finish["primitiveId"], finish["iteration"]) == (True, "clock", 2)


async def test_the_router_sees_the_earlier_results() -> None:
    agent = network_agent(*three_primitives())
    await (network(agent, TASK, max_steps=6)).result

    model = agent.model
    assert isinstance(model, ScriptedModel)
    third_route = model.requests[4].messages
    system = third_route[0].content
    assert "**weatherAgent**: Knows the weather." in system
    assert '**planWf**: Plans an activity., input schema: {"properties"' in system
    results = [json.loads(m.content) for m in third_route if m.content.startswith('{"isNetwork"')]
    assert [(r["primitiveId"], r["failed"]) for r in results] == [
        ("weatherAgent", False),
        ("planWf", False),
    ]


async def test_max_steps_ends_an_unfinished_network() -> None:
    agent = network_agent(
        route("weatherAgent", "agent", "Weather?", "needs weather"),
        check(False, "still missing the plan"),
    )
    out = network(agent, TASK, max_steps=1)
    chunks = [c.to_dict() for c in await collect(out)]
    result = await out.result

    assert result.status == "incomplete"
    assert result.completion_reason == "Max iterations reached: 1"
    assert chunks[-2]["type"] == "network-validation-end"
    assert chunks[-2]["payload"]["maxIterationReached"] is True
    assert chunks[-1]["type"] == "network-execution-event-finish"
    assert chunks[-1]["payload"]["isComplete"] is False
    assert chunks[-1]["payload"]["completionReason"] == "Max iterations reached: 1"


async def test_a_failing_primitive_is_reported_to_the_router_which_goes_on() -> None:
    agent = network_agent(
        route("broken", "tool", '{"tz":"UTC"}', "time"),
        check(False, "the clock failed"),
        route("nowhere", "agent", "hello", "try another"),
        check(False, "no such agent"),
        route("clock", "tool", '{"tz":"UTC"}', "the other clock"),
        check(True, "time known", "14:00"),
        tools=(clock, broken),
    )
    out = network(agent, "What time is it?", max_steps=5)
    chunks = [c.to_dict() for c in await collect(out)]
    result = await out.result

    assert result.status == "success"
    assert result.iterations == 3
    tool_ends = [c["payload"] for c in chunks if c["type"] == "tool-execution-end"]
    assert tool_ends[0]["result"] == {
        "error": {"name": "RuntimeError", "message": "the clock service is down"}
    }
    model = agent.model
    assert isinstance(model, ScriptedModel)
    told = [
        json.loads(m.content)
        for m in model.requests[4].messages
        if m.content.startswith('{"isNetwork"')
    ]
    assert [(r["primitiveId"], r["failed"]) for r in told] == [("broken", True), ("nowhere", True)]
    assert "there is no agent 'nowhere' in this network" in told[1]["finalResult"]


async def test_a_router_answer_that_is_no_decision_fails_the_network_clearly() -> None:
    unsure = ScriptedReply("I think the weather agent?")
    out = network(network_agent(unsure, unsure), TASK, max_steps=3)  # the answer, its repair
    chunks = [c.to_dict() for c in await collect(out)]
    result = await out.result

    assert result.status == "failed"
    assert str(result.error).startswith(
        "the routing model's routing decision failed: agent 'routing-agent': the answer does "
        "not match the output schema 'RoutingDecision', even after one repair attempt"
    )
    assert [c["type"] for c in chunks] == [
        "routing-agent-start",
        "network-execution-event-finish",
        "error",
    ]
    assert chunks[-1]["payload"]["error"]["name"] == "NetworkError"


async def test_a_none_decision_goes_straight_to_the_completion_check() -> None:
    out = network(
        network_agent(route("", "none", "", "nothing to do"), check(True, "trivial", "Hello.")),
        "Say hello",
    )
    chunks = [c.to_dict() for c in await collect(out)]
    result = await out.result

    assert (result.status, result.result) == ("success", "Hello.")
    assert [c["type"] for c in chunks] == [
        "routing-agent-start",
        "routing-agent-end",
        "network-validation-start",
        "routing-agent-text-start",
        "routing-agent-text-delta",
        "network-validation-end",
        "network-execution-event-finish",
    ]


async def approve(ctx: StepContext[Plan]) -> Plan:
    if ctx.resume_data is None:
        ctx.suspend({"question": f"book {ctx.input_data.plan}?"})
    return Plan(plan=f"{ctx.input_data.plan} (booked: {ctx.resume_data['approved']})")


def booking(storage: SqliteStorage) -> Workflow:
    return (
        create_workflow(
            id="book-wf",
            input_schema=City,
            output_schema=Plan,
            storage=storage,
            description="Books an activity after approval.",
        )
        .then(plan)
        .then(create_step(id="approve", execute=approve, input_schema=Plan, output_schema=Plan))
        .commit()
    )


async def test_a_suspended_workflow_suspends_the_network_and_resumes_in_another_process(
    tmp_path: Path,
) -> None:
    database = tmp_path / "runs.db"
    first = network_agent(
        route("bookWf", "workflow", '{"city":"Tokyo"}', "book it"),
        workflows={"bookWf": booking(SqliteStorage(database))},
    )
    out = network(first, "Book me something in Tokyo", max_steps=3)
    chunks = [c.to_dict() for c in await collect(out)]
    suspended = await out.result

    assert suspended.status == "suspended"
    assert chunks[-1]["type"] == "workflow-execution-suspended"
    assert chunks[-1]["payload"]["suspendPayload"] == {
        "approve": {"question": "book Visit a park in Tokyo?"}
    }
    assert suspended.suspended is not None

    # Another process: a new agent, workflow and store object on the same file.
    later = network_agent(
        check(True, "booked", "Booked a park visit in Tokyo."),
        workflows={"bookWf": booking(SqliteStorage(database))},
    )
    resumed = await network_resume(
        later, {"approved": True}, workflow_run_id=suspended.suspended["runId"]
    )
    after = [c.to_dict() for c in await collect(resumed)]
    done = await resumed.result

    assert done.status == "success"
    assert done.result == "Booked a park visit in Tokyo."
    assert resumed.run_id == out.run_id  # the same network goes on
    assert [c["type"] for c in after][-4:] == [
        "routing-agent-text-start",
        "routing-agent-text-delta",
        "network-validation-end",
        "network-execution-event-finish",
    ]
    end = next(c["payload"] for c in after if c["type"] == "workflow-execution-end")
    assert end["result"]["result"] == {"plan": "Visit a park in Tokyo (booked: True)"}
    assert done.usage == Usage(10 + 4, 5 + 2, 15 + 6)  # the first router call is remembered


async def test_a_network_is_one_trace_of_routes_primitives_and_checks(
    span_capture: SpanCapture,
) -> None:
    out = network(
        network_agent(*three_primitives()),
        TASK,
        max_steps=6,
        tracing_options=TracingOptions(tags=["travel"], metadata={"user": "u-1"}),
    )
    await out.result

    view = ["spanflow.tags", "spanflow.metadata.*", "spanflow.network.*"]
    assert dump_spans(span_capture.spans, attributes=view, include_events=False) == "\n".join(
        [
            "invoke_agent Router [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.network.iterations=3, spanflow.network.status='success',"
            " spanflow.tags=['travel']}",
            "  route 0 [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.network.iteration=0, spanflow.network.phase.status='success',"
            " spanflow.network.primitive.id='weatherAgent',"
            " spanflow.network.primitive.type='agent',"
            " spanflow.network.selection_reason='needs weather', spanflow.tags=['travel']}",
            "    chat router-model [CLIENT] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  invoke_agent weather-agent [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "    chat weather-model [CLIENT] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  check 0 [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.network.complete=False,"
            " spanflow.network.completion_reason='still missing plan/time',"
            " spanflow.network.iteration=0, spanflow.network.phase.status='success',"
            " spanflow.tags=['travel']}",
            "    chat router-model [CLIENT] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  route 1 [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.network.iteration=1, spanflow.network.phase.status='success',"
            " spanflow.network.primitive.id='planWf',"
            " spanflow.network.primitive.type='workflow',"
            " spanflow.network.selection_reason='plan an activity', spanflow.tags=['travel']}",
            "    chat router-model [CLIENT] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  invoke_workflow plan-wf [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "    workflow_step plan [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  check 1 [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.network.complete=False,"
            " spanflow.network.completion_reason='still missing plan/time',"
            " spanflow.network.iteration=1, spanflow.network.phase.status='success',"
            " spanflow.tags=['travel']}",
            "    chat router-model [CLIENT] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  route 2 [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.network.iteration=2, spanflow.network.phase.status='success',"
            " spanflow.network.primitive.id='clock', spanflow.network.primitive.type='tool',"
            " spanflow.network.selection_reason='local time', spanflow.tags=['travel']}",
            "    chat router-model [CLIENT] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  execute_tool clock [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
            "  check 2 [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.network.complete=True,"
            " spanflow.network.completion_reason='weather, plan and time known',"
            " spanflow.network.iteration=2, spanflow.network.phase.status='success',"
            " spanflow.tags=['travel']}",
            "    chat router-model [CLIENT] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.tags=['travel']}",
        ]
    )
    assert len({span.context.trace_id for span in span_capture.spans}) == 1
    spans = {span.name: span for span in span_capture.spans}
    route_events = [event.name for event in spans["route 0"].events]
    assert route_events == ["routing-agent-start", "routing-agent-end"]
    network_events = [event.name for event in spans["invoke_agent Router"].events]
    assert network_events[0] == "agent-execution-start"
    assert "agent-execution-event-text-delta" not in network_events
    assert network_events[-1] == "network-execution-event-finish"
    assert [e.name for e in spans["check 2"].events] == [
        "network-validation-start",
        "routing-agent-text-start",
        "routing-agent-text-delta",
        "network-validation-end",
    ]


async def test_a_network_keeps_the_task_and_each_result_in_its_memory_thread() -> None:
    memory = Memory(MemoryStorage())
    agent = network_agent(*three_primitives())
    agent.memory = memory
    out = network(agent, TASK, max_steps=6, memory={"thread": "th-1", "resource": "res-1"})
    chunks = [c.to_dict() for c in await collect(out)]
    assert (await out.result).status == "success"

    kept = await memory.list_messages(thread="th-1", resource="res-1", limit=10)
    assert kept[0] == UserMessage(TASK)
    assert [json.loads(m.content)["primitiveId"] for m in kept[1:]] == [
        "weatherAgent",
        "planWf",
        "clock",
    ]
    start = chunks[0]["payload"]["inputData"]
    assert (start["threadId"], start["threadResourceId"]) == ("th-1", "res-1")
    context = chunks[1]["payload"]["conversationContext"]
    assert [(m["role"], m["threadId"], m["content"]["parts"][0]["text"]) for m in context] == [
        ("user", "th-1", TASK)
    ]
    model = agent.model
    assert isinstance(model, ScriptedModel)
    recalled = [m.content for m in model.requests[4].messages if m.content.startswith("{")]
    assert len(recalled) == 2  # the third routing call recalled both earlier results


async def test_a_suspended_network_resumes_from_its_stream_in_the_same_trace(
    tmp_path: Path, span_capture: SpanCapture
) -> None:
    agent = network_agent(
        route("bookWf", "workflow", '{"city":"Tokyo"}', "book it"),
        check(True, "booked", "Booked."),
        workflows={"bookWf": booking(SqliteStorage(tmp_path / "runs.db"))},
    )
    out = network(agent, "Book me something in Tokyo", max_steps=3)
    assert (await out.result).status == "suspended"
    resumed = await out.resume({"approved": False})
    done = await resumed.result

    assert done.status == "success"
    assert done.iterations == 1
    networks = [s for s in span_capture.spans if s.name == "invoke_agent Router"]
    assert len(networks) == 2
    first, second = sorted(networks, key=lambda s: s.start_time or 0)
    assert second.parent is not None
    assert second.parent.span_id == first.context.span_id  # the resume continues the trace
    assert len({span.context.trace_id for span in span_capture.spans}) == 1
    # The resumed workflow run continues under its first run span (as every resumed run
    # does), linked to the resumed network span.
    assert dump_spans(span_capture.spans, attributes=None, include_events=False) == "\n".join(
        [
            "invoke_agent Router [INTERNAL] UNSET",
            "  route 0 [INTERNAL] UNSET",
            "    chat router-model [CLIENT] UNSET",
            "  invoke_workflow book-wf [INTERNAL] UNSET",
            "    workflow_step plan [INTERNAL] UNSET",
            "    workflow_step approve [INTERNAL] UNSET",
            "    invoke_workflow book-wf [INTERNAL] UNSET",
            "      \u2194 link to invoke_agent Router",
            "      workflow_step approve [INTERNAL] UNSET",
            "  invoke_agent Router [INTERNAL] UNSET",
            "    check 0 [INTERNAL] UNSET",
            "      chat router-model [CLIENT] UNSET",
        ]
    )


# -- failures, memory rules and input processors -------------------------------------------------


async def test_a_network_that_raises_fails_with_the_error_on_its_result_stream_and_span(
    span_capture: SpanCapture,
) -> None:
    memory = Memory(MemoryStorage())
    await memory.remember(thread="t1", resource="alice", messages=["hello"])
    agent = network_agent(*three_primitives())
    agent.memory = memory
    out = network(agent, TASK, memory={"thread": "t1", "resource": "mallory"})
    chunks = [c.to_dict() for c in await collect(out)]  # the stream does not raise
    result = await out.result

    assert result.status == "failed"
    assert isinstance(result.error, InvalidInputError)
    assert "belongs to another resource" in str(result.error)
    assert [c["type"] for c in chunks] == ["network-execution-event-finish", "error"]
    assert chunks[0]["payload"]["isComplete"] is False
    assert chunks[1]["payload"]["error"]["name"] == "InvalidInputError"
    assert await memory.list_messages(thread="t1", resource="alice") == [UserMessage("hello")]
    assert isinstance(agent.model, ScriptedModel)
    assert agent.model.requests == []  # nothing ran
    (span,) = [s for s in span_capture.spans if s.name == "invoke_agent Router"]
    attributes = span.attributes or {}
    assert span.status.status_code == StatusCode.ERROR
    assert attributes["spanflow.agent.status"] == "failed"
    assert attributes["spanflow.network.status"] == "failed"
    assert [e.name for e in span.events][-1] == "exception"


def test_network_memory_follows_the_agents_rules() -> None:
    agent = network_agent(*three_primitives())  # no Memory
    with pytest.raises(InvalidInputError, match="agent 'router' has no memory"):
        network(agent, TASK, memory={"thread": "t1", "resource": "r1"})
    agent.memory = Memory(MemoryStorage())
    with pytest.raises(InvalidInputError, match=r"memory\['resource'\] must be a non-empty"):
        network(agent, TASK, memory={"thread": "t1"})
    with pytest.raises(InvalidInputError, match=r"memory has unknown keys \['memory'\]"):
        network(agent, TASK, memory={"thread": "t1", "resource": "r1", "memory": agent.memory})


async def test_the_routers_input_processors_rewrite_what_the_network_remembers_and_routes(
    span_capture: SpanCapture,
) -> None:
    agent = network_agent(*three_primitives())
    agent.memory = Memory(MemoryStorage())
    agent.input_processors = (pii_redactor(),)
    out = network(
        agent,
        "Plan Tokyo, mail ada@example.com",
        max_steps=6,
        memory={"thread": "th-1", "resource": "ada"},
    )
    chunks = [c.to_dict() async for c in out]
    assert (await out.result).status == "success"

    kept = await agent.memory.recall(thread="th-1", resource="ada")
    assert kept[0] == UserMessage("Plan Tokyo, mail [email redacted]")
    assert chunks[0]["payload"]["inputData"]["task"] == "Plan Tokyo, mail [email redacted]"
    model = agent.model
    assert isinstance(model, ScriptedModel)
    assert "ada@example.com" not in json.dumps([str(r.messages) for r in model.requests])
    captured = json.dumps([dict(s.attributes or {}) for s in span_capture.spans])
    assert "ada@example.com" not in captured
    assert "[email redacted]" in captured


class Refuse(Processor):
    async def process_input(self, messages: list[Any], ctx: ProcessorContext) -> list[Any]:
        ctx.abort("no travel plans today")


async def test_an_input_processor_that_aborts_ends_the_network_tripwire(
    span_capture: SpanCapture,
) -> None:
    agent = network_agent(*three_primitives())
    agent.memory = Memory(MemoryStorage())
    agent.input_processors = (Refuse("refuse"),)
    out = network(agent, TASK, memory={"thread": "th-1", "resource": "r1"})
    chunks = [c.to_dict() for c in await collect(out)]
    result = await out.result

    assert result.status == "tripwire"
    assert result.error is None
    assert result.tripwire is not None
    assert (result.tripwire.processor, result.tripwire.reason) == (
        "refuse",
        "no travel plans today",
    )
    assert result.to_dict()["tripwire"] == {
        "reason": "no travel plans today",
        "retry": False,
        "processorId": "refuse",
    }
    assert [c["type"] for c in chunks] == ["network-execution-event-finish", "tripwire"]
    assert await agent.memory.list_messages(thread="th-1", resource="r1") == []
    (span,) = [s for s in span_capture.spans if s.name == "invoke_agent Router"]
    assert span.status.status_code == StatusCode.UNSET  # on purpose, not an error
    assert (span.attributes or {})["spanflow.agent.status"] == "tripwire"
