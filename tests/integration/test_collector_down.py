"""A collector that is down or slow never fails a run, nor holds the process past the flush
timeout at exit; spans dropped on a full export queue are counted and reported.

Each test starts a child process (this module, run with ``python -m``) that configures the
tracing plugin as an application would (global provider, atexit flush, SIGTERM hook), runs a
real workflow, prints its result and exits without calling anything: the plugin's exit hook
does the final flush. The parent measures from the moment the result line arrives to the end
of the process. A last exit hook, registered before the plugin's so it runs after it, prints
what became of the spans (`Telemetry.export_counts`) and how long the exit took in the child.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

ROOT = Path(__file__).resolve().parents[2]
FLUSH_TIMEOUT = 1.0
EXIT_MARGIN = 1.5
"""Interpreter teardown after the bounded flush, with room for a loaded CI machine."""
RUN_LIMIT = 5.0
"""A run of a few hundred tiny steps takes well under a second; a run waiting on the 30 s
collector would take far longer than this."""
PROTOCOLS = ["http/protobuf", "grpc"]


@dataclass(frozen=True)
class ChildOutcome:
    report: dict[str, Any]
    """What the child printed after its run (status, run_seconds, dropped, trace_id, spans)."""
    after_exit: dict[str, Any]
    """What the child printed after the plugin's exit hook: the export counts (exported,
    failed, dropped, unsent) and exit_seconds, from its report to that moment."""
    exit_seconds: float
    """From the report to the end of the process: the exit-time flush and teardown."""
    returncode: int
    stderr: str


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_child(endpoint: str, protocol: str, *, items: int = 50, queue: int = 2048) -> ChildOutcome:
    command = [
        sys.executable, "-m", "tests.integration.test_collector_down",
        "--endpoint", endpoint, "--protocol", protocol, "--flush-timeout", str(FLUSH_TIMEOUT),
        "--items", str(items), "--queue", str(queue),
    ]  # fmt: skip
    child = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stderr is not None
        line = child.stdout.readline()
        reported = time.monotonic()
        child.wait(timeout=60)
        exit_seconds = time.monotonic() - reported
        after_exit = child.stdout.readline()
        stderr = child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert line, f"the child printed nothing; stderr:\n{stderr}"
    assert after_exit, f"the child printed nothing after its exit hook; stderr:\n{stderr}"
    return ChildOutcome(
        json.loads(line), json.loads(after_exit), exit_seconds, child.returncode, stderr
    )


@pytest.fixture
def slow_collector() -> Iterator[OtlpReceiver]:
    """A collector that answers every export after 30 s."""
    with otlp_receiver(delay=30.0) as receiver:
        yield receiver


def endpoint_of(receiver: OtlpReceiver, protocol: str) -> str:
    return receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_with_no_collector_listening_the_run_succeeds_and_exit_is_bounded(protocol: str) -> None:
    port = closed_port()
    endpoint = f"http://127.0.0.1:{port}" + ("" if protocol == "grpc" else "/v1/traces")

    child = run_child(endpoint, protocol)

    assert child.returncode == 0, child.stderr
    assert child.report["status"] == "success"
    assert child.report["run_seconds"] < RUN_LIMIT
    assert child.exit_seconds <= FLUSH_TIMEOUT + EXIT_MARGIN, child.stderr
    assert "Traceback" not in child.stderr


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_with_a_slow_collector_exit_gives_up_at_the_flush_timeout(
    slow_collector: OtlpReceiver, protocol: str
) -> None:
    child = run_child(endpoint_of(slow_collector, protocol), protocol)

    assert child.returncode == 0, child.stderr
    assert child.report["status"] == "success"
    assert child.report["run_seconds"] < RUN_LIMIT
    assert slow_collector.attempts >= 1  # the export was under way, stuck at the collector
    # The exit hook waited on the stuck export for the whole flush timeout, then gave up.
    assert child.after_exit["exit_seconds"] >= FLUSH_TIMEOUT, child.after_exit
    assert child.exit_seconds <= FLUSH_TIMEOUT + EXIT_MARGIN, child.stderr
    # Every span the run made fit the queue and none arrived: the exit gave up on them all.
    # Whether a span counts as failed or unsent is a race at the deadline (the SDK's shutdown
    # joins its worker for the same budget, then closes the exporter, which may or may not
    # fail the stuck request in time), so only their sum is exact.
    spans = child.report["spans"]
    assert spans > child.report["items"]  # a span per item, and the run's own
    counts = child.after_exit
    assert (counts["exported"], counts["dropped"]) == (0, 0), counts
    assert counts["failed"] + counts["unsent"] == spans, counts


@pytest.mark.slow
def test_queue_overflow_is_counted_and_reported_at_exit(slow_collector: OtlpReceiver) -> None:
    items = 300  # about 300 step spans, a queue of 16
    child = run_child(
        endpoint_of(slow_collector, "http/protobuf"), "http/protobuf", items=items, queue=16
    )

    assert child.returncode == 0, child.stderr
    assert child.report["status"] == "success"
    dropped = child.report["dropped"]
    assert 0 < dropped <= items + 2
    assert "Span export queue is full: dropping spans" in child.stderr
    assert "spans were dropped because the export queue was full" in child.stderr
    assert child.exit_seconds <= FLUSH_TIMEOUT + EXIT_MARGIN, child.stderr


# -- the child process -------------------------------------------------------------------------


def _child_main(argv: list[str]) -> None:
    """Configure tracing like an application, run a fan-out workflow, report, and just exit."""
    import spanflow_otel as so
    from pydantic import BaseModel

    from spanflow import StepContext, create_workflow, step

    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", choices=PROTOCOLS, required=True)
    parser.add_argument("--flush-timeout", type=float, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--queue", type=int, required=True)
    args = parser.parse_args(argv)

    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    class SpanCount(SpanProcessor):
        """Counts the sampled spans that ended: every span handed to the exporters."""

        def __init__(self) -> None:
            self.ended = 0

        def on_end(self, span: ReadableSpan) -> None:
            if span.context is not None and span.context.trace_flags.sampled:
                self.ended += 1

    def report_after_exit() -> None:
        counts = telemetry.export_counts
        after_exit = {
            "exported": counts.exported,
            "failed": counts.failed,
            "dropped": counts.dropped,
            "unsent": counts.unsent,
            "exit_seconds": time.monotonic() - reported,
        }
        print(json.dumps(after_exit), flush=True)

    # Registered before configure() registers the plugin's hook, so it runs after it (atexit
    # runs its hooks last registered first).
    atexit.register(report_after_exit)
    telemetry = so.configure(
        "collector-down-test",
        export=so.ExportOptions(endpoint=args.endpoint, protocol=args.protocol, timeout=30.0),
        batch=so.BatchOptions(max_queue_size=args.queue, schedule_delay=0.05),
        shutdown=so.ShutdownOptions(flush_timeout=args.flush_timeout),
    )
    span_count = SpanCount()
    telemetry.provider.add_span_processor(span_count)

    class Item(BaseModel):
        n: int

    @step(id="double", input_schema=Item, output_schema=Item)
    async def double(ctx: StepContext[Item]) -> Item:
        return Item(n=ctx.input_data.n * 2)

    def items(ctx: StepContext[Any]) -> list[Item]:
        return [Item(n=n) for n in range(int(ctx.input_data))]

    workflow = (
        create_workflow(id="fan-out", input_schema=int)
        .map(items, id="items", output_schema=list[Item])
        .foreach(double, concurrency=8)
        .commit()
    )

    async def run() -> Any:
        return await (await workflow.create_run()).start(args.items)

    started = time.monotonic()
    result = asyncio.run(run())
    report = {
        "status": result.status,
        "run_seconds": time.monotonic() - started,
        "dropped": telemetry.dropped_spans,
        "trace_id": result.trace_id,
        "items": args.items,
        "spans": span_count.ended,
    }
    print(json.dumps(report), flush=True)
    reported = time.monotonic()
    # No shutdown here: the plugin's atexit hook flushes, bounded by the flush timeout.


if __name__ == "__main__":
    _child_main(sys.argv[1:])
