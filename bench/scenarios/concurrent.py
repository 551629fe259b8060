"""Scenario 7: many runs at once (``asyncio.gather``), each with a step that sleeps 10 ms.

The workflow is three steps, the middle one sleeping 10 ms, so the ideal wall time is 10 ms
plus the engine's own work for every run. Timed: creating the runs and starting them all,
until the last one finished (and, with OTLP, its spans were flushed). Tracing off (no SDK) and
with OTLP export, interleaved.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from spanflow_otel import BatchOptions

from bench.measure import Measurement, Sizes, emit, interleaved
from bench.receiver import ReceiverProcess
from bench.workloads import Tracing, Value, napping_workflow, run_start, tracing
from spanflow import Workflow
from spanflow.storage.memory import MemoryStorage


def body(workflow: Workflow, setup: Tracing, runs: int, calls: list[int]) -> Any:
    async def timed() -> float:
        calls.append(runs)
        workflow.storage = MemoryStorage()
        start = time.perf_counter()
        results = await asyncio.gather(*(run_start(workflow, {"v": 0}) for _ in range(runs)))
        setup.flush()
        elapsed = time.perf_counter() - start
        if any(result != Value(v=3) for result in results):
            raise RuntimeError("a run returned the wrong value")
        return elapsed

    return timed


async def measure(sizes: Sizes) -> list[Measurement]:
    runs = sizes.concurrent_runs
    with ReceiverProcess() as receiver:
        batch = BatchOptions(max_queue_size=8 * runs)
        setups = {n: tracing(n, endpoint=receiver.endpoint, batch=batch) for n in ("nosdk", "otlp")}
        otlp_runs: list[int] = []
        variants = {
            f"s7.{name}": body(
                setup.apply(napping_workflow()), setup, runs, otlp_runs if name == "otlp" else []
            )
            for name, setup in setups.items()
        }
        timings = await interleaved(variants, sizes.reps)
        delivered = receiver.count()
        for setup in setups.values():
            setup.close()
    results = []
    for key, timing in timings.items():
        extra = timing.extra()
        if key == "s7.otlp":
            extra |= {"delivered_spans": delivered, "expected_spans": sum(otlp_runs) * 4}
        results.append(Measurement(key, timing.samples, runs, "run", extra))
    return results


def main() -> None:
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]))))


if __name__ == "__main__":
    main()
