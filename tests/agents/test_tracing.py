"""Agent spans: invoke_agent, chat and execute_tool with the GenAI attributes, nesting, options."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from spanflow_otel.testing import SpanCapture, dump_spans

from spanflow import (
    Spanflow,
    StepContext,
    TracingConfig,
    TracingOptions,
    create_step,
    create_workflow,
)
from spanflow.agents import (
    Agent,
    GenAITracing,
    ModelError,
    ModelSettings,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    create_tool,
    tool,
    workflow_as_tool,
)
from spanflow.storage.memory import MemoryStorage
from spanflow.tracing import Redactor
from spanflow.usage import Usage

from .helpers import FakeClock

STATUSES = ["spanflow.agent.status", "spanflow.chat.status", "spanflow.tool.status"]
JSON_ATTRIBUTES = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
    }
)


def json_attributes(span: ReadableSpan) -> dict[str, Any]:
    """The span's JSON-valued GenAI attributes, parsed."""
    attributes = span.attributes or {}
    return {key: json.loads(str(attributes[key])) for key in JSON_ATTRIBUTES if key in attributes}


@tool
async def lookup(topic: str) -> str:
    """Look a topic up."""
    with trace.get_tracer("wiki-client").start_as_current_span("GET /wiki"):
        pass
    return f"facts about {topic}"


def researcher(
    *replies: str | ScriptedReply, config: TracingConfig | None = None, **kwargs: Any
) -> Agent:
    return Agent(
        id="researcher",
        name="Researcher",
        instructions="Be brief.",
        model=ScriptedModel(list(replies), model_id="scripted-1"),
        tools=[lookup],
        instrumentation=GenAITracing(config, clock=FakeClock()),
        **kwargs,
    )


def two_steps() -> tuple[ScriptedReply, ScriptedReply]:
    return (
        ScriptedReply(
            tool_calls=[ScriptedToolCall("lookup", {"topic": "otters"})],
            usage=Usage(10, 1, 11),
        ),
        ScriptedReply("Otters hold hands.", usage=Usage(20, 4, 24)),
    )


async def test_a_tool_calling_run_is_a_tree_of_genai_spans(span_capture: SpanCapture) -> None:
    agent = researcher(*two_steps(), model_settings=ModelSettings(temperature=0.2, max_tokens=50))
    result = await agent.generate("Tell me about otters", run_id="run-1", thread_id="thread-7")

    assert result.status == "success"
    assert span_capture.dump(attributes=lambda key: key not in JSON_ATTRIBUTES) == "\n".join(
        [
            "invoke_agent Researcher [INTERNAL] UNSET {gen_ai.agent.id='researcher',"
            " gen_ai.agent.name='Researcher', gen_ai.conversation.id='thread-7',"
            " gen_ai.operation.name='invoke_agent', gen_ai.provider.name='spanflow.scripted',"
            " gen_ai.request.model='scripted-1', gen_ai.response.finish_reasons=['stop'],"
            " spanflow.agent.id='researcher', spanflow.agent.run_id='run-1',"
            " spanflow.agent.status='success', spanflow.agent.steps=2, spanflow.run.id='run-1',"
            " spanflow.usage.input_tokens=30, spanflow.usage.output_tokens=5,"
            " spanflow.usage.total_tokens=35}",
            "  chat scripted-1 [CLIENT] UNSET {gen_ai.operation.name='chat',"
            " gen_ai.provider.name='spanflow.scripted', gen_ai.request.max_tokens=50,"
            " gen_ai.request.model='scripted-1', gen_ai.request.temperature=0.2,"
            " gen_ai.response.finish_reasons=['tool-calls'], gen_ai.response.id='scripted-1',"
            " gen_ai.response.model='scripted-1', gen_ai.response.time_to_first_chunk=0.25,"
            " gen_ai.usage.input_tokens=10, gen_ai.usage.output_tokens=1,"
            " spanflow.agent.id='researcher', spanflow.chat.status='success',"
            " spanflow.run.id='run-1', spanflow.time_to_first_token_ms=250.0}",
            "  execute_tool lookup [INTERNAL] UNSET {gen_ai.operation.name='execute_tool',"
            " gen_ai.tool.call.arguments='{\"topic\":\"otters\"}', gen_ai.tool.call.id='call_1_1',"
            " gen_ai.tool.call.result='\"facts about otters\"',"
            " gen_ai.tool.description='Look a topic up.', gen_ai.tool.name='lookup',"
            " gen_ai.tool.type='function', spanflow.agent.id='researcher',"
            " spanflow.run.id='run-1', spanflow.tool.status='success'}",
            "    GET /wiki [INTERNAL] UNSET",
            "  chat scripted-1 [CLIENT] UNSET {gen_ai.operation.name='chat',"
            " gen_ai.provider.name='spanflow.scripted', gen_ai.request.max_tokens=50,"
            " gen_ai.request.model='scripted-1', gen_ai.request.temperature=0.2,"
            " gen_ai.response.finish_reasons=['stop'], gen_ai.response.id='scripted-2',"
            " gen_ai.response.model='scripted-1', gen_ai.response.time_to_first_chunk=0.25,"
            " gen_ai.usage.input_tokens=20, gen_ai.usage.output_tokens=4,"
            " spanflow.agent.id='researcher', spanflow.chat.status='success',"
            " spanflow.run.id='run-1', spanflow.time_to_first_token_ms=250.0}",
        ]
    )
    agent_span = next(s for s in span_capture.spans if s.name.startswith("invoke_agent"))
    assert result.trace_id == f"{agent_span.context.trace_id:032x}"
    assert result.span_id == f"{agent_span.context.span_id:016x}"
    assert all(not span.events for span in span_capture.spans)  # no span event per text delta


