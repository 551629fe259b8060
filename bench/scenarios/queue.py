"""Scenario 12: runs through the queue (`spanflow.queue.QueueExecutor`), by worker count.

A 3-step workflow of trivial steps (`bench.queue_app`: ``{v} -> {v+1}``, each output stamped
with the time its step ended) is run `RUNS` times per repetition, `IN_FLIGHT` at a time (each
of `IN_FLIGHT` coroutines takes the next run until none is left), by this process, the caller:

- through the queue, executed by 1, 2 or 4 ``spanflow worker bench.queue_app:app
  --concurrency 20`` subprocesses (a worker set per count and tracing, each on a queue of its
  own, all started before the first measurement and idle while another set is measured);
- in process (`LocalExecutor`) on the same PostgreSQL store, for the ratio.

Two ways of running each: ``start()`` (``await run.start()``; the wall time gives runs/s), and
``stream()``, consuming every event: for each ``workflow-step-result`` the caller takes the
time it arrived (`time.time`) minus the time its step ended (stamped by the step, in the
worker; same machine, same clock): the latency from a worker's event to the caller's stream,
p50 and p99 over every step of the calm repetitions. The ``stream1`` variants (untraced, in
process and 1 worker) run one run at a time, so that trip is not queued behind other runs.
Around each timed repetition the CPU time of this process, of the variant's workers and of
PostgreSQL's server processes is read from ``/proc`` (CPU per run: where the time goes).

Untraced (no SDK in any process) and traced: the caller traces with the plugin's
``configure()`` exporting OTLP/HTTP (export queue sized for the load, as in scenario 3) and
each traced worker set exports its spans with the worker's own tracing (``OTEL_EXPORTER_OTLP_*``
variables: the CLI's set-up, service ``spanflow-worker``; batch delay 100 ms) to the same
receiver process, one receiver per traced variant family. A traced repetition ends when the
caller's spans are flushed and every span of its runs (the caller's, counted as they end, and
the workers', per run as counted in the warm-up) reached the receiver: export is inside the
timing, as in every traced variant of this bench.

The PostgreSQL is the tests' throwaway cluster (``fsync=off``, ``synchronous_commit=off``)
with ``max_connections`` raised (`MAX_CONNECTIONS`): 14 workers hold about 18 connections each.
Everything (caller, workers, PostgreSQL, receivers) shares this 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanflow_otel import BatchOptions

from bench.measure import Measurement, Sizes, emit, interleaved
from bench.queue_app import QUEUE_ENV, URL_ENV, build_app, local_app
from bench.receiver import ReceiverProcess
from bench.workloads import Tracing, tracing
from spanflow import Spanflow, TracingConfig, Workflow
from spanflow.storage import PostgresStorage

ROOT = Path(__file__).resolve().parents[2]
SPANFLOW = Path(sys.executable).with_name("spanflow")
WORKER_COUNTS = (1, 2, 4)
WORKER_CONCURRENCY = 20
IN_FLIGHT = 32
RUNS = {False: 200, True: 100}
"""Runs per repetition: full size, ``--quick``."""
TRACINGS = ("off", "traced")
MODES = ("start", "stream")
ALONE_RUNS = {False: 40, True: 20}
"""Runs per repetition of the ``stream1`` variants: one run in flight at a time, so the
latency is the path's own (no queueing behind other runs); untraced, in process and 1 worker."""
MAX_CONNECTIONS = 600
READY_WITHIN = 60.0
SPANS_WITHIN = 30.0
QUEUE_SIZE = 65_536


# -- the workers ---------------------------------------------------------------------------


@dataclass
class WorkerSet:
    """``count`` worker subprocesses on one queue."""

    queue: str
    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def tails(self) -> str:
        return "\n".join(
            f"--- {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-10:])
            for log in self.logs
        )

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL whoever is still there after 30 s."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _worker_env(url: str, queue: str, endpoint: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    path = env.get("PYTHONPATH")
    env |= {
        URL_ENV: url,
        QUEUE_ENV: queue,
        "PYTHONPATH": str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}",
        "PYTHONUNBUFFERED": "1",
    }
    if endpoint is not None:
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint.removesuffix("/v1/traces"),
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE_SIZE),
        }
    return env


