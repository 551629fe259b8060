"""Processors: rewrite what goes in and comes out, stop a call with ``abort`` (``tripwire``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opentelemetry.trace import StatusCode
from spanflow_otel.testing import SpanCapture

from spanflow.agents import (
    Agent,
    AgentChunk,
    GenAITracing,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    tool,
)
from spanflow.agents.errors import AgentDefinitionError, ProcessorError
from spanflow.agents.messages import Message, UserMessage
from spanflow.agents.models.base import (
    ModelChunk,
    ModelFinish,
    ModelRequest,
    ModelUsage,
    TextDelta,
)
from spanflow.agents.processors import (
    Processor,
    ProcessorContext,
    RegexRedactor,
    TokenLimiter,
    pii_redactor,
)
from spanflow.usage import Usage

from .helpers import chunk_types, collect


class NoRefunds(Processor):
    """An input guardrail: trips when the user asks for a refund."""

    async def process_input(self, messages: list[Message], ctx: ProcessorContext) -> list[Message]:
        if "refund" in messages[-1].content:
            ctx.abort("refunds are handled by a human", metadata={"topic": "refund"})
        return messages


class OutputOnly:
    """A duck-typed processor: a name and one output hook."""

    name = "output-only"

    async def process_output(self, text: str, ctx: ProcessorContext) -> str:
        return text


class Explodes(Processor):
    async def process_output(self, text: str, ctx: ProcessorContext) -> str:
        raise ValueError("bad regex table")


def agent_with(model: ScriptedModel, **kwargs: object) -> Agent:
    return Agent(id="support", model=model, instrumentation=GenAITracing(), **kwargs)  # type: ignore[arg-type]


async def test_an_input_processor_abort_ends_the_call_tripwire_with_mastras_chunk(
    span_capture: SpanCapture,
) -> None:
    model = ScriptedModel(["never sent"])
    out = agent_with(model, input_processors=[NoRefunds("no-refunds")]).stream("I want a refund")
    chunks = await collect(out)
    result = await out.result

    assert chunk_types(chunks) == ["start", "tripwire"]
    assert chunks[-1].to_dict() == {
        "type": "tripwire",
        "runId": out.run_id,
        "from": "AGENT",
        "payload": {
            "reason": "refunds are handled by a human",
            "retry": False,
            "metadata": {"topic": "refund"},
            "processorId": "no-refunds",
        },
    }
    assert result.status == "tripwire"
    assert await out.status == "tripwire"
    assert result.finish_reason == "tripwire"
    assert result.error is None
    assert result.tripwire is not None
    assert (result.tripwire.reason, result.tripwire.processor) == (
        "refunds are handled by a human",
        "no-refunds",
    )
    assert result.to_dict()["tripwire"]["processorId"] == "no-refunds"
    assert model.requests == []

    (span,) = span_capture.spans
    assert span.name == "invoke_agent support"
    attributes = dict(span.attributes or {})
    assert attributes["spanflow.agent.status"] == "tripwire"
    assert attributes["spanflow.agent.tripwire.reason"] == "refunds are handled by a human"
    assert attributes["spanflow.agent.tripwire.processor"] == "no-refunds"
    assert span.status.status_code is not StatusCode.ERROR


async def test_the_pii_preset_redacts_the_input_before_the_model_sees_it() -> None:
    model = ScriptedModel(["Noted."])
    agent = agent_with(model, input_processors=[pii_redactor()])
    result = await agent.generate(
        "Mail ann@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111."
    )

    assert result.status == "success"
    sent = [m for m in model.requests[0].messages if isinstance(m, UserMessage)]
    assert sent[0].content == (
        "Mail [email redacted] or call [phone redacted]; card [card redacted]."
    )


async def test_an_output_redactor_rewrites_the_text_the_chunks_and_the_answer() -> None:
    model = ScriptedModel(["Your code is 123-456 and more."])
    agent = agent_with(model, output_processors=[RegexRedactor([r"\d{3}-\d{3}"], "***")])
    out = agent.stream("code?")
    chunks = await collect(out)
    result = await out.result

    deltas = "".join(c.payload.text for c in chunks if c.type == "text-delta")  # type: ignore[union-attr]
    assert deltas == "Your code is *** and more."
    assert result.text == "Your code is *** and more."
    assert result.response_messages[0].content == "Your code is *** and more."


async def test_a_token_limiter_that_aborts_trips_when_the_answer_runs_long() -> None:
    model = ScriptedModel(["one two three four five six seven eight"])
    agent = agent_with(model, output_processors=[TokenLimiter(5)])
    out = agent.stream("count")
    chunks = await collect(out)
    result = await out.result

    assert result.status == "tripwire"
    assert result.tripwire is not None
    assert result.tripwire.processor == "token-limiter"
    assert "limit of 5 tokens" in result.tripwire.reason
    deltas = [c for c in chunks if c.type == "text-delta"]
    assert len(deltas) == 5  # the sixth word tripped it before the stream got it
    assert chunks[-1].type == "tripwire"


async def test_a_token_limiter_that_truncates_cuts_the_stream_and_the_text() -> None:
    model = ScriptedModel(["one two three four five six seven eight"])
    agent = agent_with(model, output_processors=[TokenLimiter(3, strategy="truncate")])
    out = agent.stream("count")
    chunks = await collect(out)
    result = await out.result

    assert result.status == "success"
    assert result.text == "one two three"
    deltas = "".join(c.payload.text for c in chunks if c.type == "text-delta")  # type: ignore[union-attr]
    assert deltas.split() == ["one", "two", "three"]


async def test_a_token_limiter_on_the_input_drops_the_oldest_messages_to_fit() -> None:
    model = ScriptedModel(["ok"])
    agent = agent_with(model, input_processors=[TokenLimiter(4, strategy="truncate")])
    await agent.generate(["a b c", "d e", "f g"])

    sent = [m.content for m in model.requests[0].messages]
    assert sent == ["d e", "f g"]


async def test_a_processor_that_raises_fails_the_call_naming_it() -> None:
    agent = agent_with(ScriptedModel(["fine"]), output_processors=[Explodes("explodes")])
    out = agent.stream("hi")
    chunks = await collect(out)
    result = await out.result

    assert result.status == "failed"
    assert isinstance(result.error, ProcessorError)
    assert result.error.processor == "explodes"
    assert str(result.error) == (
        "processor 'explodes' raised in process_output: ValueError: bad regex table"
    )
    assert chunks[-1].type == "error"


def test_processors_are_checked_when_the_agent_is_made() -> None:
    with pytest.raises(AgentDefinitionError, match="has none of process_input"):
        Agent(id="a", model=ScriptedModel([]), input_processors=[OutputOnly()])
    with pytest.raises(AgentDefinitionError, match="two output processors are 'x'"):
        Agent(id="a", model=ScriptedModel([]), output_processors=[Explodes("x"), Explodes("x")])
    with pytest.raises(AgentDefinitionError, match="max_tokens must be an int >= 1"):
        TokenLimiter(0)


class NoSecretsFromTools(Processor):
    """Trips when a tool result carries a secret."""

    def process_chunk(self, chunk: AgentChunk, ctx: ProcessorContext) -> AgentChunk | None:
        if chunk.type == "tool-result" and "secret" in str(chunk.to_dict()["payload"]["result"]):
            ctx.abort("a tool returned a secret")
        return chunk


async def test_a_chunk_processor_can_trip_on_a_tool_result_and_the_stream_ends_there() -> None:
    @tool
    async def vault(name: str) -> str:
        """Read the vault."""
        await asyncio.sleep(0.01 if name == "slow" else 0)
        return f"secret of {name}"

    model = ScriptedModel(
        [
            ScriptedReply(
                tool_calls=[
                    ScriptedToolCall("vault", {"name": "fast"}),
                    ScriptedToolCall("vault", {"name": "slow"}),
                ]
            )
        ]
    )
    agent = Agent(id="a", model=model, tools=[vault], output_processors=[NoSecretsFromTools()])
    out = agent.stream("open it")
    chunks = await collect(out)
    result = await out.result

    assert result.status == "tripwire"
    assert result.tripwire is not None
    assert result.tripwire.processor == "NoSecretsFromTools"
    assert chunks[-1].type == "tripwire"
    assert "tool-result" not in chunk_types(chunks)
    assert len(model.requests) == 1


async def test_a_redactor_covers_structured_answers_and_their_partial_objects() -> None:
    model = ScriptedModel([ScriptedReply(object={"contact": "ann@example.com"})])
    agent = Agent(id="a", model=model, output_processors=[pii_redactor()])
    out = agent.stream("who?", structured_output={"type": "object"})
    chunks = await collect(out)

    partials = [c.to_dict()["object"] for c in chunks if c.type == "object"]
    assert partials
    assert all("ann@example.com" not in str(p) for p in partials)
    assert await out.object == {"contact": "[email redacted]"}


SECRET = "bob@example.com"


def span_texts(capture: SpanCapture) -> list[str]:
    """Every attribute and span-event attribute value of every captured span, as text."""
    texts: list[str] = []
    for span in capture.spans:
        for key, value in (span.attributes or {}).items():
            texts.append(f"{span.name} {key}=" + str(value))
        for event in span.events:
            for key, value in (event.attributes or {}).items():
                texts.append(f"{span.name} {event.name} {key}=" + str(value))
    return texts


@pytest.mark.parametrize("side", ["input", "output"])
async def test_a_redactor_keeps_the_secret_out_of_every_span(
    span_capture: SpanCapture, side: str
) -> None:
    said, answered = (f"my mail is {SECRET}", "Noted.") if side == "input" else ("hi", SECRET)
    model = ScriptedModel([f"I will write to {answered} now"])
    agent = agent_with(model, **{f"{side}_processors": [pii_redactor()]})
    out = agent.stream(said)
    await collect(out)
    result = await out.result

    assert result.status == "success"
    texts = span_texts(span_capture)
    assert [t for t in texts if SECRET in t] == []
    recorded = [t for t in texts if f"gen_ai.{side}.messages" in t]
    assert {t.split(" gen_ai")[0] for t in recorded} == {"invoke_agent support", "chat scripted"}
    assert all("[email redacted]" in t for t in recorded)


async def test_with_both_redactors_the_secret_is_nowhere_in_the_trace(
    span_capture: SpanCapture,
) -> None:
    model = ScriptedModel([ScriptedReply(f"I will write to {SECRET} now")])
    agent = agent_with(model, input_processors=[pii_redactor()], output_processors=[pii_redactor()])
    await agent.generate(f"my mail is {SECRET}")

    assert [t for t in span_texts(span_capture) if SECRET in t] == []
    assert [t for t in span_texts(span_capture) if "[email redacted]" in t]


async def test_a_response_cut_short_by_a_tripwire_leaves_no_text_on_its_chat_span(
    span_capture: SpanCapture,
) -> None:
    model = ScriptedModel([f"write to {SECRET} and then one two three four five six"])
    agent = agent_with(model, output_processors=[pii_redactor(), TokenLimiter(6)])
    result = await agent.generate("hi")

    assert result.status == "tripwire"
    assert [t for t in span_texts(span_capture) if SECRET in t] == []


class UsageFirst:
    """A model that reports its usage before its text (as some providers do)."""

    provider = "test"
    model_id = "usage-first"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        yield ModelUsage(Usage(input_tokens=7, output_tokens=3))
        for word in ["one", "two", "three", "four"]:
            yield TextDelta(word + " ")
        yield ModelFinish("stop")


class TripOnTextEnd(Processor):
    def process_chunk(self, chunk: AgentChunk, ctx: ProcessorContext) -> AgentChunk | None:
        if chunk.type == "text-end":
            ctx.abort("no text-end today")
        return chunk


async def test_a_tripwire_mid_stream_still_counts_the_usage_reported_so_far() -> None:
    agent = Agent(id="a", model=UsageFirst(), output_processors=[TokenLimiter(2)])
    result = await agent.generate("count")

    assert result.status == "tripwire"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (7, 3)


async def test_a_tripwire_on_the_last_chunk_of_a_response_counts_its_usage() -> None:
    model = ScriptedModel([ScriptedReply("fine", usage=Usage(input_tokens=5, output_tokens=1))])
    agent = Agent(id="a", model=model, output_processors=[TripOnTextEnd("end")])
    result = await agent.generate("hi")

    assert result.status == "tripwire"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 1)
