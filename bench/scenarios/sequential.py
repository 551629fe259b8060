"""Scenarios 1, 2 and 8: one run of N sequential steps; and the same spans from the raw SDK.

1. ``start()`` under each tracing set-up (`bench.workloads.TRACINGS`);
2. the same through ``stream()``, consuming every event;
8. the spans of one traced run, replayed directly with the OpenTelemetry SDK (`raw_sdk`),
   exported to memory and over OTLP like the spanflow variants.

Every variant runs in this one process, interleaved repetition by repetition. OTLP variants
flush inside the timed region and check, each repetition, that the receiver got every span.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from bench.measure import Measurement, Sizes, emit, interleaved
from bench.receiver import ReceiverProcess
from bench.scenarios.raw_sdk import TraceTemplate, capture, replay
from bench.workloads import TRACINGS, Tracing, Value, chain, run_start, run_stream, tracing
from spanflow import Workflow
from spanflow.storage.memory import MemoryStorage

Body = Callable[[], Awaitable[float | None]]
Runner = Callable[[Workflow, Any], Awaitable[Any]]


class Delivery:
    """Spans the receiver got against spans expected, over the repetitions of one variant."""

    def __init__(self, receiver: ReceiverProcess) -> None:
        self.receiver = receiver
        self.expected = 0
        self.delivered = 0

    def check(self, before: int, spans: int) -> None:
        got = self.receiver.count() - before
        self.expected += spans
        self.delivered += got
        if got != spans:
            print(f"warning: {got} of {spans} spans delivered", file=sys.stderr)

    def extra(self) -> dict[str, Any]:
        return {"expected_spans": self.expected, "delivered_spans": self.delivered}


def spanflow_body(
    workflow: Workflow, runner: Runner, setup: Tracing, steps: int, delivery: Delivery | None
) -> Body:
    async def body() -> float:
        workflow.storage = MemoryStorage()  # earlier repetitions' runs are not kept around
        before = delivery.receiver.count() if delivery is not None else 0
        start = time.perf_counter()
        result = await runner(workflow, {"v": 0})
        setup.flush()
        elapsed = time.perf_counter() - start
        if delivery is not None:
            delivery.check(before, steps + 1)
        if result != Value(v=steps):
            raise RuntimeError(f"unexpected result {result!r}")
        return elapsed

    return body


def raw_body(
    provider: TracerProvider, template: TraceTemplate, setup: Tracing, delivery: Delivery | None
) -> Body:
    async def body() -> float:
        before = delivery.receiver.count() if delivery is not None else 0
        start = time.perf_counter()
        replay(provider, template)
        setup.flush()
        elapsed = time.perf_counter() - start
        if delivery is not None:
            delivery.check(before, template.span_count)
        return elapsed

    return body


async def measure(sizes: Sizes) -> list[Measurement]:
    steps = sizes.steps
    with ReceiverProcess() as receiver:
        setups = {name: tracing(name, endpoint=receiver.endpoint) for name in TRACINGS}
        workflows = {name: setup.apply(chain(steps)) for name, setup in setups.items()}

        # The template for scenario 8: the spans of one in-memory traced run.
        memory = setups["memory"]
        assert memory.memory is not None
        await run_start(workflows["memory"], {"v": 0})
        template = capture(memory.memory.get_finished_spans())
        memory.flush()

        variants: dict[str, Body] = {}
        deliveries: dict[str, Delivery] = {}
        for name, setup in setups.items():
            for mode, runner in (("start", run_start), ("stream", run_stream)):
                if mode == "stream" and name == "otlp-thread":
                    continue  # the comparison is start() against the default exporter
                key = f"s1.{mode}.{name}"
                delivery = Delivery(receiver) if name.startswith("otlp") else None
                if delivery is not None:
                    deliveries[key] = delivery
                variants[key] = spanflow_body(workflows[name], runner, setup, steps, delivery)
        raw_setups = {
            name: tracing(name, endpoint=receiver.endpoint)
            for name in ("memory", "otlp", "otlp-thread")
        }
        for name, setup in raw_setups.items():
            assert setup.provider is not None
            delivery = Delivery(receiver) if name.startswith("otlp") else None
            if delivery is not None:
                deliveries[f"s8.{name}"] = delivery
            variants[f"s8.{name}"] = raw_body(setup.provider, template, setup, delivery)

        timings = await interleaved(variants, sizes.cheap_reps)
        for setup in (*setups.values(), *raw_setups.values()):
            setup.close()

    results = []
    for key, timing in timings.items():
        units, unit = (steps, "step") if key.startswith("s1.") else (template.span_count, "span")
        extra = deliveries[key].extra() if key in deliveries else {}
        extra["spans_per_run"] = template.span_count
        results.append(Measurement(key, timing.samples, units, unit, extra | timing.extra()))
    return results


def main() -> None:
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]))))


if __name__ == "__main__":
    main()
