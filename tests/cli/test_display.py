"""`RunDisplay` on plain (non-terminal) output, what a person reads line by line; and on a
terminal, an agent's text as it streams."""

from __future__ import annotations

import io
import re
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from spanflow import StepContext, Workflow, create_workflow, step
from spanflow.agents import Agent, ModelError, ScriptedModel, ScriptedReply, ScriptedToolCall, tool
from spanflow.agents.models import ModelRequest, last_tool_results
from spanflow.cli.display import RunDisplay, format_duration
from spanflow.usage import Usage
from spanflow.workflows.events import StepOutputPayload, WorkflowEvent


class Numbers(BaseModel):
    values: list[int]


@step(input_schema=Numbers)
async def explode(ctx: StepContext[Numbers]) -> None:
    await ctx.writer.write(f"about to fail on {len(ctx.input_data.values)} values")
    raise ValueError("the flux capacitor is empty")


@step
async def double(ctx: StepContext[int]) -> int:
    return ctx.input_data * 2


@step
async def halve(ctx: StepContext[int]) -> float:
    return ctx.input_data / 2


def plain_console() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, width=80, highlight=False, emoji=False), screen


async def render(workflow: Workflow, input_data: object, console: Console) -> None:
    display = RunDisplay(console, workflow)
    run = await workflow.create_run(run_id="run-1")
    out = run.stream(input_data)
    async for event in out:
        display.show(event)
    display.summary(await out.result)


def without_timings(text: str) -> str:
    return re.sub(r"\d+(\.\d+)? (ms|s)\b", "<t>", text)


async def test_a_failed_step_shows_its_error_in_the_step_line_and_the_summary() -> None:
    workflow = create_workflow(id="doomed", input_schema=Numbers).then(explode).commit()
    console, screen = plain_console()

    await render(workflow, {"values": [1, 2, 3]}, console)

    assert without_timings(screen.getvalue()).splitlines() == [
        "▶ doomed started (run run-1)",
        "  ▸ explode",
        "    │ about to fail on 3 values",
        "  ✗ explode             <t>  ValueError: the flux capacitor is empty",
        "✗ doomed failed after <t>: ValueError: the flux capacitor is empty",
        "╭─ doomed: failed ────────────────────────╮",
        "│ run id  run-1                           │",
        "│                                         │",
        "│ error                                   │",
        "│ ValueError: the flux capacitor is empty │",
        "╰─────────────────────────────────────────╯",
    ]


async def test_foreach_iterations_are_numbered_as_they_complete() -> None:
    workflow = create_workflow(id="numbers").foreach(double, concurrency=2).commit()
    console, screen = plain_console()

    await render(workflow, [1, 2, 3], console)

    lines = without_timings(screen.getvalue()).splitlines()
    assert lines[1] == "  ▸ double              foreach over 3 items, 2 at a time"
    assert sorted(lines[2:5]) == [
        "    ✓ 1/3  item 0  2",
        "    ✓ 2/3  item 1  4",
        "    ✓ 3/3  item 2  6",
    ]
    assert lines[5] == "  ✓ double              <t>"


async def test_parallel_steps_say_what_they_run_beside() -> None:
    workflow = create_workflow(id="both").parallel([double, halve]).commit()
    console, screen = plain_console()

    await render(workflow, 8, console)

    out = screen.getvalue()
    assert "  ▸ double              ∥ in parallel with halve\n" in out
    assert "  ▸ halve               ∥ in parallel with double\n" in out
    assert "│ double  16  " in out


async def test_output_that_cannot_show_unicode_falls_back_to_ascii() -> None:
    workflow = create_workflow(id="numbers").then(double).commit()
    screen = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    console = Console(file=screen, width=80, highlight=False, emoji=False)

    await render(workflow, 21, console)

    screen.seek(0)
    assert without_timings(screen.read()).splitlines() == [
        "> numbers started (run run-1)",
        "  > double",
        "  + double              <t>",
        "+ numbers succeeded in <t>",
        "+- numbers: success -+",
        "| run id  run-1      |",
        "|                    |",
        "| result             |",
        "| 42                 |",
        "+--------------------+",
    ]


@tool
def lookup(topic: str) -> dict[str, str]:
    """Look a topic up."""
    return {"topic": topic, "fact": "otters hold hands while they sleep"}


OTTER_TEXT = (
    "Otters hold hands while they sleep, so that the current does not carry them apart, and "
    "each keeps a favourite stone in a pouch of skin for cracking shells.\n\nSource: lookup."
)


