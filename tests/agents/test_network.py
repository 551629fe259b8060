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
from pydantic import BaseModel, ConfigDict
from spanflow_otel.testing import SpanCapture, dump_spans

from spanflow import StepContext, TracingOptions, create_step, create_workflow, step
from spanflow.agents import Agent, ScriptedModel, ScriptedReply, UserMessage, pii_redactor, tool
from spanflow.agents.memory import Memory
from spanflow.agents.network import (
    NETWORK_RESOURCE_ID,
    NetworkChunk,
    NetworkError,
    NetworkStream,
    network,
    network_resume,
    network_thread_id,
)
from spanflow.agents.processors import Processor, ProcessorContext
from spanflow.agents.step import create_agent_step
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


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every nested key path of a payload, as the capture's ``payloadPaths`` lists them: dict
    keys at all levels joined by ``.``, a list of objects as ``[]`` and its first item's."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            out |= key_paths(item, path)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        out |= key_paths(value[0], prefix + "[]")
    return out


AGENT_CHUNK = (
    "a sub-agent's chunk re-emitted as it is: the inner payload is spanflow's agent stream "
    "chunk (its own shape, which predates networks), not something the network builds"
)
# The only places where spanflow's chunks differ from Mastra's capture below the top level:
# per chunk type, (paths Mastra has and spanflow not, paths spanflow has and Mastra not, why).
# A listed path allows what is under it too; every listed path must still differ.
ALLOWED_DIFFERENCES: dict[str, tuple[set[str], set[str], str]] = {
    "routing-agent-end": (
        {"conversationContext[].content.parts[].createdAt"},
        set(),
        "Mastra's message part has a createdAt only in the call that saved the message "
        "(iteration 0; its later recalls have none); spanflow's parts never do",
    ),
    "agent-execution-start": (
        {"args.conversationContext[].content.parts[].createdAt"},
        set(),
        "the routing call's conversationContext (see routing-agent-end)",
    ),
    "agent-execution-event-start": (
        {"payload.id", "payload.messageId"},
        {"payload.agentId"},
        AGENT_CHUNK,
    ),
    "agent-execution-event-step-start": ({"payload.startedAt"}, set(), AGENT_CHUNK),
    "agent-execution-event-text-end": ({"payload.type"}, set(), AGENT_CHUNK),
    "agent-execution-event-step-finish": (
        {
            "payload.messages",
            "payload.metadata",
            "payload.output.steps",
            "payload.output.usage.raw",
            "payload.processorRetryCount",
        },
        {
            "payload.output.usage.cacheCreationInputTokens",
            "payload.output.usage.cachedInputTokens",
            "payload.output.usage.reasoningTokens",
        },
        AGENT_CHUNK,
    ),
    "agent-execution-event-finish": (
        {
            "payload.messageId",
            "payload.messages",
            "payload.metadata",
            "payload.output.steps",
            "payload.output.text",
            "payload.output.toolCalls",
            "payload.output.usage.raw",
            "payload.processorRetryCount",
            "payload.stepResult.isContinued",
        },
        {
            "payload.output.usage.cacheCreationInputTokens",
            "payload.output.usage.cachedInputTokens",
            "payload.output.usage.reasoningTokens",
            "payload.usage",
        },
        AGENT_CHUNK,
    ),
    "workflow-execution-end": (
        set(),
        {"result.state", "result.steps.plan.payload"},
        "the result is the workflow run's own wire form (`WorkflowResult.to_dict`, which "
        "predates networks): it has the run's state, and every step's payload where "
        "Mastra's leaves the first step's out",
    ),
}


def unexplained(paths: set[str], allowed: set[str]) -> set[str]:
    return {
        p for p in paths if not any(p == a or p.startswith((a + ".", a + "[]")) for a in allowed)
    }


async def test_the_chunks_match_mastras_capture_key_for_key_at_every_level() -> None:
    out = network(network_agent(*three_primitives()), TASK, max_steps=6)
    wire = [chunk.to_dict() for chunk in await collect(out)]
    ours = [
        c
        for i, c in enumerate(wire)
        if not (i and c["type"].endswith("text-delta") and c["type"] == wire[i - 1]["type"])
    ]

    assert [c["type"] for c in ours] == [c["type"] for c in MASTRA["chunks"]]
    used: set[tuple[str, str]] = set()
    for index, (chunk, theirs) in enumerate(zip(ours, MASTRA["chunks"], strict=True)):
        mine, mastra = key_paths(chunk["payload"]), set(theirs["payloadPaths"])
        missing_ok, extra_ok, _why = ALLOWED_DIFFERENCES.get(chunk["type"], (set(), set(), ""))
        assert unexplained(mastra - mine, missing_ok) == set(), (index, chunk["type"], "missing")
        assert unexplained(mine - mastra, extra_ok) == set(), (index, chunk["type"], "extra")
        for path in (mastra - mine) | (mine - mastra):
            used |= {
                (chunk["type"], a) for a in missing_ok | extra_ok if not unexplained({path}, {a})
            }
    listed = {(t, a) for t, (m, e, _) in ALLOWED_DIFFERENCES.items() for a in m | e}
    assert listed - used == set()  # no allowance outlives its difference


