"""Scenario 10: the same workflow over HTTP, served by spanflow and by Mastra's own server.

Servers, each a child process on a free loopback port, serving scenario 3's 3-step workflow
(id ``short``) in Mastra's wire format under ``/api``:

- spanflow: `spanflow.server.create_app` on uvicorn, one worker (`bench.spanflow_server`);
- Mastra: ``@mastra/hono`` over ``@mastra/core`` on ``@hono/node-server``, Node 22
  (``bench/mastra/server.mjs``);

each untraced and traced (spanflow: the plugin's ``configure()`` exporting OTLP/HTTP; Mastra:
``@mastra/otel-exporter``), every traced server with its own OTLP receiver process
(`bench.receiver`), so a span that arrives late is never counted for another server.

One load client, this process (httpx, asyncio), drives every server the same way: a run is
``POST /api/workflows/short/create-run?runId=R`` and then ``POST .../stream?runId=R`` with
``{"inputData": {"v": 0}}``, its body read to the end and checked (the last record is
``workflow-finish``, every record ends in ``\\x1e``). A repetition is `Sizes.server_runs` runs
with 32 concurrent clients (a quarter of that with 1), each client a coroutine with its own
``httpx.AsyncClient`` holding one keep-alive connection, taking the next run until none is
left. (One shared client with a 32-connection pool costs the client about three times the CPU
per run, since httpcore's pool scans its connections on every request: the client, not the
server, was then the bottleneck at 32.) Traced repetitions end with
``POST /bench/flush`` (both servers have it: it awaits the exporter's flush and says how many
spans the server ended), inside the timing, as every OTLP variant of this bench flushes inside
its timing; then, outside it, the receiver's count is compared with the spans ended.

Reported per variant: the median repetition, runs/s (runs / median), and the latency of the
``stream`` request (sent to last byte read) at p50 and p99 over every run of the calm
repetitions. Variants are interleaved repetition by repetition (`bench.measure.interleaved`);
a server is idle while another is measured.

The client is Python and shares this 2-core machine with the server under test (and its
export work), so absolute runs/s are lower than on a dedicated load generator; both servers
are measured with the same client, so the ratio is what the target judges.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.measure import Measurement, Sizes, emit, interleaved
from bench.peers.runner import MASTRA_DIR, PeerError, ensure_mastra
from bench.receiver import ReceiverProcess

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/workflows/short"
CONCURRENCY = (1, 32)


class ServerProcess:
    """A server child that prints ``READY <url>`` and serves until its stdin closes."""

    def __init__(self, name: str, command: list[str], cwd: Path) -> None:
        self.name = name
        self._process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if len(line) != 2 or line[0] != "READY":
            self.close()
            raise RuntimeError(f"{name} did not start (exit {self._process.returncode})")
        self.url = line[1]

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@dataclass
class Target:
    """One server under test: its process, clients and receiver (traced)."""

    name: str
    server: ServerProcess
    clients: list[httpx.AsyncClient]
    """One per concurrent client (the most `CONCURRENCY` asks for), each with one connection."""
    receiver: ReceiverProcess | None = None
    ended: int = 0
    """Spans the server said it ended, at the last flush."""

    async def flush(self) -> int:
        """Ask the server to flush its exporter; the spans it ended since the last flush."""
        response = await self.clients[0].post("/bench/flush")
        response.raise_for_status()
        ended = int(response.json()["ended"])
        ended, self.ended = ended - self.ended, ended
        return ended


@dataclass
class Tally:
    """What one variant's repetitions saw besides their durations."""

    expected: int = 0
    """Spans the server ended (traced variants), over every repetition and the warm-up."""
    delivered: int = 0
    """Spans the receiver got for them."""
    by_elapsed: dict[float, list[float]] = field(default_factory=dict)
    """Stream latencies of each repetition, by the repetition's duration (its sample)."""


def check_body(status: int, body: bytes) -> None:
    """A complete stream: records ending in ``\\x1e``, the last a ``workflow-finish`` with 3."""
    if status != 200 or not body.endswith(b"\x1e"):
        raise RuntimeError(f"bad stream response {status}: {body[-200:]!r}")
    last = json.loads(body[:-1].rsplit(b"\x1e", 1)[-1])
    payload = last.get("payload", {})
    if (
        last.get("type") != "workflow-finish"
        or payload.get("workflowStatus") != "success"
        or payload.get("finalWorkflowResult") != {"v": 3}
    ):
        raise RuntimeError(f"the stream did not end in a successful workflow-finish: {last!r}")


async def one_run(client: httpx.AsyncClient, run_id: str, latencies: list[float]) -> None:
    created = await client.post(f"{PREFIX}/create-run", params={"runId": run_id}, json={})
    if created.status_code != 200:
        raise RuntimeError(f"create-run answered {created.status_code}: {created.text[:200]}")
    start = time.perf_counter()
    async with client.stream(
        "POST", f"{PREFIX}/stream", params={"runId": run_id}, json={"inputData": {"v": 0}}
    ) as response:
        body = await response.aread()
    latencies.append(time.perf_counter() - start)
    check_body(response.status_code, body)