def start_workers(
    url: str, queue: str, count: int, endpoint: str | None, log_dir: Path
) -> WorkerSet:
    env = _worker_env(url, queue, endpoint)
    command = [str(SPANFLOW), "worker", "bench.queue_app:app"]
    command += ["--concurrency", str(WORKER_CONCURRENCY)]
    processes, logs = [], []
    for i in range(count):
        log = log_dir / f"{queue}-{i}.log"
        with log.open("wb") as sink:
            processes.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
            )
        logs.append(log)
    return WorkerSet(queue, processes, logs)


async def wait_ready(url: str, sets: list[WorkerSet]) -> None:
    """Until every worker registered with procrastinate (a row in ``procrastinate_workers``)."""
    import psycopg

    expected = sum(len(s.processes) for s in sets)
    deadline = time.monotonic() + READY_WITHIN
    while True:
        async with await psycopg.AsyncConnection.connect(url) as connection:
            cursor = await connection.execute("SELECT count(*) FROM procrastinate_workers")
            row = await cursor.fetchone()
        if row is not None and int(row[0]) >= expected:
            return
        for worker_set in sets:
            if any(p.poll() is not None for p in worker_set.processes):
                raise RuntimeError(f"a worker of {worker_set.queue} exited:\n{worker_set.tails()}")
        if time.monotonic() > deadline:
            tails = "\n".join(s.tails() for s in sets)
            raise RuntimeError(f"workers not ready within {READY_WITHIN} s:\n{tails}")
        await asyncio.sleep(0.2)


# -- the database --------------------------------------------------------------------------


