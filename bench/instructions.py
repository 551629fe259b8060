"""``python -m bench.instructions``: CPU instructions per run, counted by valgrind's callgrind.

Wall-clock times on a shared machine move by tens of percent between repetitions; instruction
counts do not (the same binary, inputs and environment give the same count). This counts a
whole process running N runs for two values of N; the difference divided by the difference in
runs is the per-run cost, free of start-up and import costs. Compare two commits by running it
in a checkout of each.

Workloads (``--workload``), no SDK configured unless said, in-memory store unless said:

- ``chain``: a 3-step workflow of trivial steps on plain dicts (create_run + start);
- ``stream``: ``chain`` through ``run.stream()``, every event consumed, ``out.result`` awaited;
- ``traced``: ``chain`` traced into an SDK tracer provider that keeps its spans in memory
  (`SimpleSpanProcessor`);
- ``sqlite``: ``chain`` on a SQLite file;
- ``models`` and ``models-stream``: the bench's 3-step workflow with pydantic schemas
  (`bench.workloads.chain`) run as scenario 3 runs it (`run_start`, `run_stream`);
- ``chain1000`` and ``stream1000``: one run of the bench's 1,000-step workflow per N, as
  scenario 1 runs it; reported per step too, so the ratio to the 3-step runs shows what a
  run costs besides its steps;
- ``traced1000``: ``chain1000`` traced into memory, as scenario 1's in-memory variant;
- ``encode-sdk`` and ``encode-fast``: a ``traced1000`` run's spans encoded to OTLP as the
  export child does, with the SDK's encoder or the child's own; per step is per span;
- ``raw1000``: scenario 8's in-memory variant, the spans of one ``traced1000`` run replayed
  directly with the SDK (`bench.scenarios.raw_sdk`). Scenario 8's ratio, spanflow's added
  cost against the SDK's own, is then ``(traced1000 - chain1000) / raw1000``, printed as the
  last line when all three ran.

Long workloads count fewer runs (``--long-runs``, default 2 and 4) than short ones (``--runs``,
default 100 and 200). Every run starts from the same heap: after a warm-up run the heap is
frozen (`gc.freeze`), and each run gets a fresh in-memory store after a full collection (as
scenario 1 times its runs), so the count does not depend on where the collector happened to
run, nor on the runs a store kept; run and call ids come from seeded sources, so every process
hashes the same strings. Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Workload:
    """What one workload runs: how many steps, through which call, on what."""

    steps: int = 3
    stream: bool = False
    """``run.stream()`` with every event consumed, else ``run.start()``."""
    models: bool = False
    """The bench's pydantic-typed chain (`bench.workloads.chain`), else plain dicts."""
    store: str = "memory"
    traced: bool = False
    raw: bool = False
    """Replay a traced run's spans with the SDK (scenario 8) instead of running the workflow."""
    encode: str = ""
    """``sdk`` or ``fast``: encode a traced run's spans to OTLP, as the export child gets them,
    with the SDK's `encode_spans` or the child's own (`spanflow_otel._otlp_encode`)."""

    @property
    def long(self) -> bool:
        return self.steps > 3


WORKLOADS: dict[str, Workload] = {
    "chain": Workload(),
    "stream": Workload(stream=True),
    "traced": Workload(traced=True),
    "sqlite": Workload(store="sqlite"),
    "models": Workload(models=True),
    "models-stream": Workload(models=True, stream=True),
    "chain1000": Workload(steps=1000, models=True),
    "stream1000": Workload(steps=1000, models=True, stream=True),
    "traced1000": Workload(steps=1000, models=True, traced=True),
    "raw1000": Workload(steps=1000, models=True, traced=True, raw=True),
    "encode-sdk": Workload(steps=1000, models=True, traced=True, encode="sdk"),
    "encode-fast": Workload(steps=1000, models=True, traced=True, encode="fast"),
}
DEFAULT = ("chain", "stream", "traced", "sqlite", "chain1000", "stream1000")
"""What runs without ``--workload``: the models variants only on request."""


async def _increment(ctx: Any) -> dict[str, int]:
    return {"n": ctx.input_data["n"] + 1}


def _workflow(workload: Workload, storage: Any) -> Any:
    from spanflow import create_step, create_workflow

    if workload.models:
        from bench.workloads import chain

        workflow = chain(workload.steps)
        workflow.storage = storage
        return workflow
    workflow = create_workflow(id="chain", storage=storage)
    for index in range(workload.steps):
        workflow.then(create_step(id=f"s{index}", execute=_increment))
    return workflow.commit()


