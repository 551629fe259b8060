"""Every Python example in README.md runs as written and prints what the README shows.

The blocks are read from README.md itself, so the test cannot drift from it. Each runs as a
script in a fresh directory, with the repository on ``PYTHONPATH`` (for ``examples``); where a
``prints`` line and a ``text`` block follow it, stdout must be exactly that text. A block that
exports traces sends them to a local OTLP receiver (``OTEL_EXPORTER_OTLP_ENDPOINT``), which must
receive them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = "```"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
"""The trace the README's tracing example links its run into."""


@dataclass(frozen=True)
class Example:
    heading: str
    """The heading the block sits under (numbered when a heading has several blocks)."""
    code: str
    expected: str | None
    """The ``text`` block after ``prints``, or None when the README shows no output."""


def _fenced(lines: list[str], start: int) -> tuple[str, int]:
    """The text of the fenced block opening at `start`, and the index after its closing fence."""
    end = lines.index(FENCE, start + 1)
    return "".join(line + "\n" for line in lines[start + 1 : end]), end + 1


def _next_text(lines: list[str], index: int) -> int:
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


def readme_examples(text: str) -> list[Example]:
    lines = text.splitlines()
    examples: list[Example] = []
    heading = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith(FENCE):
            code, index = _fenced(lines, index)
            if line != FENCE + "python":
                continue
            expected = None
            after = _next_text(lines, index)
            if after < len(lines) and lines[after].strip() == "prints":
                output = _next_text(lines, after + 1)
                assert lines[output] == FENCE + "text", f"{heading}: 'prints' without a text block"
                expected, index = _fenced(lines, output)
            examples.append(Example(heading, code, expected))
            continue
        index += 1
    counts = Counter(example.heading for example in examples)
    seen: Counter[str] = Counter()
    named = []
    for example in examples:
        seen[example.heading] += 1
        if counts[example.heading] > 1:
            example = Example(
                f"{example.heading} ({seen[example.heading]})", example.code, example.expected
            )
        named.append(example)
    return named


EXAMPLES = readme_examples(README.read_text())


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as receiver:
        yield receiver


def test_the_readme_has_its_examples() -> None:
    assert [example.heading for example in EXAMPLES] == [
        "A workflow, streamed",
        "Durable runs: SQLite, PostgreSQL, resume anywhere (1)",
        "Durable runs: SQLite, PostgreSQL, resume anywhere (2)",
        "A run's life: pending, labels, time travel, hooks",
        "Watching a run from anywhere: the event log",
        "Agents",
        "Structured output, memory, guardrails and agent networks",
        "Serving workflows over HTTP (Mastra's wire format)",
        "Runs on workers: a job queue on PostgreSQL",
        "Tracing with Jaeger",
        "What tracing redacts by default, and how to extend it (1)",
        "What tracing redacts by default, and how to extend it (2)",
    ]


def test_the_first_example_is_examples_checkout_py() -> None:
    assert EXAMPLES[0].code == (ROOT / "examples" / "checkout.py").read_text()


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.heading for example in EXAMPLES])
def test_the_example_runs_and_prints_what_the_readme_shows(
    example: Example, tmp_path: Path, collector: OtlpReceiver
) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.code)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "SPANFLOW_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.http_base

    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    if example.expected is not None:
        assert done.stdout == example.expected, done.stderr
    if "spanflow_otel" in example.code:
        runs = [span for span in collector.spans() if span.name == "invoke_workflow checkout"]
        assert [span.trace_id.hex() for span in runs] == [TRACE_ID]
