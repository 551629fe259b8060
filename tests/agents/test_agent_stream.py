"""The agent loop as its stream shows it: chunk types and order, tools, errors, limits, abort."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from spanflow import RequestContext
from spanflow.agents import (
    Agent,
    AgentChunk,
    ModelError,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    ToolArgumentsError,
    ToolContext,
    ToolErrorPayload,
    ToolMessage,
    ToolResultPayload,
    UnknownToolError,
    UserMessage,
    create_tool,
    tool,
)
from spanflow.agents.models import ModelRequest, last_tool_results, last_user_text
from spanflow.errors import InvalidInputError, SyncInLoopError
from spanflow.usage import Usage

from .helpers import chunk_types, collect

USAGE = {
    "inputTokens": 3,
    "outputTokens": 4,
    "totalTokens": 7,
    "cachedInputTokens": 0,
    "cacheCreationInputTokens": 0,
    "reasoningTokens": 0,
}


class City(BaseModel):
    city: str


@tool
async def get_weather(city: str) -> dict[str, Any]:
    """The current weather of a city."""
    return {"city": city, "celsius": 21}


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def weather_agent(*replies: str | ScriptedReply, **kwargs: Any) -> Agent:
    return Agent(
        id="weather",
        instructions="Answer briefly.",
        model=ScriptedModel(list(replies)),
        tools=[get_weather, add],
        **kwargs,
    )


async def test_plain_text_streams_every_chunk_type_in_mastra_wire_shape() -> None:
    agent = weather_agent(ScriptedReply("Hello there friend", usage=Usage(3, 4, 7)))
    out = agent.stream("Hi!", run_id="run-1")

    chunks = [chunk.to_dict() for chunk in await collect(out)]

    def agent_chunk(type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": type_, "runId": "run-1", "from": "AGENT", "payload": payload}

    assert chunks == [
        agent_chunk("start", {"agentId": "weather"}),
        agent_chunk("step-start", {"messageId": "run-1-1", "request": {}, "warnings": []}),
        agent_chunk("text-start", {"id": "run-1-text-1"}),
        agent_chunk("text-delta", {"id": "run-1-text-1", "text": "Hello "}),
        agent_chunk("text-delta", {"id": "run-1-text-1", "text": "there "}),
        agent_chunk("text-delta", {"id": "run-1-text-1", "text": "friend"}),
        agent_chunk("text-end", {"id": "run-1-text-1"}),
        agent_chunk(
            "step-finish",
            {
                "messageId": "run-1-1",
                "stepResult": {"reason": "stop", "isContinued": False},
                "output": {"text": "Hello there friend", "toolCalls": [], "usage": USAGE},
            },
        ),
        agent_chunk(
            "finish",
            {"stepResult": {"reason": "stop"}, "output": {"usage": USAGE}, "usage": USAGE},
        ),
    ]
    assert await out.text == "Hello there friend"
    assert await out.finish_reason == "stop"
    assert await out.usage == Usage(3, 4, 7)
    result = await out.result
    assert result.status == "success"
    assert result.run_id == "run-1"
    assert [step.index for step in result.steps] == [1]


async def test_text_stream_yields_only_the_text() -> None:
    out = weather_agent("one two three").stream("go")
    assert [piece async for piece in out.text_stream] == ["one ", "two ", "three"]


async def test_one_tool_call_runs_the_tool_and_feeds_the_result_back() -> None:
    agent = weather_agent(
        ScriptedReply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Paris"})]),
        "It is 21 degrees.",
    )
    out = agent.stream("Weather in Paris?", run_id="r")
    chunks = await collect(out)

    assert chunk_types(chunks) == [
        "start",
        "step-start",
        "tool-call",
        "tool-result",
        "step-finish",
        "step-start",
        "text-start",
        "text-delta",
        "text-delta",
        "text-delta",
        "text-delta",
        "text-end",
        "step-finish",
        "finish",
    ]
    by_type = {c.type: c.to_dict()["payload"] for c in chunks}
    assert by_type["tool-call"] == {
        "toolCallId": "call_1_1",
        "toolName": "get_weather",
        "args": {"city": "Paris"},
    }
    assert by_type["tool-result"] == {
        "toolCallId": "call_1_1",
        "toolName": "get_weather",
        "args": {"city": "Paris"},
        "result": {"city": "Paris", "celsius": 21},
        "isError": False,
    }
    first_finish = chunks[4].to_dict()["payload"]
    assert first_finish["stepResult"] == {"reason": "tool-calls", "isContinued": True}
    assert first_finish["output"]["toolCalls"] == [by_type["tool-call"]]

    result = await out.result
    assert result.text == "It is 21 degrees."
    assert [(c.tool_name, c.args) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert [r.result for r in result.tool_results] == [{"city": "Paris", "celsius": 21}]
    model = agent.model
    assert isinstance(model, ScriptedModel)
    second = model.requests[1]
    assert second.messages[-1] == ToolMessage(
        "call_1_1", "get_weather", '{"city": "Paris", "celsius": 21}'
    )


async def test_several_tool_calls_in_one_step_are_fed_back_in_call_order() -> None:
    agent = weather_agent(
        ScriptedReply(
            "Let me check.",
            tool_calls=[
                ScriptedToolCall("get_weather", {"city": "Oslo"}),
                ScriptedToolCall("add", {"a": 2, "b": 3}),
                ScriptedToolCall("get_weather", {"city": "Rome"}),
            ],
        ),
        "Done.",
    )
    out = agent.stream("go")
    chunks = await collect(out)

    types = chunk_types(chunks)
    assert types[:8] == [
        "start",
        "step-start",
        "text-start",
        "text-delta",
        "text-delta",
        "text-delta",
        "text-end",
        "tool-call",
    ]
    assert types.count("tool-call") == 3
    assert types.count("tool-result") == 3
    assert types.index("step-finish") > max(i for i, t in enumerate(types) if t == "tool-result")
    result = await out.result
    assert [r.result for r in result.tool_results] == [
        {"city": "Oslo", "celsius": 21},
        5,
        {"city": "Rome", "celsius": 21},
    ]
    model = agent.model
    assert isinstance(model, ScriptedModel)
    fed_back = last_tool_results(model.requests[1])
    assert [(m.tool_call_id, m.content) for m in fed_back] == [
        ("call_1_1", '{"city": "Oslo", "celsius": 21}'),
        ("call_1_2", "5"),
        ("call_1_3", '{"city": "Rome", "celsius": 21}'),
    ]
    assert result.steps[0].text == "Let me check."


async def test_tool_calls_of_one_step_run_concurrently() -> None:
    started = {name: asyncio.Event() for name in ("left", "right")}

    def waiting_tool(name: str, other: str) -> Any:
        async def execute(data: dict[str, Any]) -> str:
            started[name].set()
            await started[other].wait()  # deadlocks unless both run at once
            return name

        return create_tool(id=name, description=f"{name} side", execute=execute)

    agent = Agent(
        id="parallel",
        model=ScriptedModel(
            [
                ScriptedReply(tool_calls=[ScriptedToolCall("left"), ScriptedToolCall("right")]),
                "both done",
            ]
        ),
        tools=[waiting_tool("left", "right"), waiting_tool("right", "left")],
    )

    result = await asyncio.wait_for(agent.generate("go"), timeout=5)

    assert result.status == "success"
    assert sorted(r.result for r in result.tool_results) == ["left", "right"]


async def test_tool_errors_are_fed_back_to_the_model_and_the_loop_goes_on() -> None:
    async def explode(data: City) -> str:
        raise RuntimeError(f"no data for {data.city}")

    def reply(request: ModelRequest) -> str | ScriptedReply:
        results = last_tool_results(request)
        if not results:
            return ScriptedReply(
                tool_calls=[
                    ScriptedToolCall("explode", {"city": "Lima"}),
                    ScriptedToolCall("teleport", {"to": "Mars"}),
                    ScriptedToolCall("get_weather", '{"city": "Par'),
                    ScriptedToolCall("get_weather", {"town": "Bern"}),
                ]
            )
        return " | ".join(r.content for r in results)

    agent = Agent(
        id="careful",
        model=ScriptedModel(reply),
        tools=[
            get_weather,
            create_tool(id="explode", description="x", execute=explode, input_schema=City),
        ],
    )
    out = agent.stream("go")
    chunks = await collect(out)
    result = await out.result

    errors = [c.payload for c in chunks if isinstance(c.payload, ToolErrorPayload)]
    assert [(e.tool_name, type(e.error)) for e in sorted(errors, key=lambda e: e.tool_call_id)] == [
        ("explode", RuntimeError),
        ("teleport", UnknownToolError),
        ("get_weather", ToolArgumentsError),
        ("get_weather", ToolArgumentsError),
    ]
    assert not [c for c in chunks if isinstance(c.payload, ToolResultPayload)]
    assert result.status == "success"
    assert result.text.split(" | ") == [
        "Error: no data for Lima",
        "Error: unknown tool 'teleport'; available tools: explode, get_weather",
        "Error: invalid arguments for tool 'get_weather': not valid JSON "
        "(Unterminated string starting at: line 1 column 10 (char 9))",
        "Error: invalid arguments for tool 'get_weather': field 'city': Field required",
    ]
    malformed = next(e for e in errors if e.tool_call_id == "call_1_3")
    assert malformed.to_dict()["args"] == '{"city": "Par'
    assert all(r.is_error for r in result.tool_results)


async def test_max_steps_stops_a_model_that_keeps_calling_tools() -> None:
    agent = Agent(
        id="loopy",
        model=ScriptedModel(
            lambda request: ScriptedReply(tool_calls=[ScriptedToolCall("add", {"a": 1, "b": 1})])
        ),
        tools=[add],
        max_steps=3,
    )
    out = agent.stream("count forever")
    chunks = await collect(out)
    result = await out.result

    assert result.status == "success"
    assert result.max_steps_reached
    assert len(result.steps) == 3
    assert result.finish_reason == "tool-calls"
    assert len(result.tool_results) == 3
    step_finishes = [
        c.to_dict()["payload"]["stepResult"] for c in chunks if c.type == "step-finish"
    ]
    assert step_finishes == [
        {"reason": "tool-calls", "isContinued": True},
        {"reason": "tool-calls", "isContinued": True},
        {"reason": "tool-calls", "isContinued": False},
    ]
    assert chunks[-1].type == "finish"
    assert (await agent.generate("again", max_steps=1)).steps[0].index == 1


async def test_usage_is_summed_over_steps_and_reported_per_step() -> None:
    agent = weather_agent(
        ScriptedReply(
            tool_calls=[ScriptedToolCall("add", {"a": 1, "b": 2})],
            usage=Usage(input_tokens=10, output_tokens=2, total_tokens=12, cached_input_tokens=4),
        ),
        ScriptedReply(
            "three",
            usage=Usage(input_tokens=20, output_tokens=1, total_tokens=21, reasoning_tokens=5),
        ),
    )
    out = agent.stream("1+2?")
    chunks = await collect(out)

    expected = Usage(
        input_tokens=30, output_tokens=3, total_tokens=33, reasoning_tokens=5, cached_input_tokens=4
    )
    assert await out.usage == expected
    assert chunks[-1].to_dict()["payload"]["output"]["usage"] == expected.to_dict()
    per_step = [
        c.to_dict()["payload"]["output"]["usage"]["totalTokens"]
        for c in chunks
        if c.type == "step-finish"
    ]
    assert per_step == [12, 21]


async def test_default_scripted_usage_counts_words() -> None:
    result = await Agent(id="a", model=ScriptedModel(["four words right here"])).generate(
        "two words"
    )
    assert result.usage == Usage(input_tokens=2, output_tokens=4, total_tokens=6)


async def test_a_model_error_ends_the_stream_with_an_error_chunk_and_a_failed_result() -> None:
    boom = ModelError("model endpoint http://x/v1 returned HTTP 500: overloaded", status_code=500)
    agent = weather_agent(ScriptedReply("partial answer", error=boom))
    out = agent.stream("go", run_id="r")
    chunks = await collect(out)

    assert chunk_types(chunks) == [
        "start",
        "step-start",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "error",
    ]
    assert chunks[-1].to_dict()["payload"] == {
        "error": {
            "name": "ModelError",
            "message": "model endpoint http://x/v1 returned HTTP 500: overloaded",
        }
    }
    result = await out.result
    assert result.status == "failed"
    assert result.error is boom
    assert result.finish_reason == "error"
    assert await out.finish_reason == "error"


async def test_generate_returns_a_failed_result_instead_of_raising() -> None:
    result = await weather_agent("only one").generate("go", max_steps=1)
    assert result.status == "success"
    agent = weather_agent()
    failed = await agent.generate("go")
    assert failed.status == "failed"
    assert isinstance(failed.error, ModelError)
    assert (
        str(failed.error) == "ScriptedModel has no reply for call 1: only 0 replies were scripted"
    )


async def test_abort_signal_ends_the_stream_with_an_abort_chunk() -> None:
    signal = asyncio.Event()
    entered = asyncio.Event()

    async def slow(data: dict[str, Any], ctx: ToolContext) -> str:
        assert ctx.abort_signal is signal
        entered.set()
        await asyncio.sleep(30)
        return "never"

    agent = Agent(
        id="slow",
        model=ScriptedModel([ScriptedReply(tool_calls=[ScriptedToolCall("slow")]), "unreached"]),
        tools=[create_tool(id="slow", description="takes forever", execute=slow)],
    )
    out = agent.stream("go", abort_signal=signal)
    await entered.wait()
    signal.set()
    chunks = await asyncio.wait_for(collect(out), timeout=5)

    assert chunk_types(chunks) == ["start", "step-start", "tool-call", "abort"]
    result = await out.result
    assert result.status == "aborted"
    assert result.finish_reason == "abort"


async def test_abort_during_a_model_call_and_before_start() -> None:
    agent = weather_agent(ScriptedReply("late", delay=30))
    out = agent.stream("go")
    await asyncio.sleep(0.01)
    out.abort()
    assert chunk_types(await asyncio.wait_for(collect(out), timeout=5)) == [
        "start",
        "step-start",
        "abort",
    ]

    already = asyncio.Event()
    already.set()
    result = await weather_agent("never").generate("go", abort_signal=already)
    assert result.status == "aborted"
    assert result.steps == []


async def test_cancelling_the_caller_of_generate_propagates() -> None:
    agent = weather_agent(ScriptedReply("late", delay=30))
    task = asyncio.ensure_future(agent.generate("go"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_late_consumer_gets_every_chunk_and_awaiting_never_deadlocks() -> None:
    out = weather_agent(
        ScriptedReply(tool_calls=[ScriptedToolCall("add", {"a": 1, "b": 1})]), "two"
    ).stream("go")

    result = await asyncio.wait_for(out.result, timeout=5)  # nobody iterates
    assert result.text == "two"

    first = await collect(out)
    second = [chunk async for chunk in out.full_stream]
    assert chunk_types(first) == chunk_types(second) == chunk_types(out.chunks)
    assert first[0].type == "start"
    assert first[-1].type == "finish"


async def test_concurrent_consumers_see_the_same_chunks() -> None:
    out = weather_agent("a b c d e f").stream("go")
    one, two = await asyncio.gather(collect(out), collect(out))
    assert [c.to_dict() for c in one] == [c.to_dict() for c in two]


async def test_instructions_may_depend_on_the_request_context_and_tools_see_it() -> None:
    seen: list[Any] = []

    async def whoami(data: dict[str, Any], ctx: ToolContext) -> str:
        seen.append(
            (ctx.request_context.get("user"), ctx.agent_id, ctx.tool_name, len(ctx.messages))
        )
        return "ok"

    def reply(request: ModelRequest) -> ScriptedReply | str:
        if last_tool_results(request):
            return request.messages[0].content
        return ScriptedReply(tool_calls=[ScriptedToolCall("whoami")])

    agent = Agent(
        id="ctx",
        instructions=lambda rc: f"You serve {rc.get('user')}.",
        model=ScriptedModel(reply),
        tools={"whoami": create_tool(id="ignored-name", description="who", execute=whoami)},
    )
    result = await agent.generate("hi", request_context=RequestContext({"user": "ada"}))

    assert result.text == "You serve ada."
    assert seen == [("ada", "ctx", "whoami", 3)]


async def test_messages_can_be_given_as_chat_dicts() -> None:
    model = ScriptedModel(lambda request: f"you said {last_user_text(request)}")
    agent = Agent(id="echo", model=model)
    result = await agent.generate(
        [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
        ]
    )
    assert result.text == "you said second"
    assert model.requests[0].messages[0] == UserMessage("first")
    with pytest.raises(InvalidInputError, match=r"messages\[1\]: field 'role'"):
        await agent.generate([{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}])


def test_generate_sync_runs_outside_a_loop_and_refuses_inside_one() -> None:
    result = weather_agent("sync works").generate_sync("go")
    assert result.text == "sync works"

    async def inside() -> None:
        with pytest.raises(SyncInLoopError):
            weather_agent("x").generate_sync("go")

    asyncio.run(inside())


async def test_chunks_are_typed_for_python_code() -> None:
    chunks: list[AgentChunk] = await collect(
        weather_agent(
            ScriptedReply(tool_calls=[ScriptedToolCall("add", {"a": 2, "b": 2})]), "4"
        ).stream("2+2")
    )
    results = [c.payload for c in chunks if isinstance(c.payload, ToolResultPayload)]
    assert [(r.tool_name, r.result) for r in results] == [("add", 4)]