async def _child(name: str, runs: int, folder: str) -> None:
    from bench.workloads import run_start, run_stream
    from spanflow.storage import MemoryStorage, SqliteStorage, Storage

    _repeatable_ids()
    workload = WORKLOADS[name]
    storage: Storage = (
        SqliteStorage(os.path.join(folder, "r.db"))
        if workload.store == "sqlite"
        else MemoryStorage()
    )
    workflow = _workflow(workload, storage)
    tracing: _InMemoryTracing | None = None
    if workload.traced:
        tracing = _InMemoryTracing()
        workflow.instrumentation = tracing.instrumentation
    runner = run_stream if workload.stream else run_start
    start = {"v": 0} if workload.models else {"n": 0}
    await runner(workflow, start)  # warm-up: whatever is imported or cached on first use
    if workload.raw and tracing is not None:
        tracing.capture()
    encode = _encoding(workload.encode, tracing) if workload.encode else None
    # Every run starts from the same heap, so two processes differ by whole runs, not by where
    # the collector happened to fall: a fresh store (in memory), after a full collection, over
    # a frozen heap (imports and the warm-up), which that collection then does not walk.
    gc.collect()
    gc.freeze()
    for _ in range(runs):
        if workload.store == "memory":
            workflow.storage = MemoryStorage()
        if tracing is not None:
            tracing.spans.clear()  # as the bench flushes: a run's spans are not kept
        gc.collect()
        if encode is not None:
            encode()
        elif tracing is not None and tracing.template is not None:
            tracing.replay()
        else:
            await runner(workflow, start)
    await storage.close()


def _encoding(encoder: str, tracing: _InMemoryTracing | None) -> Callable[[], None]:
    """One "run" of an ``encode-*`` workload: the warm-up run's spans, rebuilt as the export
    child rebuilds them and in its batches of 512, encoded and serialized as its exporter
    does (per step is then per span)."""
    import spanflow_otel._otlp_encode as fast
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from spanflow_otel._export_child import decode_batch, encode_batch

    if tracing is None:
        raise ValueError("the encode workloads encode the spans of a traced run")
    spans = decode_batch(*encode_batch(tracing.spans.get_finished_spans()))
    batches = [spans[i : i + 512] for i in range(0, len(spans), 512)]
    chosen = encode_spans if encoder == "sdk" else fast.encode_spans

    def encode() -> None:
        for batch in batches:
            chosen(batch).SerializePartialToString()

    encode()  # the fast encoder's caches, as in a child that exported a batch already
    return encode


def _repeatable_ids() -> None:
    """Draw the ids the engine makes (run ids from `uuid.uuid4`, call and owner ids from
    `random`) from seeded sources, so that every process hashes the same strings and lays its
    dicts out the same way: random ids alone move a long run's count by about 1%."""
    random.seed(0)
    numbers = itertools.count(1)

    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=next(numbers), version=4)

    uuid.uuid4 = uuid4


class _InMemoryTracing:
    """An instrumentation tracing into an SDK provider that keeps its spans in memory, and
    that memory (cleared before each run, so the collections do not walk earlier runs').
    Once `capture` took the spans of one run, `replay` makes the same spans with the SDK
    alone, as scenario 8 does."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from spanflow.tracing.config import TracingConfig
        from spanflow.tracing.otel import OtelInstrumentation

        self.provider = TracerProvider()
        self.spans = InMemorySpanExporter()
        self.provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.instrumentation = OtelInstrumentation(TracingConfig(tracer_provider=self.provider))
        self.template: Any = None

    def capture(self) -> None:
        from bench.scenarios.raw_sdk import capture

        self.template = capture(self.spans.get_finished_spans())

    def replay(self) -> None:
        from bench.scenarios.raw_sdk import replay

        replay(self.provider, self.template)


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
    parser.add_argument("--workload", choices=tuple(WORKLOADS), action="append")
    parser.add_argument("--runs", type=int, nargs=2, default=[100, 200], metavar=("FEW", "MANY"))
    parser.add_argument("--long-runs", type=int, nargs=2, default=[2, 4], metavar=("FEW", "MANY"))
    parser.add_argument("--child", nargs=3, metavar=("WORKLOAD", "RUNS", "FOLDER"))
    options = parser.parse_args()
    if options.child is not None:
        workload, runs, folder = options.child
        asyncio.run(_child(workload, int(runs), folder))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    print("| workload | instructions per run | per step |")
    print("|---|---|---|")
    per_runs: dict[str, float] = {}
    for name in options.workload or DEFAULT:
        workload = WORKLOADS[name]
        few, many = options.long_runs if workload.long else options.runs
        per_run = per_runs[name] = (_count(name, many) - _count(name, few)) / (many - few)
        per_step = per_run / workload.steps
        print(f"| {name} | {per_run / 1000:,.0f}k | {per_step / 1000:,.1f}k |", flush=True)
    if {"chain1000", "traced1000", "raw1000"} <= per_runs.keys():
        added = per_runs["traced1000"] - per_runs["chain1000"]
        ratio = added / per_runs["raw1000"]
        print(f"\nscenario 8, to memory: tracing adds {ratio:.2f}x the SDK's own")


if __name__ == "__main__":
    main()