async def test_payloads_below_the_top_level_are_mastras() -> None:
    out = network(network_agent(*three_primitives()), TASK, max_steps=6)
    wire = [chunk.to_dict() for chunk in await collect(out)]
    by_type = {c["type"]: c["payload"] for c in wire}

    route_end = [c["payload"] for c in wire if c["type"] == "routing-agent-end"]
    for kind in ("agent", "workflow", "tool"):
        args = by_type[f"{kind}-execution-start"]["args"]
        decision = next(r for r in route_end if r["primitiveType"] == kind)
        # the primitive's args are the routing call's decision, its runId and context
        assert args["runId"] == decision["runId"]
        assert args["conversationContext"] == decision["conversationContext"]
    assert by_type["routing-agent-end"]["usage"] == {
        "inputTokens": 10,
        "outputTokens": 5,
        "totalTokens": 15,
        "raw": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
    }
    assert by_type["agent-execution-end"]["usage"] == route_end[0]["usage"]
    end = by_type["workflow-execution-end"]
    assert end["result"]["runId"] == out.run_id  # Mastra's: the network run
    assert end["runId"] != out.run_id  # the workflow run


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


async def test_a_suspended_workflow_suspends_the_network_and_resumes_with_another_store_object(
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


# -- where a suspended network keeps its state ---------------------------------------------------


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str


def tenant_booking(storage: SqliteStorage, seen: list[dict[str, Any]]) -> Workflow:
    """A booking workflow whose request context must be exactly ``{tenant}``; its approval
    step records the request context it sees."""

    async def approve_for_tenant(ctx: StepContext[Plan]) -> Plan:
        seen.append(ctx.request_context.to_dict())
        return await approve(ctx)

    return (
        create_workflow(
            id="tenant-wf",
            input_schema=City,
            output_schema=Plan,
            storage=storage,
            request_context_schema=Tenant,
        )
        .then(plan)
        .then(
            create_step(
                id="approve", execute=approve_for_tenant, input_schema=Plan, output_schema=Plan
            )
        )
        .commit()
    )


async def test_a_network_keeps_its_state_beside_the_run_not_in_its_request_context(
    tmp_path: Path,
) -> None:
    database = tmp_path / "runs.db"
    seen: list[dict[str, Any]] = []
    first = network_agent(
        route("tenantWf", "workflow", '{"city":"Tokyo"}', "book it"),
        workflows={"tenantWf": tenant_booking(SqliteStorage(database), seen)},
    )
    out = network(first, "Book Tokyo", max_steps=3, request_context={"tenant": "acme"})
    suspended = await out.result
    assert suspended.status == "suspended"  # a strict request-context schema is no obstacle
    assert suspended.suspended is not None
    run_id = suspended.suspended["runId"]

    # Another process: new objects on the same file find the run and the network's state.
    store = SqliteStorage(database)
    workflow = tenant_booking(store, seen)
    stored = await workflow.get_run(run_id)
    assert stored is not None
    assert stored.snapshot["requestContext"] == {"tenant": "acme"}  # only the caller's
    kept = await store.get_thread(network_thread_id(run_id), resource_id=NETWORK_RESOURCE_ID)
    assert kept is not None
    assert kept.metadata["network"]["runId"] == out.run_id

    later = network_agent(check(True, "booked", "Booked."), workflows={"tenantWf": workflow})
    resumed = await network_resume(later, {"approved": True}, workflow_run_id=run_id)
    done = await resumed.result

    assert done.status == "success"
    assert seen == [{"tenant": "acme"}, {"tenant": "acme"}]  # before and after the resume
    stored = await workflow.get_run(run_id)
    assert stored is not None
    assert stored.snapshot["requestContext"] == {"tenant": "acme"}
    # the run has ended: its network state is gone
    assert (
        await store.get_thread(network_thread_id(run_id), resource_id=NETWORK_RESOURCE_ID) is None
    )


async def test_a_workflow_run_not_started_by_a_network_cannot_be_resumed_as_one(
    tmp_path: Path,
) -> None:
    workflow = booking(SqliteStorage(tmp_path / "runs.db"))
    run = await workflow.create_run()
    assert (await run.start({"city": "Tokyo"})).status == "suspended"

    agent = network_agent(workflows={"bookWf": workflow})
    with pytest.raises(NetworkError, match="was not started by a network"):
        await network_resume(agent, {"approved": True}, workflow_run_id=run.run_id)


async def test_a_resumed_network_counts_the_workflows_model_calls_once(tmp_path: Path) -> None:
    database = tmp_path / "runs.db"

    def helped(storage: SqliteStorage) -> Workflow:
        helper = Agent(
            id="helper", model=ScriptedModel([ScriptedReply("sure", usage=Usage(100, 50, 150))])
        )
        return (
            create_workflow(id="helped-wf", storage=storage)
            .then(create_agent_step(helper))
            .then(create_step(id="approve", execute=approve_anything))
            .commit()
        )

    first = network_agent(
        route("helpedWf", "workflow", '{"prompt":"hi"}', "ask the helper"),
        workflows={"helpedWf": helped(SqliteStorage(database))},
    )
    out = network(first, "Ask the helper", max_steps=3)
    suspended = await out.result
    assert suspended.suspended is not None
    assert suspended.usage == Usage(10 + 100, 5 + 50, 15 + 150)

    later = network_agent(
        check(True, "done", "Done."), workflows={"helpedWf": helped(SqliteStorage(database))}
    )
    resumed = await network_resume(
        later, {"ok": True}, workflow_run_id=suspended.suspended["runId"]
    )
    # the route, the helper (before the suspension, once) and the check
    assert (await resumed.result).usage == Usage(10 + 100 + 4, 5 + 50 + 2, 15 + 150 + 6)


async def approve_anything(ctx: StepContext[Any]) -> dict[str, Any]:
    if ctx.resume_data is None:
        ctx.suspend({"question": "ok?"})
    return {"ok": ctx.resume_data["ok"]}