async def test_messages_are_recorded_in_the_genai_json_shape(span_capture: SpanCapture) -> None:
    await researcher(*two_steps()).generate("Tell me about otters")
    spans = {span.name: span for span in span_capture.spans}  # the last chat span wins
    agent = json_attributes(spans["invoke_agent Researcher"])
    chat = json_attributes(spans["chat scripted-1"])
    user = {"role": "user", "parts": [{"type": "text", "content": "Tell me about otters"}]}
    call = {
        "type": "tool_call",
        "id": "call_1_1",
        "name": "lookup",
        "arguments": {"topic": "otters"},
    }
    answer = {
        "role": "assistant",
        "parts": [{"type": "text", "content": "Otters hold hands."}],
        "finish_reason": "stop",
    }
    instructions = [{"type": "text", "content": "Be brief."}]

    assert agent == {
        "gen_ai.input.messages": [user],
        "gen_ai.output.messages": [answer],
        "gen_ai.system_instructions": instructions,
    }
    assert chat == {
        "gen_ai.input.messages": [
            user,
            {"role": "assistant", "parts": [call]},
            {
                "role": "tool",
                "parts": [
                    {
                        "type": "tool_call_response",
                        "id": "call_1_1",
                        "response": "facts about otters",
                    }
                ],
            },
        ],
        "gen_ai.output.messages": [answer],
        "gen_ai.system_instructions": instructions,
        "gen_ai.tool.definitions": [
            {
                "type": "function",
                "name": "lookup",
                "description": "Look a topic up.",
                "parameters": lookup.parameters,
            }
        ],
    }


async def test_tool_failures_are_errored_tool_spans_and_the_agent_carries_on(
    span_capture: SpanCapture,
) -> None:
    async def explode(data: dict[str, Any]) -> str:
        raise RuntimeError("backend down")

    agent = Agent(
        id="a",
        model=ScriptedModel(
            [
                ScriptedReply(
                    tool_calls=[
                        ScriptedToolCall("explode"),
                        ScriptedToolCall("nowhere"),
                        ScriptedToolCall("lookup", "{oops"),
                    ]
                ),
                "sorry",
            ]
        ),
        tools=[lookup, create_tool(id="explode", description="boom", execute=explode)],
    )
    result = await agent.generate("go", run_id="r")

    assert result.status == "success"
    view = [
        "gen_ai.tool.call.arguments",
        "spanflow.tool.status",
        "spanflow.agent.status",
        "error.type",
        "exception.type",
        "exception.message",
    ]
    assert dump_spans(span_capture.spans, attributes=view) == "\n".join(
        [
            "invoke_agent a [INTERNAL] UNSET {spanflow.agent.status='success'}",
            "  chat scripted [CLIENT] UNSET",
            "  execute_tool explode [INTERNAL] ERROR: backend down {error.type='RuntimeError',"
            " gen_ai.tool.call.arguments='{}', spanflow.tool.status='failed'}",
            "    • exception {exception.message='backend down', exception.type='RuntimeError'}",
            "  execute_tool nowhere [INTERNAL] ERROR: unknown tool 'nowhere'; available tools:"
            " explode, lookup {error.type='spanflow.agents.errors.UnknownToolError',"
            " gen_ai.tool.call.arguments='{}', spanflow.tool.status='failed'}",
            "    • exception {exception.message=\"unknown tool 'nowhere'; available tools:"
            " explode, lookup\", exception.type='spanflow.agents.errors.UnknownToolError'}",
            "  execute_tool lookup [INTERNAL] ERROR: invalid arguments for tool 'lookup': not"
            " valid JSON (Expecting property name enclosed in double quotes: line 1 column 2"
            " (char 1)) {error.type='spanflow.agents.errors.ToolArgumentsError',"
            " gen_ai.tool.call.arguments='\"{oops\"', spanflow.tool.status='failed'}",
            "    • exception {exception.message=\"invalid arguments for tool 'lookup': not valid"
            " JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char"
            " 1))\", exception.type='spanflow.agents.errors.ToolArgumentsError'}",
            "  chat scripted [CLIENT] UNSET",
        ]
    )


