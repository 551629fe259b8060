"""The registry the server tests serve: small workflows, each there for a behaviour, and an agent.

- ``approval``: ``check -> approve -> record``; ``approve`` suspends until resumed with an
  approver, so one run goes ``pending -> suspended -> success``. Its input has a schema, so a
  wrong type is a 400 naming the field.
- ``gated``: ``begin -> wait -> end``; ``wait`` blocks until the test opens the gate named by
  the input (`Gates`), so a test can hold a run in the middle of a step (to cancel it, list it
  as running, or disconnect from its stream) with no sleeps: the test decides when it moves on.
- ``weather``: an agent on a `ScriptedModel` that calls ``get_weather`` for the city the user
  names, then answers from the tool's result.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from spanflow import Spanflow, StepContext, Workflow, create_step, create_workflow
from spanflow.agents import Agent, ScriptedModel, ScriptedReply, ScriptedToolCall, tool
from spanflow.agents.models import ModelRequest, last_tool_results, last_user_text
from spanflow.storage.base import Storage

__all__ = ["CELSIUS", "Gate", "Gates", "approval_workflow", "build_registry", "weather_agent"]

CELSIUS = 21


class Order(BaseModel):
    order: str
    amount: int


class Approval(BaseModel):
    approver: str


class Gate(BaseModel):
    gate: str


class Gates:
    """Named gates the ``gated`` workflow waits at; the test opens them."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.reached: dict[str, asyncio.Event] = {}

    def event(self, name: str) -> asyncio.Event:
        return self._events.setdefault(name, asyncio.Event())

    def arrived(self, name: str) -> asyncio.Event:
        """Set once a run is waiting at the gate `name`."""
        return self.reached.setdefault(name, asyncio.Event())

    def open(self, name: str) -> None:
        self.event(name).set()


async def _check(ctx: StepContext[Order]) -> Order:
    return ctx.input_data


async def _approve(ctx: StepContext[Order]) -> dict[str, Any]:
    decision: Approval | None = ctx.resume_data
    if decision is None:
        ctx.suspend({"reason": "needs a manager", "amount": ctx.input_data.amount})
    return {"order": ctx.input_data.order, "approver": decision.approver}


async def _record(ctx: StepContext[dict[str, Any]]) -> dict[str, Any]:
    return {**ctx.input_data, "recorded": True}


def approval_workflow() -> Workflow:
    return (
        create_workflow(id="approval", description="Orders wait for a manager.", input_schema=Order)
        .then(create_step(id="check", input_schema=Order, output_schema=Order, execute=_check))
        .then(
            create_step(id="approve", input_schema=Order, resume_schema=Approval, execute=_approve)
        )
        .then(create_step(id="record", execute=_record))
        .commit()
    )


def gated_workflow(gates: Gates) -> Workflow:
    async def begin(ctx: StepContext[Gate]) -> Gate:
        return ctx.input_data

    async def wait(ctx: StepContext[Gate]) -> Gate:
        gates.arrived(ctx.input_data.gate).set()
        await gates.event(ctx.input_data.gate).wait()
        return ctx.input_data

    async def end(ctx: StepContext[Gate]) -> dict[str, Any]:
        return {"gate": ctx.input_data.gate, "passed": True}

    return (
        create_workflow(id="gated", description="Waits at a gate.", input_schema=Gate)
        .then(create_step(id="begin", input_schema=Gate, output_schema=Gate, execute=begin))
        .then(create_step(id="wait", input_schema=Gate, output_schema=Gate, execute=wait))
        .then(create_step(id="end", input_schema=Gate, execute=end))
        .commit()
    )


@tool
async def get_weather(city: str) -> dict[str, Any]:
    """The current weather of a city."""
    return {"city": city, "celsius": CELSIUS}


def _forecaster(request: ModelRequest) -> ScriptedReply:
    city = last_user_text(request).rstrip("?").split()[-1]
    if not last_tool_results(request):
        return ScriptedReply(tool_calls=[ScriptedToolCall("get_weather", {"city": city})])
    return ScriptedReply(f"It is {CELSIUS} degrees in {city}.")


def weather_agent() -> Agent:
    return Agent(
        id="weather",
        name="Weather",
        description="Says what the weather is.",
        instructions="Answer briefly.",
        model=ScriptedModel(_forecaster),
        tools=[get_weather],
        max_steps=3,
    )


def build_registry(storage: Storage, gates: Gates) -> Spanflow:
    """A fresh registry of the test workflows and agent on `storage`."""
    return Spanflow(
        workflows=[approval_workflow(), gated_workflow(gates)],
        agents=[weather_agent()],
        storage=storage,
    )
