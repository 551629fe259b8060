"""A network agent's primitives: ``agents=`` and ``workflows=`` kept by id beside ``tools=``."""

from __future__ import annotations

import pytest

from spanflow import create_step, create_workflow
from spanflow.agents import Agent, AgentDefinitionError, ScriptedModel, tool


@tool
def echo(text: str) -> str:
    """Echo the text."""
    return text


def test_agents_and_workflows_are_kept_by_id_from_a_list_or_as_mapped() -> None:
    async def noop(ctx: object) -> str:
        return "ok"

    helper = Agent(id="helper", model=ScriptedModel([]))
    flow = create_workflow(id="flow").then(create_step(id="s", execute=noop)).commit()
    router = Agent(
        id="router", model=ScriptedModel([]), agents=[helper], workflows={"f": flow}, tools=[echo]
    )

    assert router.agents == {"helper": helper}
    assert router.workflows == {"f": flow}
    assert list(router.tools) == ["echo"]
    assert Agent(id="plain", model=ScriptedModel([])).agents == {}


def test_a_primitive_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(AgentDefinitionError, match="agents holds 'x', which is not a Agent"):
        Agent(id="router", model=ScriptedModel([]), agents=["x"])  # type: ignore[list-item]
    helper = Agent(id="helper", model=ScriptedModel([]))
    with pytest.raises(AgentDefinitionError, match="two agents are named 'helper'"):
        Agent(id="router", model=ScriptedModel([]), agents=[helper, helper])
