"""Scenario 5, flatness: many runs in one fresh process; do later runs cost more?

``python -m bench.scenarios.flatness TRACING [STORE]``: runs of the 3-step workflow, each
timed on its own, after a short warm-up. The per-run time of the last block of 1,000 runs is
compared with the first block (the median run of each block), and resident memory after the
last run with memory after the warm-up.

This machine is shared: its speed changes in phases of seconds (the same code runs 50% slower
for a while, in CPU time as well as in wall time), longer than a block. So a fixed pure-Python
workload is timed (in thread CPU time) every 100 runs, and each block's median run is divided
by the median of the calibrations taken during it. The *calibrated* ratio is the one judged;
the raw one is shown beside it. The calibration loop allocates nothing that lives, so a bigger
heap does not slow it: what the engine accumulates still shows in the calibrated ratio.

With OTLP export the plugin's default export queue is used, as a user would have it: spans it
drops (counted) cost nothing, but a bigger queue would hold a backlog that reads as growth.

STORE is ``keep`` (the default: the workflow's in-memory store keeps every run, as a
workflow without a registry does) or ``delete`` (each run is deleted from the store after it
ends), which separates what the store retains by design from what the engine leaks.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import Any

from bench.measure import Measurement, Sizes, emit, rss_mb
from bench.receiver import ReceiverProcess
from bench.workloads import Value, chain, tracing

WARM_UP = 500
CALIBRATE_EVERY = 100


def _calibration() -> float:
    """CPU seconds a fixed pure-Python workload takes now: the machine's current speed.

    Thread CPU time, not wall time: the export thread holding the GIL must not count.
    """
    start = time.thread_time()
    table: dict[int, int] = {}
    total = 0
    for i in range(20_000):
        table[i & 255] = i
        total += table.get(i & 127, 0) + len(str(i))
    return time.thread_time() - start


def _blocks(values: list[float], size: int) -> list[list[float]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


async def measure(sizes: Sizes, tracing_name: str, store: str) -> list[Measurement]:
    if store not in ("keep", "delete"):
        raise SystemExit(f"unknown store mode {store!r}: expected 'keep' or 'delete'")
    with ReceiverProcess() as receiver:
        setup = tracing(tracing_name, endpoint=receiver.endpoint)
        workflow = setup.apply(chain(3))
        storage = workflow.storage
        times: list[float] = []
        calibrations: list[float] = []
        rss_start = 0.0
        for i in range(WARM_UP + sizes.flat_runs):
            if i == WARM_UP:
                setup.flush()
                gc.collect()
                rss_start = rss_mb()
            if i >= WARM_UP and (i - WARM_UP) % CALIBRATE_EVERY == 0:
                calibrations.append(_calibration())
            start = time.perf_counter()
            run = await workflow.create_run()
            result = await run.start(input_data={"v": 0})
            elapsed = time.perf_counter() - start
            if result.result != Value(v=3):
                raise RuntimeError(f"unexpected result {result.result!r}")
            if store == "delete":
                await storage.delete_run(run.run_id)
            if i >= WARM_UP:
                times.append(elapsed)
        setup.flush()
        gc.collect()
        rss_end = rss_mb()
        dropped = setup.telemetry.dropped_spans if setup.telemetry is not None else 0
        setup.close()

    block = sizes.flat_block
    medians = [statistics.median(b) for b in _blocks(times, block)]
    speeds = [statistics.median(c) for c in _blocks(calibrations, block // CALIBRATE_EVERY)]
    calibrated = [m / s for m, s in zip(medians, speeds, strict=True)]
    extra: dict[str, Any] = {
        "runs": len(times),
        "first_us": medians[0] * 1e6,
        "last_us": medians[-1] * 1e6,
        "last_vs_first": calibrated[-1] / calibrated[0],
        "last_vs_first_raw": medians[-1] / medians[0],
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_growth_mb": rss_end - rss_start,
        "dropped_spans": dropped,
        "block_medians_us": [m * 1e6 for m in medians],
        "block_calibrations_ms": [s * 1e3 for s in speeds],
    }
    return [Measurement(f"s5.{tracing_name}.{store}", medians, 1, "run", extra)]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tracing_name = args[0] if args else "nosdk"
    store = args[1] if len(args) > 1 else "keep"
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]), tracing_name, store)))


if __name__ == "__main__":
    main()
