"""Scenario 6: a foreach over many items with concurrency 16, streamed; throughput, peak memory.

``python -m bench.scenarios.foreach TRACING`` (``nosdk`` or ``otlp``), in a fresh process so
the peak resident set is this scenario's: its peak (VmHWM) over every repetition, and that peak
less the RSS of the idle process before the first run (the workflow built, nothing run yet).
With OTLP the export queue is sized for every span of a run (delivered and checked, the flush
timed).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import Any

from spanflow_otel import BatchOptions

from bench.measure import (
    Measurement,
    Sizes,
    emit,
    interleaved,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
)
from bench.receiver import ReceiverProcess
from bench.workloads import foreach_workflow, run_stream, tracing
from spanflow.storage.memory import MemoryStorage

CONCURRENCY = 16


async def measure(sizes: Sizes, tracing_name: str) -> list[Measurement]:
    items = sizes.foreach_items
    data = [{"v": i} for i in range(items)]
    with ReceiverProcess() as receiver:
        setup = tracing(
            tracing_name,
            endpoint=receiver.endpoint,
            batch=BatchOptions(max_queue_size=4 * items),
        )
        workflow = setup.apply(foreach_workflow(CONCURRENCY))
        delivered: list[int] = []
        gc.collect()
        idle = rss_mb()
        reset_peak_rss()

        async def body() -> float:
            workflow.storage = MemoryStorage()
            received = receiver.count()
            start = time.perf_counter()
            result = await run_stream(workflow, data)
            setup.flush()
            elapsed = time.perf_counter() - start
            if len(result) != items or result[-1].v != items:
                raise RuntimeError("the foreach returned the wrong outputs")
            if setup.telemetry is not None:
                delivered.append(receiver.count() - received)
            return elapsed

        timing = (await interleaved({tracing_name: body}, sizes.reps))[tracing_name]
        setup.close()
    samples = timing.samples
    extra: dict[str, Any] = {
        "items_per_s": items / statistics.median(samples),
        "idle_rss_mb": idle,
        "peak_rss_mb": peak_rss_mb(),
        "peak_growth_mb": peak_rss_mb() - idle,
        "concurrency": CONCURRENCY,
        **timing.extra(),
    }
    if delivered:
        extra["delivered_spans_per_run"] = statistics.median(delivered)
    return [Measurement(f"s6.{tracing_name}", samples, items, "item", extra)]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]), args[0] if args else "nosdk")))


if __name__ == "__main__":
    main()