def start_postgres(stack: ExitStack) -> str:
    """A migrated database in a throwaway cluster allowing `MAX_CONNECTIONS`."""
    import psycopg

    from tests.support.postgres import ThrowawayPostgres

    cluster = stack.enter_context(ThrowawayPostgres())
    with psycopg.connect(cluster.dsn(), autocommit=True) as connection:
        connection.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
    cluster.pause()
    cluster.resume()  # max_connections takes effect at a server start
    url = cluster.create_database("spanflow_bench_queue")
    migrated = subprocess.run(
        [str(SPANFLOW), "db", "migrate", "--storage", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"spanflow db migrate failed: {migrated.stdout}{migrated.stderr}")
    return url


# -- where the CPU went -------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of process `pid`; (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class CpuMeter:
    """CPU seconds of this process, of given worker processes, and of PostgreSQL's server
    processes (the postmaster's children: one backend per connection, and its helpers)."""

    postmaster: int

    def postgres(self) -> float:
        total = 0.0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                parent, cpu = _proc_cpu(int(entry.name))
                if parent == self.postmaster or int(entry.name) == self.postmaster:
                    total += cpu
        return total

    def reading(self, workers: list[int]) -> tuple[float, float, float]:
        """(caller, workers, PostgreSQL) CPU seconds so far."""
        return (
            time.process_time(),
            sum(_proc_cpu(pid)[1] for pid in workers),
            self.postgres(),
        )


async def postmaster_pid(url: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as connection:
        cursor = await connection.execute("SELECT pg_backend_pid()")
        row = await cursor.fetchone()
    assert row is not None
    return _proc_cpu(int(row[0]))[0]


# -- the runs ------------------------------------------------------------------------------


def _field(value: Any, name: str) -> Any:
    """A field of a step output or run result: a model in process, JSON from a worker."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


async def start_one(workflow: Workflow, latencies: list[float]) -> None:
    run = await workflow.create_run()
    result = await run.start(input_data={"v": 0})
    _check(result)


async def stream_one(workflow: Workflow, latencies: list[float]) -> None:
    run = await workflow.create_run()
    out = run.stream(input_data={"v": 0})
    async for event in out:
        if event.type == "workflow-step-result":
            arrived = time.time()
            latencies.append(arrived - float(_field(getattr(event.payload, "output", None), "at")))
    _check(await out.result)


def _check(result: Any) -> None:
    if result.status != "success" or _field(result.result, "v") != 3:
        raise RuntimeError(f"run ended {result.status}: {result.result!r} {result.error!r}")


@dataclass
class Variant:
    """One measured combination: a registry, how runs are made, and what its reps saw."""

    key: str
    workflow: Workflow
    mode: str
    runs: int
    tracing: Tracing | None = None
    receiver: ReceiverProcess | None = None
    remote: bool = False
    """Executed by workers, whose spans reach the receiver without being counted here."""
    workers: list[int] = field(default_factory=list)
    """The pids of the workers executing this variant's runs."""
    meter: CpuMeter | None = None
    in_flight: int = IN_FLIGHT
    cpu: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """CPU seconds of caller, workers and PostgreSQL over the timed repetitions."""
    timed_runs: int = 0
    calls: int = 0
    worker_spans_per_run: int | None = None
    expected: int = 0
    delivered: int = 0
    by_elapsed: dict[float, list[float]] = field(default_factory=dict)

    def body(self) -> Callable[[], Awaitable[float]]:
        one = start_one if self.mode == "start" else stream_one

        async def timed() -> float:
            latencies: list[float] = []
            todo: Iterator[int] = iter(range(self.runs))

            async def load() -> None:
                for _ in todo:
                    await one(self.workflow, latencies)

            before = self.receiver.count() if self.receiver is not None else 0
            ended = self.tracing.counter.ended if self.tracing and self.tracing.counter else 0
            cpu = self.meter.reading(self.workers) if self.meter is not None else None
            start = time.perf_counter()
            await asyncio.gather(*(load() for _ in range(self.in_flight)))
            if self.tracing is not None:
                self._await_spans(before, ended)
            elapsed = time.perf_counter() - start
            self.by_elapsed[elapsed] = latencies
            self.calls += 1
            if cpu is not None and self.meter is not None and self.calls > 1:  # not the warm-up
                after = self.meter.reading(self.workers)
                self.cpu = [total + a - b for total, a, b in zip(self.cpu, after, cpu, strict=True)]
                self.timed_runs += self.runs
            return elapsed

        return timed

    def _await_spans(self, before: int, ended_before: int) -> None:
        """Flush the caller's spans and wait for every span of this repetition's runs."""
        assert self.tracing is not None
        assert self.receiver is not None
        assert self.tracing.counter is not None
        self.tracing.flush()
        caller = self.tracing.counter.ended - ended_before
        if self.worker_spans_per_run is None:  # the warm-up: count what the workers send
            got = _settled(self.receiver) - before
            per_run = round((got - caller) / self.runs)
            if self.remote and per_run < 1:
                raise RuntimeError(f"{self.key}: no worker spans arrived (got {got - caller})")
            self.worker_spans_per_run = per_run
            return
        expected = caller + self.worker_spans_per_run * self.runs
        got = self.receiver.wait_for(before + expected, timeout=SPANS_WITHIN) - before
        self.expected += expected
        self.delivered += got
        if got != expected:
            print(f"warning: {self.key}: {got} of {expected} spans delivered", file=sys.stderr)


def _settled(receiver: ReceiverProcess, quiet: float = 1.5) -> int:
    """The receiver's count once it stopped growing for `quiet` seconds."""
    count, since = receiver.count(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.1)
        now = receiver.count()
        if now != count:
            count, since = now, time.monotonic()
    return count


# -- the scenario --------------------------------------------------------------------------


@dataclass
class Family:
    """One registry and its tracing: the in-process one, or a worker set's caller side."""

    name: str
    app: Spanflow
    workflow: Workflow
    tracing: Tracing | None
    receiver: ReceiverProcess | None
    workers: list[int]


def _caller_tracing(
    stack: ExitStack, traced: bool
) -> tuple[Tracing | None, ReceiverProcess | None]:
    if not traced:
        return None, None
    receiver = stack.enter_context(ReceiverProcess())
    caller = tracing(
        "otlp",
        endpoint=receiver.endpoint,
        batch=BatchOptions(max_queue_size=QUEUE_SIZE),
        count_spans=True,
    )
    stack.callback(caller.close)
    return caller, receiver


def build_families(
    stack: ExitStack, url: str, log_dir: Path
) -> tuple[list[Family], list[WorkerSet]]:
    families, sets = [], []
    for tracing_name in TRACINGS:
        caller, receiver = _caller_tracing(stack, tracing_name == "traced")
        config = TracingConfig(tracer_provider=caller.provider) if caller else None
        app = local_app(PostgresStorage(url), tracing=config)
        families.append(
            Family(f"local.{tracing_name}", app, _only(app), caller, receiver, workers=[])
        )
        for count in WORKER_COUNTS:
            queue = f"bench-w{count}-{tracing_name}"
            if tracing_name == "traced":
                caller, receiver = _caller_tracing(stack, True)
                config = TracingConfig(tracer_provider=caller.provider) if caller else None
            endpoint = receiver.endpoint if receiver is not None else None
            worker_set = start_workers(url, queue, count, endpoint, log_dir)
            stack.callback(worker_set.stop)
            sets.append(worker_set)
            app = build_app(url, queue, tracing=config)
            name = f"w{count}.{tracing_name}"
            pids = [p.pid for p in worker_set.processes]
            families.append(Family(name, app, _only(app), caller, receiver, pids))
    return families, sets


def _only(app: Spanflow) -> Workflow:
    (workflow,) = app.workflows.values()
    return workflow


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _results(variants: list[Variant], timings: dict[str, Any]) -> list[Measurement]:
    results = []
    for variant in variants:
        timing = timings[variant.key]
        median = statistics.median(timing.samples)
        extra: dict[str, Any] = timing.extra() | {
            "runs_per_s": variant.runs / median,
            "in_flight": variant.in_flight,
            "worker_concurrency": WORKER_CONCURRENCY,
        }
        if variant.mode != "start":
            latencies = [s for sample in timing.samples for s in variant.by_elapsed[sample]]
            extra |= {
                "events": len(latencies),
                "p50_ms": 1e3 * _percentile(latencies, 0.50),
                "p99_ms": 1e3 * _percentile(latencies, 0.99),
            }
        if variant.timed_runs:
            caller, workers, postgres = (1e3 * c / variant.timed_runs for c in variant.cpu)
            extra |= {
                "cpu_ms_per_run": {"caller": caller, "workers": workers, "postgres": postgres}
            }
        if variant.tracing is not None:
            extra |= {
                "expected_spans": variant.expected,
                "delivered_spans": variant.delivered,
                "worker_spans_per_run": variant.worker_spans_per_run,
            }
        results.append(Measurement(variant.key, timing.samples, variant.runs, "run", extra))
    return results


async def measure(sizes: Sizes) -> list[Measurement]:
    runs = RUNS[sizes.quick]
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="spanflow-bench-q-") as tmp:
        url = start_postgres(stack)
        families, sets = build_families(stack, url, Path(tmp))
        async with AsyncExitStack() as opened:
            for family in families:
                opened.push_async_callback(family.app.close)
            await wait_ready(url, sets)
            meter = CpuMeter(await postmaster_pid(url))
            variants = [
                Variant(
                    f"s12.{family.name}.{mode}",
                    family.workflow,
                    mode,
                    runs,
                    family.tracing,
                    family.receiver,
                    remote=bool(family.workers),
                    workers=family.workers,
                    meter=meter,
                )
                for mode in MODES
                for family in families
            ]
            variants += [
                Variant(
                    f"s12.{family.name}.stream1",
                    family.workflow,
                    "stream",
                    ALONE_RUNS[sizes.quick],
                    in_flight=1,
                    remote=bool(family.workers),
                    workers=family.workers,
                    meter=meter,
                )
                for family in families
                if family.name in ("local.off", "w1.off")
            ]
            timings = await interleaved({v.key: v.body() for v in variants}, sizes.reps)
    return _results(variants, timings)


def main() -> None:
    emit(asyncio.run(measure(Sizes.from_argv(sys.argv[1:]))))


if __name__ == "__main__":
    main()
