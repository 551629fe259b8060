"""An agent with memory: ``memory={"thread", "resource"}`` recalls the thread before the call and
appends the call's messages after it, only when the call succeeds."""

from __future__ import annotations

import pytest
from spanflow_otel.testing import SpanCapture

from spanflow.agents import Agent, GenAITracing, ModelError, ScriptedModel, ScriptedReply
from spanflow.agents.memory import Memory
from spanflow.agents.messages import AssistantMessage, Message, SystemMessage, UserMessage
from spanflow.agents.processors import Processor, ProcessorContext, TokenLimiter, pii_redactor
from spanflow.errors import InvalidInputError
from spanflow.storage import MemoryStorage

ALICE = {"thread": "t-1", "resource": "alice"}


class Stop(Processor):
    async def process_output(self, text: str, ctx: ProcessorContext) -> str:
        ctx.abort("no")


async def test_the_second_call_sees_the_first_and_both_are_remembered(
    span_capture: SpanCapture,
) -> None:
    memory = Memory(MemoryStorage())
    model = ScriptedModel(["Hello Alice.", "You are Alice."])
    agent = Agent(
        id="chat",
        model=model,
        instructions="Be kind.",
        memory=memory,
        instrumentation=GenAITracing(),
    )

    first = await agent.generate("I am Alice", memory=ALICE)
    second = await agent.generate("Who am I?", memory=ALICE)

    assert (first.status, second.status) == ("success", "success")
    assert list(model.requests[1].messages) == [
        SystemMessage("Be kind."),
        UserMessage("I am Alice"),
        AssistantMessage("Hello Alice."),
        UserMessage("Who am I?"),
    ]
    assert await memory.recall(thread="t-1", resource="alice") == [
        UserMessage("I am Alice"),
        AssistantMessage("Hello Alice."),
        UserMessage("Who am I?"),
        AssistantMessage("You are Alice."),
    ]
    spans = [s for s in span_capture.spans if s.name == "invoke_agent chat"]
    assert {(s.attributes or {})["gen_ai.conversation.id"] for s in spans} == {"t-1"}


async def test_a_failed_or_tripped_call_remembers_nothing() -> None:
    memory = Memory(MemoryStorage())
    failing = Agent(
        id="chat",
        model=ScriptedModel([ScriptedReply("half", error=ModelError("down"))]),
        memory=memory,
    )
    tripping = Agent(
        id="chat2", model=ScriptedModel(["fine"]), memory=memory, output_processors=[Stop("stop")]
    )

    assert (await failing.generate("hi", memory=ALICE)).status == "failed"
    assert (await tripping.generate("hi", memory=ALICE)).status == "tripwire"
    assert await memory.recall(thread="t-1", resource="alice") == []


async def test_the_memory_keeps_what_the_input_processors_left() -> None:
    memory = Memory(MemoryStorage())
    agent = Agent(
        id="chat", model=ScriptedModel(["Noted."]), memory=memory, input_processors=[pii_redactor()]
    )
    await agent.generate("mail me at ann@example.com", memory=ALICE)

    assert (await memory.recall(thread="t-1", resource="alice"))[0] == UserMessage(
        "mail me at [email redacted]"
    )


class DropsBlank(Processor):
    """An input processor that leaves out empty messages (wherever they are)."""

    async def process_input(self, messages: list[Message], ctx: ProcessorContext) -> list[Message]:
        return [m for m in messages if m.content.strip()]


async def test_input_processors_that_drop_messages_never_make_the_memory_repeat_itself() -> None:
    memory = Memory(MemoryStorage())
    model = ScriptedModel(["Hi Ann.", "Noted."])
    agent = Agent(
        id="chat",
        model=model,
        memory=memory,
        input_processors=[DropsBlank(), TokenLimiter(8, strategy="truncate")],
    )
    await agent.generate("I am Ann", memory=ALICE)
    await agent.generate(["", "I like tea a lot"], memory=ALICE)

    # The limiter left the first call's question out of what the model saw ...
    assert [m.content for m in model.requests[1].messages] == ["Hi Ann.", "I like tea a lot"]
    # ... and the memory appended only the second call's own messages, once.
    assert await memory.recall(thread="t-1", resource="alice") == [
        UserMessage("I am Ann"),
        AssistantMessage("Hi Ann."),
        UserMessage("I like tea a lot"),
        AssistantMessage("Noted."),
    ]


async def test_a_limiter_that_drops_the_recalled_messages_keeps_the_new_ones_in_memory() -> None:
    memory = Memory(MemoryStorage())
    agent = Agent(
        id="chat",
        model=ScriptedModel(["One.", "Two."]),
        memory=memory,
        input_processors=[TokenLimiter(3, strategy="truncate"), pii_redactor()],
    )
    await agent.generate("first question here", memory=ALICE)
    await agent.generate(["mail ann@example.com", "ok?"], memory=ALICE)

    assert await memory.recall(thread="t-1", resource="alice") == [
        UserMessage("first question here"),
        AssistantMessage("One."),
        UserMessage("ok?"),
        AssistantMessage("Two."),
    ]


async def test_another_resource_cannot_use_the_thread() -> None:
    memory = Memory(MemoryStorage())
    agent = Agent(id="chat", model=ScriptedModel(["a", "b"]), memory=memory)
    await agent.generate("hi", memory=ALICE)

    result = await agent.generate("hi", memory={"thread": "t-1", "resource": "mallory"})
    assert result.status == "failed"
    assert isinstance(result.error, InvalidInputError)


async def test_memory_arguments_are_checked() -> None:
    plain = Agent(id="plain", model=ScriptedModel(["x"]))
    with pytest.raises(InvalidInputError, match="agent 'plain' has no memory"):
        await plain.generate("hi", memory=ALICE)
    agent = Agent(id="chat", model=ScriptedModel(["x"]), memory=Memory(MemoryStorage()))
    with pytest.raises(InvalidInputError, match=r"memory\['resource'\] must be a non-empty string"):
        await agent.generate("hi", memory={"thread": "t"})
    with pytest.raises(InvalidInputError, match="thread_id='other' contradicts"):
        await agent.generate("hi", memory=ALICE, thread_id="other")