def otter_expert(second: ScriptedReply) -> Agent:
    """Calls `lookup` with the prompt as its topic, then answers with `second`."""

    def reply(request: ModelRequest) -> ScriptedReply:
        if last_tool_results(request):
            return second
        call = ScriptedToolCall("lookup", {"topic": "otters"} if second.text else {"topic": 3})
        return ScriptedReply(tool_calls=[call], usage=Usage(10, 1, 11))

    return Agent(id="otter-expert", model=ScriptedModel(reply), tools=[lookup])


def asking(agent: Agent) -> Workflow:
    return create_workflow(id="ask").then(agent.as_step("answer")).commit()


async def test_an_agent_step_reads_as_tool_calls_results_text_and_tokens() -> None:
    agent = otter_expert(ScriptedReply(OTTER_TEXT, usage=Usage(20, 30, 50)))
    console, screen = plain_console()

    await render(asking(agent), {"prompt": "otters"}, console)

    lines = without_timings(screen.getvalue()).splitlines()
    assert lines[:13] == [
        "▶ ask started (run run-1)",
        "  ▸ answer",
        '    → lookup(topic="otters")',
        "      ← topic=otters, fact=otters hold hands while they sleep",
        "    │ Otters hold hands while they sleep, so that the current does not carry",
        "    │ them apart, and each keeps a favourite stone in a pouch of skin for",
        "    │ cracking shells.",
        "    │",
        "    │ Source: lookup.",
        "    Σ otter-expert used 61 tokens (30 in, 31 out)",
        "  ✓ answer              <t>",
        "✓ ask succeeded in <t>, 61 tokens (30 in, 31 out)",
        "╭─ ask: success ───────────────────────────────────────────────────────────────╮",
    ]
    assert lines[13:15] == [
        "│ run id  run-1                                                                │",
        "│ tokens  61 tokens (30 in, 31 out)                                            │",
    ]


async def test_a_tool_error_and_a_failed_agent_show_in_red_under_the_step() -> None:
    failure = ModelError("model endpoint http://m/v1 returned HTTP 500")
    agent = otter_expert(ScriptedReply(error=failure))
    console, screen = plain_console()

    await render(asking(agent), {"prompt": "otters"}, console)

    lines = without_timings(screen.getvalue()).splitlines()
    assert lines[2:5] == [
        "    → lookup(topic=3)",
        "      ← ToolArgumentsError: invalid arguments for tool 'lookup': field 'topic'…",
        "    ✗ agent failed: ModelError: model endpoint http://m/v1 returned HTTP 500",
    ]
    assert lines[5].startswith("  ✗ answer              <t>  AgentRunError: agent 'otter-expert'")


def agent_chunk(kind: str, payload: dict[str, Any], call: str = "call-1") -> WorkflowEvent:
    chunk = {"type": kind, "runId": call, "from": "AGENT", "payload": payload}
    return WorkflowEvent(
        "workflow-step-output", "run-1", StepOutputPayload("answer", chunk, "run-1")
    )


def terminal_console(width: int = 40) -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, width=width, force_terminal=True, color_system=None), screen


def test_on_a_terminal_the_text_appears_word_by_word_as_it_streams() -> None:
    console, screen = terminal_console()
    display = RunDisplay(console)
    shown: list[str] = []

    for delta in ["Ott", "ers hold ", "hands while they sle", "ep, so that the current ", "does"]:
        display.show(agent_chunk("text-delta", {"id": "t1", "text": delta}))
        shown.append(screen.getvalue())
    display.show(agent_chunk("text-end", {"id": "t1"}))

    assert shown[:3] == ["", "    │ Otters hold", "    │ Otters hold hands while they"]
    assert screen.getvalue() == (
        "    │ Otters hold hands while they\n    │ sleep, so that the current does\n"
    )


def test_on_a_terminal_other_output_starts_a_new_line_under_the_text() -> None:
    console, screen = terminal_console()
    display = RunDisplay(console)

    display.show(agent_chunk("text-delta", {"id": "t1", "text": "First agent "}))
    display.show(agent_chunk("text-delta", {"id": "t2", "text": "Second agent "}, call="call-2"))
    display.show(agent_chunk("tool-call", {"toolName": "lookup", "args": {"topic": "x"}}))
    display.show(agent_chunk("text-delta", {"id": "t1", "text": "goes on."}))
    display.show(agent_chunk("finish", {"output": {"usage": Usage().to_dict()}}))

    assert screen.getvalue().splitlines() == [
        "    │ First agent",
        "    │ Second agent",
        '    → lookup(topic="x")',
        "    │ goes on.",
    ]


def test_durations_read_in_milliseconds_then_seconds() -> None:
    assert [format_duration(ms) for ms in (0, 42, 999, 1000, 12345)] == [
        "0 ms",
        "42 ms",
        "999 ms",
        "1.00 s",
        "12.35 s",
    ]
