"""Structured output: ``structured_output=`` gives a validated ``result.object`` and ``object``
chunks; a native response format where the model has one, else an instruction, one repair."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from spanflow.agents import Agent, OpenAIChatModel, ScriptedModel, ScriptedReply
from spanflow.agents.errors import StructuredOutputError
from spanflow.agents.memory import Memory
from spanflow.agents.messages import AssistantMessage, SystemMessage, UserMessage
from spanflow.agents.models import ModelRequest, ResponseFormat
from spanflow.agents.models.structured import OutputSchema, json_schema_problems, partial_json
from spanflow.errors import InvalidInputError
from spanflow.storage import MemoryStorage

from .helpers import collect
from .sse_server import FakeOpenAIServer, StreamReply, completion_chunks

ALICE = {"thread": "t-1", "resource": "alice"}


class Weather(BaseModel):
    city: str
    celsius: int


WEATHER_SCHEMA: dict[str, Any] = {
    "title": "Weather",
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}


# -- ScriptedModel ---------------------------------------------------------------------------


async def test_a_pydantic_schema_gives_a_model_instance_and_a_native_response_format() -> None:
    model = ScriptedModel([ScriptedReply(object={"city": "Oslo", "celsius": 4})])
    agent = Agent(id="weather", model=model, instructions="Report the weather.")
    result = await agent.generate("Oslo?", structured_output=Weather)

    assert result.status == "success"
    assert result.object == Weather(city="Oslo", celsius=4)
    assert result.to_dict()["object"] == {"city": "Oslo", "celsius": 4}
    request = model.requests[0]
    assert request.response_format == ResponseFormat("Weather", Weather.model_json_schema())
    assert request.messages[0] == SystemMessage("Report the weather.")  # no instruction added


async def test_the_stream_sends_partial_objects_then_the_object_result() -> None:
    model = ScriptedModel([ScriptedReply(object={"city": "Oslo", "celsius": 4})])
    out = Agent(id="weather", model=model).stream("Oslo?", structured_output=WEATHER_SCHEMA)
    chunks = await collect(out)

    objects = [c.to_dict() for c in chunks if c.type == "object"]
    assert [o["object"] for o in objects] == [
        {},
        {"city": "Oslo"},
        {"city": "Oslo", "celsius": 4},
    ]
    assert set(objects[0]) == {"type", "runId", "from", "object"}  # Mastra's shape: no payload
    (final,) = [c.to_dict() for c in chunks if c.type == "object-result"]
    assert final == {
        "type": "object-result",
        "runId": out.run_id,
        "from": "AGENT",
        "object": {"city": "Oslo", "celsius": 4},
    }
    assert [c.type for c in chunks][-2:] == ["object-result", "finish"]
    assert await out.object == {"city": "Oslo", "celsius": 4}  # a JSON Schema gives a dict


async def test_without_a_native_format_the_schema_is_an_instruction_and_a_bad_reply_repaired() -> (
    None
):
    model = ScriptedModel(
        ['{"city": "Oslo"}', ScriptedReply(object={"city": "Oslo", "celsius": 4})],
        structured_outputs=False,
    )
    agent = Agent(id="weather", model=model, instructions="Report the weather.")
    result = await agent.generate("Oslo?", structured_output=Weather)

    assert result.status == "success"
    assert result.object == Weather(city="Oslo", celsius=4)
    first, second = model.requests
    assert first.response_format is None
    system = first.messages[0]
    assert isinstance(system, SystemMessage)
    assert system.content.startswith("Report the weather.\n\nAnswer with a single JSON value")
    assert json.dumps(Weather.model_json_schema(), sort_keys=True) in system.content
    repair = second.messages[-1]
    assert isinstance(repair, UserMessage)
    assert "field 'celsius': Field required" in repair.content
    assert second.tools == ()
    assert len(result.steps) == 2


async def test_a_reply_invalid_twice_fails_the_call_showing_what_was_wrong() -> None:
    model = ScriptedModel(["It is cold.", '{"city": 4}'])
    result = await Agent(id="weather", model=model).generate(
        "Oslo?", structured_output=WEATHER_SCHEMA
    )

    assert result.status == "failed"
    assert result.object is None
    error = result.error
    assert isinstance(error, StructuredOutputError)
    assert error.problems == (
        "$.celsius: required field is missing; $.city: expected string, got number"
    )
    assert str(error) == (
        "agent 'weather': the answer does not match the output schema 'Weather', even after "
        "one repair attempt: $.celsius: required field is missing; $.city: expected string, "
        "got number (the reply: '{\"city\": 4}')"
    )


async def test_structured_output_must_be_a_model_class_or_a_schema() -> None:
    agent = Agent(id="weather", model=ScriptedModel(["{}"]))
    with pytest.raises(InvalidInputError, match="pydantic model class or a JSON Schema"):
        await agent.generate("x", structured_output="Weather")  # type: ignore[arg-type]


def test_json_schema_validation_and_partial_json() -> None:
    schema = OutputSchema.coerce({"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2})
    assert schema.validate('["a"]') == ["a"]
    assert json_schema_problems(["c", "a", "b"], schema.json_schema) == [
        '$[0]: must be one of ["a", "b"]',
        "$: item count must be <= 2, got 3",
    ]
    assert partial_json('{"a": [1, 2]') == {"a": [1, 2]}
    assert partial_json('{"a": "hel') == {"a": "hel"}
    assert partial_json('{"a": 1, "b') == {"a": 1}
    assert partial_json("no json here") is None


def test_partial_json_never_shows_a_number_that_may_still_grow() -> None:
    assert partial_json('{"a": [1, 2') == {"a": [1]}  # "2" may become "25"
    assert partial_json('{"n": 12') == {}
    assert partial_json('{"a": "x", "n": 1.5e') == {"a": "x"}
    assert partial_json('{"n": 12,') == {"n": 12}  # a comma, bracket or space ends it
    assert partial_json('{"n": 12 ') == {"n": 12}
    assert partial_json("[3, 12]") == [3, 12]
    assert partial_json('{"id": "a12') == {"id": "a12"}  # digits in a string still stream


async def test_a_repaired_answer_is_remembered_without_the_repair_exchange() -> None:
    memory = Memory(MemoryStorage())
    model = ScriptedModel(['{"city": "Oslo"}', '{"city": "Oslo", "celsius": 4}'])
    agent = Agent(id="weather", model=model, memory=memory)
    result = await agent.generate("Oslo?", structured_output=Weather, memory=ALICE)

    assert result.object == Weather(city="Oslo", celsius=4)
    answer = AssistantMessage('{"city": "Oslo", "celsius": 4}')
    assert result.response_messages == [answer]
    assert await memory.recall(thread="t-1", resource="alice") == [UserMessage("Oslo?"), answer]
    repair = model.requests[1].messages  # the model did get the exchange
    assert [m.role for m in repair] == ["user", "assistant", "user"]
    assert repair[1] == AssistantMessage('{"city": "Oslo"}')


# -- OpenAIChatModel against the local SSE server ----------------------------------------------


@pytest.fixture
async def opened_models() -> AsyncIterator[list[OpenAIChatModel]]:
    models: list[OpenAIChatModel] = []
    yield models
    for model in models:
        await model.aclose()


def weather_reply(text: str) -> StreamReply:
    return StreamReply(completion_chunks(text=text, split_text=1))


async def test_openai_gets_response_format_json_schema(
    fake_openai: FakeOpenAIServer, opened_models: list[OpenAIChatModel]
) -> None:
    fake_openai.add(weather_reply('{"city": "Oslo", "celsius": 4}'))
    model = OpenAIChatModel("gpt-fake", base_url=fake_openai.base_url, max_retries=0)
    opened_models.append(model)
    out = Agent(id="weather", model=model).stream("Oslo?", structured_output=Weather)
    chunks = await collect(out)
    result = await out.result

    assert result.status == "success"
    assert result.object == Weather(city="Oslo", celsius=4)
    (body,) = fake_openai.requests
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Weather", "schema": Weather.model_json_schema(), "strict": False},
    }
    assert [c.to_dict()["object"] for c in chunks if c.type == "object"][-1] == {
        "city": "Oslo",
        "celsius": 4,
    }


async def test_openai_without_structured_outputs_is_instructed_and_repaired(
    fake_openai: FakeOpenAIServer, opened_models: list[OpenAIChatModel]
) -> None:
    fake_openai.add(weather_reply("Oslo is cold."), weather_reply('{"city": "Oslo", "celsius": 4}'))
    model = OpenAIChatModel(
        "gpt-fake", base_url=fake_openai.base_url, max_retries=0, structured_outputs=False
    )
    opened_models.append(model)
    result = await Agent(id="weather", model=model).generate("Oslo?", structured_output=Weather)

    assert result.status == "success"
    assert result.object == Weather(city="Oslo", celsius=4)
    first, second = fake_openai.requests
    assert "response_format" not in first
    assert first["messages"][0]["role"] == "system"
    assert "Answer with a single JSON value" in first["messages"][0]["content"]
    assert second["messages"][-2] == {"role": "assistant", "content": "Oslo is cold."}
    assert second["messages"][-1]["role"] == "user"
    assert "the reply is not valid JSON" in second["messages"][-1]["content"]


async def test_openai_reply_invalid_twice_fails_with_the_validation_message(
    fake_openai: FakeOpenAIServer, opened_models: list[OpenAIChatModel]
) -> None:
    fake_openai.add(weather_reply('{"city": "Oslo"}'), weather_reply('{"city": "Oslo"}'))
    model = OpenAIChatModel(
        "gpt-fake", base_url=fake_openai.base_url, max_retries=0, structured_outputs=False
    )
    opened_models.append(model)
    out = Agent(id="weather", model=model).stream("Oslo?", structured_output=Weather)
    chunks = await collect(out)
    result = await out.result

    assert result.status == "failed"
    assert isinstance(result.error, StructuredOutputError)
    assert result.error.problems == "field 'celsius': Field required"
    assert chunks[-1].to_dict()["payload"]["error"]["name"] == "StructuredOutputError"
    assert "field 'celsius': Field required" in chunks[-1].to_dict()["payload"]["error"]["message"]
    assert len(fake_openai.requests) == 2


def test_a_model_request_defaults_to_no_response_format() -> None:
    assert ModelRequest(()).response_format is None


def test_one_of_needs_exactly_one_alternative_where_any_of_needs_one_or_more() -> None:
    number_or_int = [{"type": "number"}, {"type": "integer"}]
    assert json_schema_problems(3, {"anyOf": number_or_int}) == []
    assert json_schema_problems(3, {"oneOf": number_or_int}) == [
        "$: matches 2 of the oneOf alternatives, not exactly one"
    ]
    assert json_schema_problems(3.5, {"oneOf": number_or_int}) == []
    assert json_schema_problems("x", {"oneOf": number_or_int}) == [
        "$: matches none of the oneOf alternatives"
    ]