def body(
    target: Target, runs: int, concurrency: int, key: str, tally: Tally
) -> Callable[[], Awaitable[float]]:
    repetition = iter(range(1_000_000))

    async def timed() -> float:
        prefix = f"{key}-{next(repetition)}-"
        latencies: list[float] = []
        todo: Iterator[int] = iter(range(runs))

        async def load(client: httpx.AsyncClient) -> None:
            for i in todo:
                await one_run(client, prefix + str(i), latencies)

        before = target.receiver.count() if target.receiver is not None else 0
        start = time.perf_counter()
        await asyncio.gather(*(load(client) for client in target.clients[:concurrency]))
        ended = await target.flush() if target.receiver is not None else 0
        elapsed = time.perf_counter() - start
        if target.receiver is not None:
            got = target.receiver.wait_for(before + ended, timeout=5) - before
            tally.expected += ended
            tally.delivered += got
            if got != ended:
                print(f"warning: {key}: {got} of {ended} spans delivered", file=sys.stderr)
        tally.by_elapsed[elapsed] = latencies
        return elapsed

    return timed


def _commands(endpoint: str | None) -> dict[str, tuple[list[str], Path]]:
    config = json.dumps({"endpoint": endpoint})
    return {
        "spanflow": ([sys.executable, "-m", "bench.spanflow_server", config], ROOT),
        "mastra": ([str(MASTRA_DIR / "node_modules" / ".bin" / "node"), "server.mjs", config],
                   MASTRA_DIR),
    }  # fmt: skip


def start_targets(stack: ExitStack, servers: list[str]) -> dict[str, Target]:
    """Every server in `servers`, untraced and traced (each traced one with its receiver)."""
    targets = {}
    for tracing in ("off", "traced"):
        for name in servers:
            receiver = stack.enter_context(ReceiverProcess()) if tracing == "traced" else None
            command, cwd = _commands(receiver.endpoint if receiver else None)[name]
            process = ServerProcess(f"{name} ({tracing})", command, cwd)
            stack.callback(process.close)
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            clients = [
                httpx.AsyncClient(base_url=process.url, limits=limits, timeout=60)
                for _ in range(max(CONCURRENCY))
            ]
            targets[f"{name}.{tracing}"] = Target(f"{name}.{tracing}", process, clients, receiver)
    return targets


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0-1) by the nearest rank, in seconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _mastra_available(argv: list[str]) -> str | None:
    """None when Mastra can run, else why not."""
    if "--no-peers" in argv:
        return "--no-peers"
    try:
        ensure_mastra()
    except (PeerError, OSError, ValueError) as exc:
        return str(exc)
    return None


async def measure(sizes: Sizes, argv: list[str]) -> list[Measurement]:
    mastra_missing = _mastra_available(argv)
    servers = ["spanflow"] if mastra_missing else ["spanflow", "mastra"]
    results = []
    with ExitStack() as stack:
        targets = start_targets(stack, servers)
        variants = {}
        units = {}
        for name, target in targets.items():
            for concurrency in CONCURRENCY:
                runs = sizes.server_runs if concurrency > 1 else sizes.server_runs // 4
                key = f"s10.{name}.c{concurrency}"
                tally = Tally()
                units[key] = (target, runs, concurrency, tally)
                variants[key] = body(target, runs, concurrency, key, tally)
        timings = await interleaved(variants, sizes.reps)
        for target in targets.values():
            for client in target.clients:
                await client.aclose()
    for key, timing in timings.items():
        target, runs, concurrency, tally = units[key]
        latencies = [s for sample in timing.samples for s in tally.by_elapsed[sample]]
        extra: dict[str, Any] = timing.extra() | {
            "concurrency": concurrency,
            "runs_per_s": runs / statistics.median(timing.samples),
            "p50_ms": 1e3 * percentile(latencies, 0.50),
            "p99_ms": 1e3 * percentile(latencies, 0.99),
        }
        if target.receiver is not None:
            extra |= {"expected_spans": tally.expected, "delivered_spans": tally.delivered}
        results.append(Measurement(key, timing.samples, runs, "run", extra))
    if mastra_missing:
        for tracing in ("off", "traced"):
            for concurrency in CONCURRENCY:
                key = f"s10.mastra.{tracing}.c{concurrency}"
                results.append(Measurement(key, [], 1, "run", {"unavailable": mastra_missing}))
    return results


def main() -> None:
    argv = sys.argv[1:]
    emit(asyncio.run(measure(Sizes.from_argv(argv), argv)))


if __name__ == "__main__":
    main()