async def test_a_model_error_is_an_errored_chat_span_and_a_failed_agent_span(
    span_capture: SpanCapture,
) -> None:
    error = ModelError("model endpoint http://m/v1 returned HTTP 500: overloaded", status_code=500)
    result = await researcher(ScriptedReply("half an", error=error)).generate("go")

    assert result.status == "failed"
    view = [*STATUSES, "error.type", "http.*", "gen_ai.output.messages", "exception.type"]
    assert dump_spans(span_capture.spans, attributes=view) == "\n".join(
        [
            "invoke_agent Researcher [INTERNAL] ERROR: model endpoint http://m/v1 returned HTTP"
            " 500: overloaded {error.type='spanflow.agents.errors.ModelError',"
            " spanflow.agent.status='failed'}",
            "  • exception {exception.type='spanflow.agents.errors.ModelError'}",
            "  chat scripted-1 [CLIENT] ERROR: model endpoint http://m/v1 returned HTTP 500:"
            " overloaded {error.type='spanflow.agents.errors.ModelError',"
            ' gen_ai.output.messages=\'[{"role":"assistant","parts":[{"type":"text",'
            '"content":"half an"}]}]\', http.response.status_code=500,'
            " spanflow.chat.status='failed'}",
            "    • exception {exception.type='spanflow.agents.errors.ModelError'}",
        ]
    )


async def test_tags_metadata_and_request_context_keys_are_on_every_span(
    span_capture: SpanCapture,
) -> None:
    options = TracingOptions(
        tags=["beta", "eu"],
        metadata={"user": {"id": "u-42"}, "plan": "pro", "api_key": "sk-secret"},
        request_context_keys=["tenant.id"],
    )
    await researcher(*two_steps()).generate(
        "go", tracing_options=options, request_context={"tenant": {"id": "t-9"}}
    )

    spans = [s for s in span_capture.spans if not s.name.startswith("GET")]
    assert len(spans) == 4
    for span in spans:
        attributes = dict(span.attributes or {})
        assert attributes["spanflow.tag.beta"] is True
        assert attributes["spanflow.tag.eu"] is True
        assert attributes["spanflow.tags"] == ("beta", "eu")
        assert attributes["spanflow.metadata.user.id"] == "u-42"
        assert attributes["spanflow.metadata.plan"] == "pro"
        assert attributes["spanflow.metadata.api_key"] == "[REDACTED]"
        assert attributes["spanflow.metadata.tenant.id"] == "t-9"
        assert attributes["spanflow.agent.id"] == "researcher"


async def test_metadata_can_be_limited_to_the_agent_span(span_capture: SpanCapture) -> None:
    config = TracingConfig(metadata_on_every_span=False)
    await researcher(*two_steps(), config=config).generate(
        "go", tracing_options=TracingOptions(tags=["beta"])
    )
    tagged = sorted(
        s.name for s in span_capture.spans if "spanflow.tag.beta" in (s.attributes or {})
    )
    assert tagged == ["invoke_agent Researcher"]


async def test_inputs_and_outputs_can_be_hidden(span_capture: SpanCapture) -> None:
    await researcher(*two_steps()).generate(
        "secret plans", tracing_options=TracingOptions(hide_input=True)
    )
    keys = {key for span in span_capture.spans for key in (span.attributes or {})}
    assert not keys & {
        "gen_ai.input.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.definitions",
    }
    assert {"gen_ai.output.messages", "gen_ai.tool.call.result"} <= keys

    span_capture.clear()
    config = TracingConfig(capture_output=False)
    await researcher(*two_steps(), config=config).generate("go")
    keys = {key for span in span_capture.spans for key in (span.attributes or {})}
    assert not keys & {"gen_ai.output.messages", "gen_ai.tool.call.result"}
    assert "gen_ai.input.messages" in keys


