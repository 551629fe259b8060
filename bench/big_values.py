"""``python -m bench.big_values``: what tracing costs when a step outputs 10 MB.

One run of a one-step workflow whose step returns about 10 MB, untraced (no SDK configured)
and traced (an SDK tracer provider exporting to memory, every span kept), for three shapes:
one 10 MB string, the same string next to a credential key (which makes redaction walk the
value), and 10 MB of small records next to a credential key. Tracing renders the output for
the run span, the step span and two event payloads, each cut to 8 KiB: it must cost what is
kept, not what was given.

Each variant runs in a fresh subprocess (``--variant NAME``), three times, so that its peak
RSS (``VmHWM`` of ``/proc/self/status``) is its own; the table shows the median wall time of
``start()``, the peak RSS, what the run added to the RSS it started from, and traced against
untraced. Not part of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

SIZE = 10_000_000
REPETITIONS = 3


def _string() -> Any:
    return {"text": "x" * SIZE}


def _string_and_key() -> Any:
    return {"text": "x" * SIZE, "api_key": "not-shown"}


def _records() -> Any:
    row = "lorem ipsum dolor sit amet " * 3
    count = SIZE // (len(row) + 20)
    return {"api_key": "not-shown", "rows": [{"id": i, "text": row} for i in range(count)]}


SHAPES: dict[str, tuple[str, Callable[[], Any]]] = {
    "string": ("one 10 MB string", _string),
    "string-key": ("10 MB string + a credential key", _string_and_key),
    "records": ("10 MB of records + a credential key", _records),
}
TRACING = ("untraced", "traced")


def _memory() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process, in MB."""
    found: dict[str, float] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(rest.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


async def _measure(shape: str, tracing: str) -> dict[str, Any]:
    from spanflow import StepContext, TracingConfig, create_step, create_workflow
    from spanflow.tracing import OtelInstrumentation

    make = SHAPES[shape][1]

    async def produce(ctx: StepContext[Any]) -> Any:
        return make()

    workflow = create_workflow(id="big").then(create_step(id="produce", execute=produce)).commit()
    exporter = None
    if tracing == "traced":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        workflow.instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=provider))
    # A small run first: imports, caches and the tracer are warm when the big one is timed.
    warm = create_workflow(id="warm").then(create_step(id="s", execute=_echo)).commit()
    warm.instrumentation = workflow.instrumentation
    await (await warm.create_run()).start({"a": 1})
    run = await workflow.create_run()
    rss_before, _ = _memory()
    started = time.perf_counter()
    result = await run.start(None)
    seconds = time.perf_counter() - started
    _, peak = _memory()
    assert result.status == "success", result.error
    longest = 0
    if exporter is not None:
        spans = exporter.get_finished_spans()
        assert len(spans) >= 4, "the warm-up and the big run were both traced"
        longest = max(len(str(v)) for s in spans for v in (s.attributes or {}).values())
    return {"seconds": seconds, "peak_mb": peak, "added_mb": peak - rss_before, "longest": longest}


async def _echo(ctx: Any) -> Any:
    return ctx.input_data


def _run_variant(shape: str, tracing: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.big_values", "--variant", f"{shape}:{tracing}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def _table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    lines = [
        "| output of the step | untraced s | traced s | time × | untraced peak RSS MB "
        "(added) | traced peak RSS MB (added) | added memory × | longest attribute |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shape, (title, _) in SHAPES.items():
        cells: dict[str, dict[str, float]] = {}
        for tracing in TRACING:
            runs = results[shape][tracing]
            cells[tracing] = {
                key: statistics.median(run[key] for run in runs)
                for key in ("seconds", "peak_mb", "added_mb", "longest")
            }
        plain, traced = cells["untraced"], cells["traced"]
        lines.append(
            f"| {title} | {plain['seconds']:.3f} | {traced['seconds']:.3f} "
            f"| {traced['seconds'] / plain['seconds']:.1f} "
            f"| {plain['peak_mb']:.0f} ({plain['added_mb']:.0f}) "
            f"| {traced['peak_mb']:.0f} ({traced['added_mb']:.0f}) "
            f"| {traced['added_mb'] / max(plain['added_mb'], 1.0):.1f} "
            f"| {traced['longest']:.0f} chars |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", help="run one variant (shape:tracing) and print JSON")
    args = parser.parse_args()
    if args.variant:
        shape, tracing = args.variant.split(":")
        print(json.dumps(asyncio.run(_measure(shape, tracing))))
        return
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for shape in SHAPES:
        results[shape] = {
            tracing: [_run_variant(shape, tracing) for _ in range(REPETITIONS)]
            for tracing in TRACING
        }
    print(_table(results))


if __name__ == "__main__":
    main()
