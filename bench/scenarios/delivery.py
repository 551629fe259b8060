"""Scenario 4, delivery: many runs back to back with OTLP export, then count what arrived.

``python -m bench.scenarios.delivery defaults|sized``: the plugin's default export queue (2048
spans, the SDK's), or one sized for the whole burst. A counting span processor says how many
spans were created, the plugin's `Telemetry.dropped_spans` how many it dropped on a full queue,
and the receiver (after `Telemetry.shutdown`) how many arrived. Met when everything arrived, or
when every span that did not arrive was counted as dropped. The runs are timed in blocks of
1,000 (the median block is the time reported).
"""

from __future__ import annotations

import asyncio
import sys
import time

from spanflow_otel import BatchOptions

from bench.measure import Measurement, Sizes, emit, peak_rss_mb, rss_mb
from bench.receiver import ReceiverProcess
from bench.workloads import chain, run_start, tracing
from spanflow.storage.memory import MemoryStorage

BLOCK = 1000
SPANS_PER_RUN = 4


async def measure(sizes: Sizes, variant: str) -> list[Measurement]:
    runs = sizes.delivery_runs
    if variant == "defaults":
        batch = BatchOptions()
    elif variant == "sized":
        batch = BatchOptions(max_queue_size=2 * runs * SPANS_PER_RUN)
    else:
        raise SystemExit(f"unknown variant {variant!r}: expected 'defaults' or 'sized'")
    with ReceiverProcess() as receiver:
        setup = tracing("otlp", endpoint=receiver.endpoint, batch=batch, count_spans=True)
        telemetry, counter = setup.telemetry, setup.counter
        assert telemetry is not None
        assert counter is not None
        workflow = setup.apply(chain(3))
        rss_before = rss_mb()
        blocks = []
        start = time.perf_counter()
        for _ in range(runs // BLOCK):
            workflow.storage = MemoryStorage()
            block_start = time.perf_counter()
            for _ in range(BLOCK):
                await run_start(workflow, {"v": 0})
            blocks.append(time.perf_counter() - block_start)
        runs_done = time.perf_counter()
        shut_down = telemetry.shutdown(timeout=120)
        shutdown_s = time.perf_counter() - runs_done
        created = counter.ended
        dropped = telemetry.dropped_spans
        delivered = receiver.wait_for(created - dropped, timeout=10)
    extra = {
        "runs": len(blocks) * BLOCK,
        "created_spans": created,
        "delivered_spans": delivered,
        "dropped_spans": dropped,
        "unaccounted_spans": created - delivered - dropped,
        "shutdown_in_time": shut_down,
        "runs_s": runs_done - start,
        "shutdown_s": shutdown_s,
        "queue_size": batch.max_queue_size or 2048,
        "rss_growth_mb": peak_rss_mb() - rss_before,
    }
    return [Measurement(f"s4.{variant}", blocks, BLOCK, "run", extra)]


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    variant = args[0] if args else "defaults"
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]), variant)))


if __name__ == "__main__":
    main()
