"""``python -m bench.instructions``: CPU instructions per run, counted by valgrind's callgrind.

Wall-clock times on a shared machine move by tens of percent between repetitions; instruction
counts do not (the same binary, inputs and environment give the same count). This counts a
whole process running N short runs for two values of N; the difference divided by the
difference in runs is the per-run cost, free of start-up and import costs. Compare two
commits by running it in a checkout of each.

Workloads (``--workload``): ``chain`` is a 3-step workflow of trivial steps, no SDK
configured, on the in-memory store (create_run + start); ``traced`` is the same traced into an
SDK tracer provider that keeps its spans in memory (`SimpleSpanProcessor`); ``sqlite`` is
``chain`` on a SQLite file. Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

WORKLOADS = ("chain", "traced", "sqlite")


async def _increment(ctx: Any) -> dict[str, int]:
    return {"n": ctx.input_data["n"] + 1}


async def _child(workload: str, runs: int, folder: str) -> None:
    from spanflow import create_step, create_workflow
    from spanflow.storage import MemoryStorage, SqliteStorage, Storage

    storage: Storage = (
        MemoryStorage() if workload == "chain" else SqliteStorage(os.path.join(folder, "r.db"))
    )
    workflow = create_workflow(id="chain", storage=storage)
    for index in range(3):
        workflow.then(create_step(id=f"s{index}", execute=_increment))
    workflow.commit()
    if workload == "traced":
        workflow.instrumentation = _in_memory_tracing()
    for _ in range(runs):
        await (await workflow.create_run()).start({"n": 0})
    await storage.close()


def _in_memory_tracing() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from spanflow.tracing.config import TracingConfig
    from spanflow.tracing.otel import OtelInstrumentation

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return OtelInstrumentation(TracingConfig(tracer_provider=provider))


def _count(workload: str, runs: int) -> int:
    with tempfile.TemporaryDirectory(prefix="spanflow-instructions-") as folder:
        out = Path(folder) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.instructions",
                "--child",
                workload,
                str(runs),
                folder,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("--workload", choices=WORKLOADS, action="append")
    parser.add_argument("--runs", type=int, nargs=2, default=[100, 200], metavar=("FEW", "MANY"))
    parser.add_argument("--child", nargs=3, metavar=("WORKLOAD", "RUNS", "FOLDER"))
    options = parser.parse_args()
    if options.child is not None:
        workload, runs, folder = options.child
        asyncio.run(_child(workload, int(runs), folder))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    few, many = options.runs
    print("| workload | instructions per run |")
    print("|---|---|")
    for workload in options.workload or WORKLOADS:
        per_run = (_count(workload, many) - _count(workload, few)) / (many - few)
        print(f"| {workload} | {per_run / 1000:,.0f}k |", flush=True)


if __name__ == "__main__":
    main()
