"""Scenario 3: many runs of a 3-step workflow back to back, ``start()`` and ``stream()``.

Tracing off (no SDK), on to memory, and on with OTLP export, the exporter in a child process
(the default) and in a thread of this process (flushed inside the timed region;
the receiver must have every span: the export queue is sized so that none is dropped, see
`QUEUE`). Each repetition starts with a fresh run store, so runs kept
by earlier repetitions do not slow later ones (scenario 5 measures that growth on its own).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from spanflow_otel import BatchOptions

from bench.measure import Measurement, Sizes, emit, interleaved
from bench.receiver import ReceiverProcess
from bench.workloads import Tracing, Value, chain, run_start, run_stream, tracing
from spanflow import Workflow
from spanflow.storage.memory import MemoryStorage

Runner = Callable[[Workflow, Any], Awaitable[Any]]
SPANS_PER_RUN = 4
TRACINGS = ("nosdk", "memory", "otlp", "otlp-thread")
QUEUE = BatchOptions(max_queue_size=65_536)
"""The default queue (2048 spans) overflows at this span rate and drops about a fifth of the
spans (counted; scenario 4 shows it), which would also make the timing look cheaper."""


def body(
    workflow: Workflow,
    runner: Runner,
    setup: Tracing,
    runs: int,
    receiver: ReceiverProcess,
    delivered: list[int],
) -> Callable[[], Awaitable[float]]:
    async def timed() -> float:
        workflow.storage = MemoryStorage()
        before = receiver.count() if setup.telemetry is not None else 0
        start = time.perf_counter()
        for _ in range(runs):
            result = await runner(workflow, {"v": 0})
        setup.flush()
        elapsed = time.perf_counter() - start
        if result != Value(v=3):
            raise RuntimeError(f"unexpected result {result!r}")
        if setup.telemetry is not None:
            delivered.append(receiver.count() - before)
        return elapsed

    return timed


async def measure(sizes: Sizes) -> list[Measurement]:
    delivered: dict[str, list[int]] = {}
    with ReceiverProcess() as receiver:
        setups = {name: tracing(name, endpoint=receiver.endpoint, batch=QUEUE) for name in TRACINGS}
        variants = {}
        for name, setup in setups.items():
            workflow = setup.apply(chain(3))
            for mode, runner in (("start", run_start), ("stream", run_stream)):
                if mode == "stream" and name == "otlp-thread":
                    continue  # the comparison is start() against the default exporter
                key = f"s3.{mode}.{name}"
                delivered[key] = []
                variants[key] = body(workflow, runner, setup, sizes.runs, receiver, delivered[key])
        timings = await interleaved(variants, sizes.reps)
        for setup in setups.values():
            setup.close()
    results = []
    for key, timing in timings.items():
        extra: dict[str, Any] = timing.extra()
        if delivered[key]:
            extra["expected_spans"] = len(delivered[key]) * sizes.runs * SPANS_PER_RUN
            extra["delivered_spans"] = sum(delivered[key])
        results.append(Measurement(key, timing.samples, sizes.runs, "run", extra))
    return results


def main() -> None:
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]))))


if __name__ == "__main__":
    main()
