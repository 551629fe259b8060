"""Scenario 5, flatness: many runs in one fresh process; do later runs cost more?

``python -m bench.scenarios.flatness TRACING [STORE]``: runs of the 3-step workflow, each
timed on its own, after a short warm-up. The per-run time of the last 1,000 runs is compared
with the first 1,000 (medians), and resident memory after the last run with memory after the
warm-up.

This machine is shared: its speed changes in phases of seconds (the same code up to twice as
slow, in CPU time too), longer than 1,000 runs. So the runs go in chunks of 100, with a
`Speedometer` reading (thread CPU time, so an export thread does not count) between chunks; a
chunk whose readings before and after are both within 15% of the best is calm. "First" and
"last" 1,000 are the first and the last ten *calm* chunks; the plain first and last 1,000 are
reported beside them. The speedometer keeps nothing alive, so what the engine accumulates
still shows.

TRACING is ``nosdk`` or ``discard`` (an SDK provider creating every span, its exporter
dropping them: tracing fully on without an export queue whose drops and backlog would decide
the timing; scenario 4 is about export). STORE is ``keep`` (the default: the workflow's
in-memory store keeps every run, as a workflow without a registry does) or ``delete`` (each
run deleted from the store after it ends), which separates what the store keeps by design
from what the engine leaks.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from itertools import chain as concat
from typing import Any

from bench.measure import Measurement, Sizes, Speedometer, emit, rss_mb
from bench.workloads import Value, chain, tracing

WARM_UP = 500
CHUNK = 100


def _pick(chunks: list[list[float]], calm: list[bool], count: int, last: bool) -> list[float]:
    """The runs of the first (or last) `count` calm chunks; all chunks if too few are calm."""
    order = range(len(chunks) - 1, -1, -1) if last else range(len(chunks))
    picked = [chunks[i] for i in order if calm[i]][:count]
    if len(picked) < count:
        picked = [chunks[i] for i in order][:count]
    return list(concat.from_iterable(picked))


async def measure(sizes: Sizes, tracing_name: str, store: str) -> list[Measurement]:
    if store not in ("keep", "delete"):
        raise SystemExit(f"unknown store mode {store!r}: expected 'keep' or 'delete'")
    setup = tracing(tracing_name)
    workflow = setup.apply(chain(3))
    storage = workflow.storage
    meter = Speedometer(time.thread_time)
    times: list[float] = []
    readings: list[float] = []
    rss_start = 0.0
    for i in range(WARM_UP + sizes.flat_runs):
        if i == WARM_UP:
            gc.collect()
            rss_start = rss_mb()
        if i >= WARM_UP and (i - WARM_UP) % CHUNK == 0:
            readings.append(meter.reading())
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
    readings.append(meter.reading())
    gc.collect()
    rss_end = rss_mb()
    setup.close()

    chunks = [times[i : i + CHUNK] for i in range(0, len(times), CHUNK)]
    calm = [meter.calm(readings[i], readings[i + 1]) for i in range(len(chunks))]
    per_block = sizes.flat_block // CHUNK
    first = statistics.median(_pick(chunks, calm, per_block, last=False))
    last = statistics.median(_pick(chunks, calm, per_block, last=True))
    block = sizes.flat_block
    plain_first = statistics.median(times[:block])
    plain_last = statistics.median(times[-block:])
    extra: dict[str, Any] = {
        "runs": len(times),
        "first_us": first * 1e6,
        "last_us": last * 1e6,
        "last_vs_first": last / first,
        "last_vs_first_plain": plain_last / plain_first,
        "calm_chunks": sum(calm),
        "chunks": len(chunks),
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_growth_mb": rss_end - rss_start,
        "chunk_medians_us": [statistics.median(c) * 1e6 for c in chunks],
        "readings_ms": [r * 1e3 for r in readings],
    }
    samples = [statistics.median(times[i : i + block]) for i in range(0, len(times), block)]
    return [Measurement(f"s5.{tracing_name}.{store}", samples, 1, "run", extra)]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tracing_name = args[0] if args else "nosdk"
    store = args[1] if len(args) > 1 else "keep"
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]), tracing_name, store)))


if __name__ == "__main__":
    main()
