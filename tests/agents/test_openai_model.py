"""`OpenAIChatModel` against a local server speaking the chat-completions streaming protocol."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from spanflow_otel.testing import SpanCapture, dump_spans

from spanflow.agents import (
    Agent,
    AgentDefinitionError,
    ModelError,
    ModelSettings,
    OpenAIChatModel,
    tool,
)
from spanflow.agents.messages import UserMessage
from spanflow.agents.models import (
    ModelFinish,
    ModelRequest,
    ModelToolCall,
    ModelUsage,
    TextDelta,
)
from spanflow.usage import Usage

from .helpers import chunk_types, collect
from .sse_server import ErrorReply, FakeOpenAIServer, HangReply, StreamReply, completion_chunks


@tool
def get_weather(city: str) -> dict[str, Any]:
    """The weather of a city."""
    return {"city": city, "celsius": 18}


_OPEN_MODELS: list[OpenAIChatModel] = []


@pytest.fixture(autouse=True)
async def _close_models() -> AsyncIterator[None]:
    """Close every model a test opened while its event loop still runs."""
    yield
    while _OPEN_MODELS:
        await _OPEN_MODELS.pop().aclose()


def opened(model: OpenAIChatModel) -> OpenAIChatModel:
    """`model`, closed after the test."""
    _OPEN_MODELS.append(model)
    return model


def model_for(server: FakeOpenAIServer, **kwargs: Any) -> OpenAIChatModel:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 5)
    return opened(
        OpenAIChatModel("gpt-fake", base_url=server.base_url, api_key="sk-test", **kwargs)
    )


async def test_text_deltas_finish_and_usage_are_streamed(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add(StreamReply(completion_chunks(text="Hello from the fake server")))
    model = model_for(fake_openai)

    chunks = [c async for c in model.stream(ModelRequest((UserMessage("hi"),)))]

    assert chunks == [
        TextDelta("Hello from "),
        TextDelta("the fake "),
        TextDelta("server"),
        ModelUsage(Usage(11, 7, 18, cached_input_tokens=3)),
        ModelFinish("stop", "gpt-fake-2024", "chatcmpl-fake"),
    ]
    request = fake_openai.requests[0]
    assert request["model"] == "gpt-fake"
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["messages"] == [{"role": "user", "content": "hi"}]
    assert "tools" not in request
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-test"


async def test_tool_call_deltas_are_assembled_by_index(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add(
        StreamReply(
            completion_chunks(
                text="Checking.",
                tool_calls=[
                    ("call_a", "get_weather", '{"city": "Oslo"}'),
                    ("call_b", "get_weather", '{"city": "Lima"}'),
                ],
            )
        )
    )
    chunks = [c async for c in model_for(fake_openai).stream(ModelRequest((UserMessage("hi"),)))]
    assert [c for c in chunks if isinstance(c, ModelToolCall)] == [
        ModelToolCall("call_a", "get_weather", '{"city": "Oslo"}'),
        ModelToolCall("call_b", "get_weather", '{"city": "Lima"}'),
    ]
    assert chunks[-1] == ModelFinish("tool-calls", "gpt-fake-2024", "chatcmpl-fake")


async def test_an_agent_runs_parallel_tool_calls_over_the_wire(
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.add(
        StreamReply(
            completion_chunks(
                tool_calls=[
                    ("call_a", "get_weather", '{"city": "Oslo"}'),
                    ("call_b", "get_weather", '{"city": "Lima"}'),
                ],
                usage=(40, 12),
            )
        ),
        StreamReply(completion_chunks(text="Oslo 18, Lima 18.", usage=(90, 8))),
    )
    agent = Agent(
        id="weather",
        instructions="Be brief.",
        model=model_for(fake_openai),
        tools=[get_weather],
        model_settings=ModelSettings(temperature=0.1, max_tokens=64, stop=("END",), seed=7),
    )
    out = agent.stream("Oslo and Lima?")
    chunks = await collect(out)
    result = await out.result

    assert result.status == "success", result.error
    assert result.text == "Oslo 18, Lima 18."
    assert result.usage == Usage(130, 20, 150, cached_input_tokens=6)
    assert chunk_types(chunks)[:6] == [
        "start",
        "step-start",
        "tool-call",
        "tool-call",
        "tool-result",
        "tool-result",
    ]
    first, second = fake_openai.requests
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather of a city.",
                "parameters": get_weather.parameters,
            },
        }
    ]
    assert {k: first[k] for k in ("temperature", "max_tokens", "stop", "seed")} == {
        "temperature": 0.1,
        "max_tokens": 64,
        "stop": ["END"],
        "seed": 7,
    }
    assert second["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Oslo and Lima?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lima"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"city": "Oslo", "celsius": 18}'},
        {"role": "tool", "tool_call_id": "call_b", "content": '{"city": "Lima", "celsius": 18}'},
    ]


async def test_chat_spans_name_the_model_and_the_server(
    fake_openai: FakeOpenAIServer, span_capture: SpanCapture
) -> None:
    fake_openai.add(StreamReply(completion_chunks(text="hi")))
    agent = Agent(id="a", model=model_for(fake_openai))
    await agent.generate("hello")
    port = int(fake_openai.base_url.split(":")[2].split("/")[0])
    view = [
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.*",
        "gen_ai.usage.*",
        "server.*",
    ]
    chat = dump_spans(span_capture.spans, attributes=view).splitlines()[1]
    assert chat == (
        "  chat gpt-fake [CLIENT] UNSET {gen_ai.provider.name='openai',"
        " gen_ai.request.model='gpt-fake', gen_ai.response.finish_reasons=['stop'],"
        " gen_ai.response.id='chatcmpl-fake', gen_ai.response.model='gpt-fake-2024',"
        f" gen_ai.response.time_to_first_chunk={_ttft(span_capture)},"
        " gen_ai.usage.cache_read.input_tokens=3, gen_ai.usage.input_tokens=11,"
        f" gen_ai.usage.output_tokens=7, server.address='127.0.0.1', server.port={port}}}"
    )


def _ttft(capture: SpanCapture) -> Any:
    chat = next(s for s in capture.spans if s.name.startswith("chat"))
    return (chat.attributes or {})["gen_ai.response.time_to_first_chunk"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            ErrorReply(500, "The server had an error while processing your request."),
            "returned HTTP 500: The server had an error while processing your request.",
        ),
        (
            ErrorReply(
                401,
                "Incorrect API key provided: sk-test.",
                "invalid_request_error",
                "invalid_api_key",
            ),
            "returned HTTP 401: Incorrect API key provided: sk-test.",
        ),
    ],
)
async def test_http_errors_fail_the_call_with_the_endpoint_and_status(
    fake_openai: FakeOpenAIServer,
    span_capture: SpanCapture,
    reply: ErrorReply,
    expected: str,
) -> None:
    fake_openai.add(reply)
    out = Agent(id="a", model=model_for(fake_openai)).stream("hi")
    chunks = await collect(out)
    result = await out.result

    assert result.status == "failed"
    assert isinstance(result.error, ModelError)
    assert str(result.error) == f"model endpoint {fake_openai.base_url} {expected}"
    assert result.error.status_code == reply.status
    assert chunk_types(chunks) == ["start", "step-start", "error"]
    chat = next(s for s in span_capture.spans if s.name == "chat gpt-fake")
    assert chat.status.description == str(result.error)
    assert (chat.attributes or {})["http.response.status_code"] == reply.status
    assert (chat.attributes or {})["error.type"] == "spanflow.agents.errors.ModelError"


async def test_an_unreachable_endpoint_fails_clearly(span_capture: SpanCapture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    model = opened(OpenAIChatModel("gpt-fake", base_url=base_url, max_retries=0, timeout=2))

    result = await Agent(id="a", model=model).generate("hi")

    assert result.status == "failed"
    assert str(result.error).startswith(f"could not reach model endpoint {base_url}")
    assert [s.status.status_code.name for s in span_capture.spans] == ["ERROR", "ERROR"]


@pytest.mark.parametrize(
    "reply",
    [HangReply(), StreamReply(completion_chunks(text="a b c d e f"), hang_after=2)],
    ids=["before-headers", "mid-stream"],
)
async def test_a_hanging_endpoint_times_out_instead_of_hanging(
    fake_openai: FakeOpenAIServer, reply: HangReply | StreamReply
) -> None:
    fake_openai.add(reply)
    agent = Agent(id="a", model=model_for(fake_openai, timeout=0.3))

    started = time.monotonic()
    result = await agent.generate("hi")

    assert time.monotonic() - started < 3
    assert result.status == "failed"
    assert str(result.error) == (
        f"model endpoint {fake_openai.base_url} did not answer within 0.3s "
        f"(raise timeout= if the model is slow)"
    )


async def test_a_per_call_timeout_overrides_the_models(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add(HangReply())
    agent = Agent(id="a", model=model_for(fake_openai, timeout=30))
    result = await agent.generate("hi", model_settings=ModelSettings(timeout=0.2))
    assert "did not answer within 0.2s" in str(result.error)


async def test_a_broken_stream_is_a_model_error(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.add(StreamReply([{"error": {"message": "context length exceeded"}}]))
    result = await Agent(id="a", model=model_for(fake_openai)).generate("hi")
    assert result.status == "failed"
    assert str(result.error) == (
        f"model endpoint {fake_openai.base_url} sent a stream that could not be read: "
        f"context length exceeded"
    )


def test_the_openai_extra_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(AgentDefinitionError, match=r"pip install 'spanflow\[openai\]'"):
        OpenAIChatModel("gpt-4o-mini", base_url="http://localhost:1/v1")


def test_bad_settings_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AgentDefinitionError, match="needs an API key"):
        OpenAIChatModel("gpt-4o-mini")
    with pytest.raises(AgentDefinitionError, match="timeout"):
        OpenAIChatModel("m", base_url="http://localhost:1/v1", timeout=0)
    with pytest.raises(AgentDefinitionError, match="temperature"):
        ModelSettings(temperature=-1)
    with pytest.raises(AgentDefinitionError, match="not a string"):
        ModelSettings(stop="END")  # type: ignore[arg-type]
    local = opened(
        OpenAIChatModel("llama3.1", base_url="http://localhost:11434/v1/", provider="ollama")
    )
    assert (local.provider, local.base_url, local.server_port) == (
        "ollama",
        "http://localhost:11434/v1",
        11434,
    )


def test_deltas_without_an_index_or_with_repeated_names_are_assembled() -> None:
    from types import SimpleNamespace

    from spanflow.agents.models.openai import _ToolCallAssembler

    def delta(index: int | None, call_id: str | None, name: str | None, args: str) -> Any:
        return SimpleNamespace(
            index=index, id=call_id, function=SimpleNamespace(name=name, arguments=args)
        )

    assembler = _ToolCallAssembler()
    for part in [
        delta(None, "a", "f", '{"x":'),
        delta(None, "a", "f", " 1}"),
        delta(None, "b", "g", "{"),
        delta(None, None, None, "}"),
    ]:
        assembler.add(part)
    assert assembler.complete() == [
        ModelToolCall("a", "f", '{"x": 1}'),
        ModelToolCall("b", "g", "{}"),
    ]
