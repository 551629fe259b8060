"""The span tree fits a terminal: long lines wrap between attributes under the tree's rails, and
a part too long for a line is cut; piped output keeps every line whole."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console
from spanflow_otel import ConsoleOptions, format_run_tree
from spanflow_otel.testing import SpanCapture

from spanflow.cli.demo import run_demo

TREE_TITLE = "span tree (the run, then its resumed half, in one trace)\n"
PREFIX = re.compile(r"^(?:[│ ]  |[├└]─ )*")


def tree_of(out: str) -> list[str]:
    """The span tree's lines, without colour codes."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    return plain.split(TREE_TITLE, 1)[1].splitlines()


async def test_on_an_80_column_terminal_every_tree_line_fits_and_keeps_its_rails(
    tmp_path: Path,
) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80, no_color=True)

    await run_demo(console, db=tmp_path / "demo.db", speed=1000)

    tree = tree_of(screen.getvalue())
    assert max(len(line) for line in tree) <= 80
    assert len(tree) > 32  # lines that were too long went on under the tree
    assert any(line.startswith("├─ workflow_step validate-order  ") for line in tree)
    assert any(line.startswith("│  ├─ workflow_step reserve-inventory  ") for line in tree)
    assert any(line.startswith("│     ├─ chat scripted  ") for line in tree)
    assert any(line.startswith("└─ workflow_step send-confirmation  ") for line in tree)


async def test_piped_the_tree_keeps_one_whole_line_per_span(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=80)

    await run_demo(console, db=tmp_path / "demo.db", speed=1000)

    tree = tree_of(screen.getvalue())
    assert len(tree) == 32  # two trace headers and 30 spans
    assert max(len(line) for line in tree) > 80
    assert not any("…" in line for line in tree if "run.id=" in line)


def test_a_wrapped_span_continues_under_its_own_rail_and_its_parents(
    span_capture: SpanCapture,
) -> None:
    tracer = span_capture.tracer()
    with tracer.start_as_current_span("root", attributes={"spanflow.a": "x" * 30}):
        with tracer.start_as_current_span("child", attributes={"spanflow.b": "y" * 20}):
            pass
        with tracer.start_as_current_span("last", attributes={"spanflow.c": "z" * 20}):
            pass
    options = ConsoleOptions()

    text = format_run_tree(span_capture.spans, options, width=24)

    lines = text.splitlines()[1:]
    assert all(len(line) <= 24 for line in lines)
    assert [PREFIX.match(line).group() for line in lines] == [  # type: ignore[union-attr]
        "",
        "│  ",
        "├─ ",
        "│     ",
        "└─ ",
        "      ",
    ]
    assert lines[1] == "│  {a=xxxxxxxxxxxxxxxxx…"