async def test_arguments_and_messages_are_redacted_and_truncated(span_capture: SpanCapture) -> None:
    login = create_tool(
        id="login", description="", execute=lambda data: {"session": "s-1", "ok": True}
    )
    agent = Agent(
        id="a",
        model=ScriptedModel(
            [
                ScriptedReply(
                    tool_calls=[ScriptedToolCall("login", {"user": "ada", "password": "hunter2"})]
                ),
                "x" * 500,
            ]
        ),
        tools=[login],
        instrumentation=TracingConfig(max_attribute_length=120),
    )
    await agent.generate("log me in")

    tool_span = next(s for s in span_capture.spans if s.name == "execute_tool login")
    attributes = tool_span.attributes or {}
    assert attributes["gen_ai.tool.call.arguments"] == '{"user":"ada","password":"[REDACTED]"}'
    assert attributes["gen_ai.tool.call.result"] == '{"session":"[REDACTED]","ok":true}'
    agent_span = next(s for s in span_capture.spans if s.name == "invoke_agent a")
    output = str((agent_span.attributes or {})["gen_ai.output.messages"])
    assert len(output) == 120
    assert output.endswith("chars]")
    second_chat = [s for s in span_capture.spans if s.name == "chat scripted"][1]
    assert "hunter2" not in str((second_chat.attributes or {})["gen_ai.input.messages"])


async def test_an_agent_step_nests_under_its_step_span_and_inherits_the_run(
    span_capture: SpanCapture,
) -> None:
    agent = researcher(*two_steps())
    step = agent.as_step(
        tracing_options=TracingOptions(tags=["agent"], trace_id="abc", metadata={"role": "r"})
    )
    workflow = create_workflow(id="wf").then(step).commit()
    run = await workflow.create_run(run_id="wf-run")
    result = await run.start(
        {"prompt": "otters"},
        tracing_options=TracingOptions(tags=["beta"], metadata={"user": "u-1"}),
    )

    assert result.status == "success"
    view = ["spanflow.run.id", "spanflow.workflow.id", "spanflow.tags", "spanflow.metadata.*"]
    assert dump_spans(span_capture.spans, attributes=view, include_events=False) == "\n".join(
        [
            "invoke_workflow wf [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.run.id='wf-run', spanflow.tags=['beta'], spanflow.workflow.id='wf'}",
            "  workflow_step researcher [INTERNAL] UNSET {spanflow.metadata.user='u-1',"
            " spanflow.run.id='wf-run', spanflow.tags=['beta'], spanflow.workflow.id='wf'}",
            "    invoke_agent Researcher [INTERNAL] UNSET {spanflow.metadata.role='r',"
            " spanflow.metadata.user='u-1', spanflow.run.id='wf-run',"
            " spanflow.tags=['beta', 'agent'], spanflow.workflow.id='wf'}",
            "      chat scripted-1 [CLIENT] UNSET {spanflow.metadata.role='r',"
            " spanflow.metadata.user='u-1', spanflow.run.id='wf-run',"
            " spanflow.tags=['beta', 'agent'], spanflow.workflow.id='wf'}",
            "      execute_tool lookup [INTERNAL] UNSET {spanflow.metadata.role='r',"
            " spanflow.metadata.user='u-1', spanflow.run.id='wf-run',"
            " spanflow.tags=['beta', 'agent'], spanflow.workflow.id='wf'}",
            "        GET /wiki [INTERNAL] UNSET",
            "      chat scripted-1 [CLIENT] UNSET {spanflow.metadata.role='r',"
            " spanflow.metadata.user='u-1', spanflow.run.id='wf-run',"
            " spanflow.tags=['beta', 'agent'], spanflow.workflow.id='wf'}",
        ]
    )
    assert len({span.context.trace_id for span in span_capture.spans}) == 1  # "abc" was ignored


async def test_an_agent_called_inside_a_user_step_nests_under_it(span_capture: SpanCapture) -> None:
    agent = researcher("Fine.")

    async def ask(ctx: StepContext[Any]) -> str:
        result = await agent.generate("how are you?")
        assert (
            result.trace_id
            == ctx.tracing.current_span.get_span_context().trace_id.to_bytes(16).hex()
        )
        return result.text

    workflow = create_workflow(id="wf").then(create_step(id="ask", execute=ask)).commit()
    assert (await (await workflow.create_run()).start(None)).result == "Fine."
    assert dump_spans(span_capture.spans, attributes=None, include_events=False) == "\n".join(
        [
            "invoke_workflow wf [INTERNAL] UNSET",
            "  workflow_step ask [INTERNAL] UNSET",
            "    invoke_agent Researcher [INTERNAL] UNSET",
            "      chat scripted-1 [CLIENT] UNSET",
        ]
    )


