"""`RunDisplay` on plain (non-terminal) output: what a person reads, line by line."""

from __future__ import annotations

import io
import re

from pydantic import BaseModel
from rich.console import Console

from spanflow import StepContext, Workflow, create_workflow, step
from spanflow.cli.display import RunDisplay, format_duration


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


def test_durations_read_in_milliseconds_then_seconds() -> None:
    assert [format_duration(ms) for ms in (0, 42, 999, 1000, 12345)] == [
        "0 ms",
        "42 ms",
        "999 ms",
        "1.00 s",
        "12.35 s",
    ]
