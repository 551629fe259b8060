"""Tools: validated input, the JSON schema the model sees, call styles, workflows as tools."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from spanflow import InvalidInputError, RequestContext, StepContext, create_step, create_workflow
from spanflow.agents import (
    Agent,
    AgentDefinitionError,
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    ToolArgumentsError,
    ToolContext,
    ToolError,
    create_tool,
    tool,
    workflow_as_tool,
)
from spanflow.agents.models import ModelRequest, last_tool_results


class Forecast(BaseModel):
    city: str = Field(description="City name")
    days: int = Field(default=1, ge=1, le=7)


def context(name: str = "t") -> ToolContext:
    return ToolContext("call_1", name, None, None, RequestContext())


async def test_input_is_validated_before_execute_and_errors_name_the_field() -> None:
    calls: list[Forecast] = []

    async def execute(data: Forecast) -> str:
        calls.append(data)
        return "sunny"

    forecast = create_tool(
        id="forecast", description="Weather forecast.", execute=execute, input_schema=Forecast
    )

    with pytest.raises(ToolArgumentsError, match=r"arguments for tool 'forecast': field 'days'"):
        forecast.validate_input({"city": "Oslo", "days": 30})
    assert calls == []
    value = forecast.validate_input({"city": "Oslo"})
    assert await forecast.call(value, context()) == "sunny"
    assert calls == [Forecast(city="Oslo", days=1)]


def test_the_model_gets_the_json_schema_of_the_input_schema() -> None:
    forecast = create_tool(
        id="forecast", description="Weather forecast.", execute=lambda d: d, input_schema=Forecast
    )
    definition = forecast.definition()
    assert definition.name == "forecast"
    assert definition.description == "Weather forecast."
    assert definition.parameters == {
        "properties": {
            "city": {"description": "City name", "title": "City", "type": "string"},
            "days": {"default": 1, "maximum": 7, "minimum": 1, "title": "Days", "type": "integer"},
        },
        "required": ["city"],
        "title": "Forecast",
        "type": "object",
    }
    anything = create_tool(id="anything", description="", execute=lambda d: d)
    assert anything.parameters == {"type": "object", "properties": {}}


async def test_the_decorator_builds_the_schema_from_the_signature() -> None:
    @tool
    async def convert(
        amount: float, currency: Literal["EUR", "USD"] = "EUR", ctx: Any = None
    ) -> str:
        """Convert an amount.

        Longer explanation that the model does not need.
        """
        assert isinstance(ctx, ToolContext)
        return f"{amount:.2f} {currency}"

    assert convert.id == "convert"
    assert convert.description == "Convert an amount."
    assert convert.parameters["properties"]["currency"] == {
        "default": "EUR",
        "enum": ["EUR", "USD"],
        "title": "Currency",
        "type": "string",
    }
    assert convert.parameters["required"] == ["amount"]
    value = convert.validate_input({"amount": "3.5"})
    assert await convert.call(value, context("convert")) == "3.50 EUR"
    with pytest.raises(ToolArgumentsError, match="currency"):
        convert.validate_input({"amount": 1, "currency": "GBP"})


async def test_the_decorator_takes_a_model_parameter_and_the_context() -> None:
    @tool(id="plan-trip", description="Plan a trip.")
    def plan(trip: Forecast, ctx: ToolContext) -> dict[str, Any]:
        return {"city": trip.city, "by": ctx.tool_call_id}

    assert plan.input_schema is Forecast
    assert plan.call_style == "input_ctx"
    value = plan.validate_input({"city": "Bern"})
    assert await plan.call(value, context("plan-trip")) == {"city": "Bern", "by": "call_1"}


async def test_typed_dict_input_and_output_validation() -> None:
    class Pair(TypedDict):
        a: int
        b: int

    def wrong(pair: Pair) -> str:
        return "not a number"

    adder = create_tool(
        id="adder", description="", execute=wrong, input_schema=Pair, output_schema=int
    )
    assert adder.parameters["type"] == "object"
    with pytest.raises(ToolError, match="invalid output of tool 'adder'"):
        await adder.call(adder.validate_input({"a": 1, "b": 2}), context())


def test_bad_definitions_fail_clearly() -> None:
    with pytest.raises(AgentDefinitionError, match="letters, digits"):
        create_tool(id="get.weather", description="", execute=lambda d: d)
    with pytest.raises(AgentDefinitionError, match="must describe a JSON object"):
        create_tool(id="n", description="", execute=lambda d: d, input_schema=int)
    with pytest.raises(AgentDefinitionError, match="positional parameters"):
        create_tool(id="n", description="", execute=lambda: None)
    with pytest.raises(AgentDefinitionError, match=r"\*args/\*\*kwargs"):

        @tool
        def spread(**kwargs: Any) -> None: ...

    with pytest.raises(AgentDefinitionError, match="not a Tool"):
        Agent(id="a", model=ScriptedModel([]), tools=[lambda: None])  # type: ignore[list-item]
    first = create_tool(id="same", description="", execute=lambda d: d)
    with pytest.raises(AgentDefinitionError, match="two tools are named 'same'"):
        Agent(id="a", model=ScriptedModel([]), tools=[first, first])
    with pytest.raises(AgentDefinitionError, match="max_steps"):
        Agent(id="a", model=ScriptedModel([]), max_steps=0)
    with pytest.raises(AgentDefinitionError, match="Model protocol"):
        Agent(id="a", model="gpt-4o")  # type: ignore[arg-type]


class Order(BaseModel):
    items: list[str]


class Total(BaseModel):
    count: int
    user: str | None


def order_workflow(*, fail: bool = False) -> Any:
    async def count(ctx: StepContext[Order]) -> Total:
        if fail:
            raise ValueError("inventory offline")
        return Total(count=len(ctx.input_data.items), user=ctx.request_context.get("user"))

    return (
        create_workflow(
            id="count-order",
            input_schema=Order,
            output_schema=Total,
            description="Count the items of an order.",
        )
        .then(create_step(id="count", execute=count, input_schema=Order, output_schema=Total))
        .commit()
    )


def reply_with_results(request: ModelRequest) -> str | ScriptedReply:
    results = last_tool_results(request)
    if results:
        return results[0].content
    return ScriptedReply(
        tool_calls=[ScriptedToolCall("count-order", {"items": ["tea", "milk", "bread"]})]
    )


async def test_a_workflow_is_usable_as_a_tool() -> None:
    counter = workflow_as_tool(order_workflow())
    assert counter.id == "count-order"
    assert counter.description == "Count the items of an order."
    assert counter.parameters["required"] == ["items"]

    agent = Agent(id="shop", model=ScriptedModel(reply_with_results), tools=[counter])
    result = await agent.generate("how many?", request_context={"user": "ada"})

    assert result.text == '{"count": 3, "user": "ada"}'
    assert result.tool_results[0].result == Total(count=3, user="ada")


async def test_a_failing_workflow_is_a_tool_error() -> None:
    agent = Agent(
        id="shop",
        model=ScriptedModel(reply_with_results),
        tools=[workflow_as_tool(order_workflow(fail=True), description="Count.")],
    )
    result = await agent.generate("how many?")
    assert result.text == "Error: workflow 'count-order' failed: inventory offline"
    error = result.tool_results[0].error
    assert isinstance(error, ToolError)
    assert isinstance(error.__cause__, ValueError)


def test_an_uncommitted_workflow_is_rejected() -> None:
    with pytest.raises(AgentDefinitionError, match="must be committed"):
        workflow_as_tool(create_workflow(id="draft"))


class NeedsUser(TypedDict):
    user: str


async def test_a_workflow_tool_refused_before_it_starts_leaves_no_run_behind() -> None:
    async def count(ctx: StepContext[Order]) -> Total:
        return Total(count=len(ctx.input_data.items), user=ctx.request_context.get("user"))

    workflow = (
        create_workflow(id="count-order", input_schema=Order, request_context_schema=NeedsUser)
        .then(create_step(id="count", execute=count, input_schema=Order))
        .commit()
    )
    counter = workflow_as_tool(workflow)

    with pytest.raises(InvalidInputError, match="request context of workflow 'count-order'"):
        await counter.call(counter.validate_input({"items": ["tea"]}), context())

    assert (await workflow.list_runs()).total == 0