async def test_explicit_trace_ids_place_a_top_level_agent_call(span_capture: SpanCapture) -> None:
    child = await researcher("a").generate(
        "go", tracing_options=TracingOptions(trace_id="ABC", parent_span_id="12")
    )
    assert child.trace_id == "00000000000000000000000000000abc"
    root = await researcher("b").generate("go", tracing_options=TracingOptions(trace_id="def"))
    assert root.trace_id == "00000000000000000000000000000def"
    traced = await researcher("c").generate(
        "go",
        tracing_options=TracingOptions(
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ),
    )
    assert traced.trace_id == "0af7651916cd43dd8448eb211c80319c"

    agents = sorted(
        (s for s in span_capture.spans if s.name.startswith("invoke_agent")),
        key=lambda s: s.context.trace_id,
    )
    parents = [(s.parent.span_id if s.parent else None) for s in agents]
    assert parents == [0x12, None, 0xB7AD6B7169203331]


async def test_a_web_request_span_is_a_parent_but_does_not_make_the_call_nested(
    span_capture: SpanCapture,
) -> None:
    tracer = trace.get_tracer("web")
    with tracer.start_as_current_span("POST /chat") as request:
        joined = await researcher("a").generate("go")
        explicit = await researcher("b").generate(
            "go", tracing_options=TracingOptions(trace_id="feed", parent_span_id="beef")
        )
    assert joined.trace_id == f"{request.get_span_context().trace_id:032x}"
    assert explicit.trace_id == "0000000000000000000000000000feed"


async def test_a_workflow_used_as_a_tool_runs_under_the_tool_span(
    span_capture: SpanCapture,
) -> None:
    async def double(ctx: StepContext[Any]) -> int:
        return int(ctx.input_data["n"]) * 2

    workflow = (
        create_workflow(id="double").then(create_step(id="times-two", execute=double)).commit()
    )
    agent = Agent(
        id="calc",
        model=ScriptedModel(
            [ScriptedReply(tool_calls=[ScriptedToolCall("double", {"n": 4})]), "8"]
        ),
        tools=[workflow_as_tool(workflow)],
    )
    assert (await agent.generate("double 4")).text == "8"
    assert dump_spans(span_capture.spans, attributes=None, include_events=False) == "\n".join(
        [
            "invoke_agent calc [INTERNAL] UNSET",
            "  chat scripted [CLIENT] UNSET",
            "  execute_tool double [INTERNAL] UNSET",
            "    invoke_workflow double [INTERNAL] UNSET",
            "      workflow_step times-two [INTERNAL] UNSET",
            "  chat scripted [CLIENT] UNSET",
        ]
    )


async def test_an_aborted_call_ends_its_spans_without_errors(span_capture: SpanCapture) -> None:
    entered = asyncio.Event()

    async def wait(data: dict[str, Any]) -> str:
        entered.set()
        await asyncio.sleep(30)
        return "never"

    agent = Agent(
        id="a",
        model=ScriptedModel([ScriptedReply(tool_calls=[ScriptedToolCall("wait")])]),
        tools=[create_tool(id="wait", description="", execute=wait)],
    )
    out = agent.stream("go")
    await entered.wait()
    out.abort()
    assert (await out.result).status == "aborted"
    assert dump_spans(span_capture.spans, attributes=STATUSES) == "\n".join(
        [
            "invoke_agent a [INTERNAL] UNSET {spanflow.agent.status='aborted'}",
            "  chat scripted [CLIENT] UNSET {spanflow.chat.status='success'}",
            "  execute_tool wait [INTERNAL] UNSET {spanflow.tool.status='aborted'}",
        ]
    )


async def test_tracing_never_fails_an_agent(
    span_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(key: str, value: object) -> object:
        raise RuntimeError("redactor bug")

    config = TracingConfig(redactor=Redactor(function=broken))
    with caplog.at_level(logging.ERROR, logger="spanflow.tracing"):
        result = await researcher(*two_steps(), config=config).generate("go")
    assert result.status == "success"
    assert result.text == "Otters hold hands."
    assert "could not" in caplog.text


async def test_tracing_off_and_the_registry(span_capture: SpanCapture) -> None:
    quiet = researcher("a", config=TracingConfig(enabled=False))
    result = await quiet.generate("go")
    assert result.trace_id is None
    assert result.span_id is None

    agent = researcher("b")
    registry = Spanflow(
        agents=[agent], storage=MemoryStorage(), tracing=TracingConfig(enabled=False)
    )
    assert registry.get_agent("researcher") is agent
    assert agent.instrumentation.config.enabled is False
    await agent.generate("go")
    assert span_capture.spans == ()
